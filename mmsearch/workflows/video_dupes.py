"""Near-duplicate videos: re-uploads of a known-bad clip, re-encoded (another codec, another bitrate), resized
or trimmed, found by the perceptual hashes of their frames lined up in time.

A video's fingerprint is the 64-bit pHash (dupes.phash) of a small frame about every `STEP_S` seconds, with
its time. pHash survives re-encoding and resizing (0-4 bits of 64 between a clip and its VP9, half-size and
low-bitrate copies here, median 0) and unrelated frames are far apart (median 24 bits to the nearest frame of
another clip), so two frames "match" within `FRAME_CUT` bits. A trim shifts the time axis: every matching
pair of frames votes for the offset between them, and a copy is where one offset gathers most of the clip's
frames. Its score is the share of the clip's frames that match at that offset, among those the two overlap
at it, so a trimmed copy (or a clip that is part of a longer video) scores near 1: the part cut off is no
penalty (`coverage` says how much of the clip the copy holds). The offset is what makes that possible: a
bag of frame hashes without times (the share of the clip's frames matched anywhere) scores the 3-s-trimmed
copy 0.71 and the trimmed, halved, low-bitrate one 0.75, against 0.94 and 0.90 lined up, while an
unrelated video scores 0 either way and one sharing a scene a third (bench/bench_video_dupes.py, in
bench/results/video.md). It also names the stretch of the library video that copies the clip, which is
where the review queue plays it. A re-edit that holds 8 s of the clip in one piece scores 1 (coverage 2/3):
it copies that part.

Fingerprints are kept in a LanceDB table keyed by file content, like the photos' hashes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import pyarrow as pa
from PIL import ImageOps

from mmsearch.errors import BadMedia
from mmsearch.media.video import DecodeLimits, iter_frames
from mmsearch.store.library import Library
from mmsearch.store.sql import in_clauses
from mmsearch.workflows.dupes import Linkage, phash, popcount

if TYPE_CHECKING:
    from mmsearch.service import MMSearch
    from mmsearch.workflows.moderation import Flag

PRINT_TABLE = "video_phashes"
STEP_S = 0.5  # a frame this often, as the indexer samples
FRAME_EDGE = 64  # short side of the frames hashed: pHash looks at 32x32
FRAME_CUT = 10  # bits of 64 for two frames to match
OFFSET_BIN_S = 1.0  # offsets closer than this vote together (frames sampled at different times)
MIN_SHARE = 0.5  # share of the overlapping frames that must match for a copy
MIN_OVERLAP_S = 2.0  # a copy shares at least this much time with the clip
# Two library videos are near-duplicates when this share of their common time lines up AND of the shorter's
# frames: two videos that share one scene of three, shifted, score 0.5 over their overlap but cover 0.33-0.47
# of the shorter; re-uploads (re-encoded, resized, trimmed) score and cover 0.8-1 (tests/test_video_dupes.py).
DUPE_SHARE = 0.7


@dataclass
class Fingerprint:
    times: np.ndarray  # (n,) float32 seconds
    hashes: np.ndarray  # (n,) uint64
    mirrored: np.ndarray | None = None  # (n,) uint64: the frames flipped left to right (a query clip's only)

    def flipped(self) -> "Fingerprint | None":
        """The clip as a mirrored re-upload would show it."""
        return None if self.mirrored is None else Fingerprint(self.times, self.mirrored)

    @property
    def span(self) -> tuple[float, float]:
        return (float(self.times[0]), float(self.times[-1])) if len(self.times) else (0.0, 0.0)


def fingerprint(path: str, limits: DecodeLimits = DecodeLimits(step_s=STEP_S, size=FRAME_EDGE),
                mirrored: bool = False) -> Fingerprint:
    """Frame hashes in time; with `mirrored`, the hashes of the frames flipped too (for a known-bad clip: a
    flipped re-upload is a common way round hash matching, and pHash does not survive a flip)."""
    times, hashes, flips = [], [], []
    for frame in iter_frames(path, limits):
        times.append(frame.time_s)
        hashes.append(phash(frame.image))
        if mirrored:
            flips.append(phash(ImageOps.mirror(frame.image)))
    if not times:
        raise BadMedia(path, "no video frames could be decoded")
    return Fingerprint(np.array(times, np.float32), np.array(hashes, np.uint64),
                       np.array(flips, np.uint64) if mirrored else None)


@dataclass
class Alignment:
    score: float  # share of the overlapping frames that match at the offset
    offset_s: float  # the clip's second 0 is the video's second offset_s
    start_s: float  # the matching stretch of the video
    end_s: float
    frames: int  # clip frames matched
    coverage: float  # share of all the clip's frames matched (less than the score when the copy is trimmed)


def align(clip: Fingerprint, video: Fingerprint, cut: int = FRAME_CUT,
          min_overlap_s: float = MIN_OVERLAP_S) -> Alignment | None:
    """The offset at which most of the clip's frames match the video's, and how well; None when no offset
    gives `min_overlap_s` of common time with a match in it."""
    bits = popcount(clip.hashes[:, None] ^ video.hashes[None, :])  # (clip frames, video frames)
    qi, vj = np.nonzero(bits <= cut)
    if not len(qi):
        return None
    offsets = video.times[vj] - clip.times[qi]
    bins = np.round(offsets / OFFSET_BIN_S).astype(np.int64)
    best: Alignment | None = None
    for b in np.unique(bins):
        near = np.abs(bins - b) <= 1  # a neighbouring bin: the same offset, sampled at other times
        found = _at_offset(clip, video, qi[near], vj[near], float(np.median(offsets[bins == b])), min_overlap_s)
        if found is not None and (best is None or (found.score, found.frames) > (best.score, best.frames)):
            best = found
    return best


def _at_offset(clip: Fingerprint, video: Fingerprint, qi: np.ndarray, vj: np.ndarray, offset: float,
               min_overlap_s: float) -> Alignment | None:
    (c0, c1), (v0, v1) = clip.span, video.span
    lo, hi = max(c0, v0 - offset), min(c1, v1 - offset)  # common time, in the clip's seconds
    slack = STEP_S * 2  # samples fall up to a step or so from the span's ends
    if hi - lo < min_overlap_s - slack:
        return None
    inside = (clip.times >= lo - 1e-3) & (clip.times <= hi + 1e-3)
    matched = np.unique(qi[inside[qi]])
    if not len(matched):
        return None
    score = len(matched) / max(int(inside.sum()), 1)
    times = video.times[vj[inside[qi]]]
    return Alignment(round(float(score), 4), round(offset, 3), round(float(times.min()), 3),
                     round(float(times.max()) + STEP_S, 3), int(len(matched)), round(len(matched) / len(clip.times), 4))


@dataclass
class VideoCopy:
    path: str
    alignment: Alignment
    mirrored: bool = False  # the copy is the clip flipped left to right

    @property
    def method(self) -> str:
        return "frame-hash, mirrored" if self.mirrored else "frame-hash"

    def record(self) -> dict:
        a = self.alignment
        return {"path": self.path, "modality": "video", "score": a.score, "offset_s": a.offset_s,
                "start_s": a.start_s, "end_s": a.end_s, "frames": a.frames, "coverage": a.coverage,
                "mirrored": self.mirrored, "method": self.method}

    def flag(self, of: str, min_share: float = MIN_SHARE) -> "Flag":
        """As a review-queue entry at the stretch of the video that copies the clip."""
        from mmsearch.store.video_table import moment_key
        from mmsearch.workflows.moderation import Flag

        a = self.alignment
        flipped = ", mirrored" if self.mirrored else ""
        return Flag(moment_key(self.path, a.start_s, a.end_s), "video", f"copy of {of}", a.score, min_share,
                    f"frame hashes: {a.frames} frames, offset {a.offset_s:g} s{flipped}", self.method, self.path)


@dataclass
class PrintIndex:
    paths: list[str]
    prints: list[Fingerprint]
    hashed: int = 0
    seconds: float = 0.0
    skipped: list[tuple[str, str]] = field(default_factory=list)


class VideoPrints:
    """Fingerprints of a library's videos, stored by content hash. Receives the library; builds nothing else."""

    def __init__(self, library: Library, limits: DecodeLimits = DecodeLimits(step_s=STEP_S, size=FRAME_EDGE)) -> None:
        self.library = library
        self.limits = limits

    def _table(self):
        schema = pa.schema([pa.field("hash", pa.string(), nullable=False), pa.field("times", pa.list_(pa.float32())),
                            pa.field("phashes", pa.list_(pa.int64()))])
        return self.library.db.create_table(PRINT_TABLE, schema=schema, exist_ok=True)

    def _stored(self, table, content: set[str]) -> dict[str, Fingerprint]:
        found = {}
        for where in in_clauses("hash", content):
            for row in table.search().where(where).limit(None).to_list():
                found[row["hash"]] = Fingerprint(np.array(row["times"], np.float32),
                                                 np.array(row["phashes"], np.int64).view(np.uint64))
        return found

    def index(self, rows: Sequence[tuple[str, str]], on_progress: Callable[[int, int], None] | None = None
              ) -> PrintIndex:
        """rows: (file, content hash) of the videos to cover, e.g. from the video table."""
        started = time.perf_counter()
        table = self._table()
        stored = self._stored(table, {h for _, h in rows})
        todo = {h: p for p, h in rows if h not in stored}
        out = PrintIndex([], [])
        fresh: dict[str, Fingerprint] = {}
        for n, (content, path) in enumerate(todo.items(), 1):
            try:
                fresh[content] = fingerprint(path, self.limits)
            except BadMedia as bad:
                out.skipped.append((bad.path, bad.reason))
            if on_progress:
                on_progress(n, len(todo))
        if fresh:
            table.add(pa.table({"hash": list(fresh), "times": [f.times.tolist() for f in fresh.values()],
                                "phashes": [f.hashes.view(np.int64).tolist() for f in fresh.values()]},
                               schema=table.schema))
        stored.update(fresh)
        kept = [(p, h) for p, h in rows if h in stored]
        out.paths, out.prints = [p for p, _ in kept], [stored[h] for _, h in kept]
        out.hashed, out.seconds = len(fresh), time.perf_counter() - started
        return out


def copies_of_clip(index: PrintIndex, clip: Fingerprint, cut: int = FRAME_CUT, min_share: float = MIN_SHARE
                   ) -> list[VideoCopy]:
    """Library videos holding the clip (re-encoded, resized, trimmed; flipped, when the clip's fingerprint
    has its mirrored hashes), best first: each at the better of the two ways round."""
    found = []
    flipped = clip.flipped()
    for path, fp in zip(index.paths, index.prints):
        a = align(clip, fp, cut)
        m = align(flipped, fp, cut) if flipped is not None else None
        if m is not None and (a is None or (m.score, m.frames) > (a.score, a.frames)):
            a, mirrored = m, True
        else:
            mirrored = False
        if a is not None and a.score >= min_share:
            found.append(VideoCopy(path, a, mirrored))
    return sorted(found, key=lambda c: (-c.alignment.score, -c.alignment.frames, c.path))


def library_videos(service: "MMSearch") -> list[tuple[str, str]]:
    """(file, content hash) of every video in the library's picture table."""
    table = service.library().table("video", service.encoder.space)
    if table is None:
        return []
    cols = table.table.search().select(["file", "hash"]).limit(None).to_arrow().to_pydict()
    return list(dict.fromkeys(zip(cols["file"], cols["hash"])))


def print_limits(service: "MMSearch") -> DecodeLimits:
    """Fingerprint frames under the library's decoding limits (time budget, largest frame)."""
    s = service.settings
    return DecodeLimits(step_s=STEP_S, size=FRAME_EDGE, budget_s=s.video_budget_s, max_pixels=s.max_image_pixels)


def library_prints(service: "MMSearch") -> PrintIndex:
    """Fingerprints of every video in the library, hashing only those not stored yet."""
    return VideoPrints(service.library(), print_limits(service)).index(library_videos(service))


def find_clip_copies(service: "MMSearch", clip: str, cut: int = FRAME_CUT, min_share: float = MIN_SHARE
                     ) -> list[VideoCopy]:
    query = fingerprint(clip, print_limits(service), mirrored=True)  # first: a bad upload costs no library pass
    return copies_of_clip(library_prints(service), query, cut, min_share)


def clusters(index: PrintIndex, cut: int = FRAME_CUT, min_share: float = DUPE_SHARE
             ) -> list[list[tuple[str, Alignment | None]]]:
    """Groups of library videos that copy one another (re-encodes, resizes, trims), largest first: single
    linkage over pairs where `min_share` of the common time lines up and that covers `min_share` of the
    shorter video's frames (one holds most of the other). Each member comes with its alignment against the
    group's first video (None for the first; a member linked to it only through another may score lower).

    Pairs are aligned only where some frame of one is within `cut` bits of a frame of the other (one XOR
    pass over all frames, a video at a time), so unrelated videos cost a popcount each, not an alignment."""
    if len(index.paths) < 2:
        return []
    linked = Linkage(len(index.paths))
    owner = np.concatenate([np.full(len(fp.hashes), i) for i, fp in enumerate(index.prints)])
    every = np.concatenate([fp.hashes for fp in index.prints])
    for i, fp in enumerate(index.prints):
        later = owner > i
        near = (popcount(fp.hashes[:, None] ^ every[None, later]) <= cut).any(axis=0)
        for j in np.unique(owner[later][near]):
            a = _pair(fp, index.prints[int(j)], cut)
            if a is not None and a.score >= min_share and a.coverage >= min_share:
                linked.link(i, int(j))
    out = []
    for members in linked.groups():
        first = index.prints[members[0]]
        out.append([(index.paths[members[0]], None)] +
                   [(index.paths[m], align(index.prints[m], first, cut)) for m in members[1:]])
    return sorted(out, key=lambda g: (-len(g), g[0][0]))


def _pair(a: Fingerprint, b: Fingerprint, cut: int) -> Alignment | None:
    """The shorter lined up against the longer, so the coverage is the shorter's."""
    return align(a, b, cut) if len(a.times) <= len(b.times) else align(b, a, cut)
