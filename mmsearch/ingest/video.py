"""Indexing video files: moments seen (image space) and heard (audio space), on one time axis.

The picture side decodes a few small frames per moment (media/video.py, media/shots.py) in a worker
thread while the indexer's thread runs the image model on the frames of earlier moments; a moment's vector
is the mean of its frames' vectors and its `frame_s` the frame closest to that mean (its thumbnail). The
sound side runs afterwards, over the files whose picture side found a soundtrack, and cuts the soundtrack
at the same moments, each moment through the audio windows sounds get (pooled the same way), so the two
tables hold the same moment keys and fusion adds what a moment looks like to what it sounds like.

One file is one item of the indexer (hashed, reused on renames and copies, replaced when it changes); its
moments become rows in `rows()`.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Executor
from contextlib import closing
from typing import Any, Callable, Iterator

import numpy as np

from mmsearch.encoders.base import Encoder
from mmsearch.encoders.pooling import pool_windows
from mmsearch.errors import BadMedia
from mmsearch.ingest.pipelines import MediaPipeline, Prepared, hash_file
from mmsearch.ingest.prefetch import prefetched
from mmsearch.media.audio import _windows, stream_spans
from mmsearch.media.files import FileEntry
from mmsearch.media.shots import MomentRules, moments
from mmsearch.media.video import DecodeLimits, iter_frames, probe_video, supported_extensions
from mmsearch.store.video_table import moment_key


def _video_fields(entry: FileEntry) -> tuple[Any, dict]:
    info = probe_video(entry.path)
    return info, {"duration_s": info.duration_s, "width": info.width, "height": info.height, "fps": info.fps,
                  "codec": info.codec, "format": info.format, "channels": info.audio_channels}


class _MomentRows(MediaPipeline):
    reused_columns = ("moments",)

    def extensions(self) -> frozenset[str]:
        return supported_extensions()

    def prefetch(self, batch_size: int, workers: int) -> int:
        return workers * 2  # probing is cheap; the frames are what needs bounding

    def rows(self, row: dict) -> list[dict]:
        """One row per moment, keyed by the moment; the file's own columns repeated on each."""
        file = row["path"]
        base = {k: v for k, v in row.items() if k != "moments"}
        return [{**base, **m, "path": moment_key(file, m["start_s"], m["end_s"]), "file": file,
                 "vector": np.asarray(m["vector"], np.float32)} for m in row["moments"]]


class VideoPipeline(_MomentRows):
    modality = "video"

    def __init__(self, encoder: Encoder, limits: DecodeLimits = DecodeLimits(), rules: MomentRules = MomentRules(),
                 batch_size: int = 32) -> None:
        super().__init__(encoder)
        self.limits, self.rules, self.batch_size = limits, rules, batch_size

    def work(self, item: Prepared) -> float:
        """Frames to embed, about."""
        if item.payload is None:
            return 1.0
        duration = float(item.fields["duration_s"])
        per_moment = duration / self.rules.max_moment_s * self.rules.frames_per_shot
        return max(1.0, min(per_moment, duration * self.rules.max_frames_per_hour / 3600.0 + 1))

    def prepare(self, entry: FileEntry, known: set[str]) -> Prepared:
        info, fields = _video_fields(entry)  # first: a broken file is skipped before it is hashed
        digest = hash_file(entry.path)
        return Prepared(entry, digest, fields, payload=None if digest in known else info)

    def embed(self, items: list[Prepared], pool: Executor) -> list[dict | BadMedia]:
        out: list[dict | BadMedia] = []
        for item in items:
            try:
                out.append({"moments": self._moments(item, pool)})
            except BadMedia as bad:
                out.append(bad)
        return out

    def _moments(self, item: Prepared, pool: Executor) -> list[dict]:
        path, duration = item.entry.path, float(item.fields["duration_s"])

        def decoded() -> Iterator[tuple[float, float, list[tuple[int, float]], list[tuple[int, Any]]]]:
            """(start, end, [(frame id, time)], [(frame id, model input)] for frames not seen before). Only
            numbers leave here: the frames themselves are dropped once preprocessed."""
            serial, before = 0, {}
            for m in moments(iter_frames(path, self.limits), duration, self.rules):
                ids, new, now = [], [], {}
                for f in m.frames:  # a still's moments share its one frame: embedded once
                    fid = before.get(id(f))
                    if fid is None:
                        fid, serial = serial, serial + 1
                        new.append((fid, self.encoder.preprocess_image(f.image)))
                    now[id(f)] = fid
                    ids.append((fid, f.time_s))
                before = now
                yield m.start_s, m.end_s, ids, new

        spans: list[tuple[float, float, list[tuple[int, float]]]] = []
        vectors: dict[int, np.ndarray] = {}
        batch: list[tuple[int, Any]] = []
        for start, end, ids, new in ahead(pool, decoded(), depth=4):
            spans.append((start, end, ids))
            batch += new
            if len(batch) >= self.batch_size:
                self._encode(batch, vectors)
                batch = []
        if batch:
            self._encode(batch, vectors)
        if not spans:
            raise BadMedia(path, "no video frames could be decoded")
        rows = []
        for start, end, ids in spans:
            vector, frame_s = pool_windows(np.stack([vectors[f] for f, _ in ids]), [t for _, t in ids])
            rows.append({"start_s": start, "end_s": end, "frame_s": round(frame_s, 3), "vector": vector})
        return rows

    def _encode(self, batch: list[tuple[int, Any]], vectors: dict[int, np.ndarray]) -> None:
        for (fid, _), vec in zip(batch, self.encoder.encode_images([x for _, x in batch])):
            vectors[fid] = vec


class VideoSoundPipeline(_MomentRows):
    """The soundtrack of videos whose picture is indexed, moment by moment, in the audio model's space."""

    modality = "video"
    optional = True  # videos index their picture without the audio model
    missing = "soundtrack not indexed (the picture is), no audio model"

    def __init__(self, encoder: Encoder, picture: Callable[[], Any], overlap: float = 0.25, batch_size: int = 8,
                 workers: int = 2) -> None:
        """picture: returns the picture side's table (or None), read when the sound side starts on a root."""
        super().__init__(encoder)
        self.picture = picture
        self.overlap = overlap
        self.batch_size = batch_size
        self.depth = max(batch_size * 2, workers * 2)
        self._with_sound: tuple[Any, set[str]] | None = None

    def accepts(self, path: str) -> bool:
        """Only videos with a soundtrack whose picture side is indexed: a silent video or a broken file was
        dealt with (and reported) there, once."""
        if not super().accepts(path):
            return False
        table = self.picture()
        if table is None:
            return False
        if self._with_sound is None or self._with_sound[0] != table.version:
            self._with_sound = (table.version, table.files_with_sound())
        return path in self._with_sound[1]

    def work(self, item: Prepared) -> float:
        if item.payload is None:
            return 1.0
        window_s = self.encoder.audio_window_s()
        return max(1.0, float(item.fields["duration_s"]) / window_s)

    def prepare(self, entry: FileEntry, known: set[str]) -> Prepared:
        _, fields = _video_fields(entry)
        digest = hash_file(entry.path)
        return Prepared(entry, digest, fields, payload=None if digest in known else entry.path)

    def embed(self, items: list[Prepared], pool: Executor) -> list[dict | BadMedia]:
        window_s, rate = self.encoder.audio_window_s(), self.encoder.audio_rate()
        hop_s = window_s * (1.0 - self.overlap)
        table = self.picture()
        spans = [table.moments_of(i.entry.path) if table is not None else [] for i in items]
        failed: dict[int, BadMedia] = {}

        def windows() -> Iterator[tuple[int, int, float, np.ndarray]]:
            for n, item in enumerate(items):
                try:
                    for m, samples in stream_spans(item.entry.path, rate, spans[n]):
                        for w in _windows([samples], rate, window_s, hop_s):
                            yield n, m, spans[n][m][0] + w.offset_s, w.samples
                except BadMedia as bad:
                    failed[n] = bad

        def featurise(job: tuple[int, int, float, np.ndarray]) -> tuple[int, int, float, Any]:
            n, m, offset, samples = job
            try:
                return n, m, offset, self.encoder.preprocess_audio(samples)
            except Exception as exc:  # noqa: BLE001 - one odd window skips its file, not the run
                return n, m, offset, BadMedia(items[n].entry.path, f"cannot compute audio features ({exc})")

        got: dict[tuple[int, int], tuple[list, list]] = {}
        batch: list[tuple[int, int, float, Any]] = []
        with closing(prefetched(pool, featurise, windows(), self.depth)) as futures:
            for fut in futures:
                n, m, offset, features = fut.result()
                if isinstance(features, BadMedia):
                    failed.setdefault(n, features)
                    continue
                batch.append((n, m, offset, features))
                if len(batch) >= self.batch_size:
                    self._encode(batch, got)
                    batch = []
        if batch:
            self._encode(batch, got)
        out: list[dict | BadMedia] = []
        for n, item in enumerate(items):
            rows = []
            for m, (start, end) in enumerate(spans[n]):
                if (n, m) in got:
                    vecs, offsets = got[(n, m)]
                    vector, best = pool_windows(np.stack(vecs), offsets)
                    rows.append({"start_s": start, "end_s": end, "offset_s": round(best, 3), "vector": vector})
            out.append(failed.get(n) or ({"moments": rows} if rows else
                                         BadMedia(item.entry.path, "no audio samples could be decoded")))
        return out

    def _encode(self, batch: list[tuple[int, int, float, Any]], got: dict) -> None:
        for (n, m, offset, _), vec in zip(batch, self.encoder.encode_audio([f for *_, f in batch])):
            vecs, offsets = got.setdefault((n, m), ([], []))
            vecs.append(vec)
            offsets.append(offset)


_DONE = object()


def ahead(pool: Executor, source: Iterator[Any], depth: int) -> Iterator[Any]:
    """Run a generator in a worker thread, at most `depth` items ahead of the consumer (decoding overlaps the
    model). An error in the generator is raised here; closing this early stops the worker."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in source:
                while not stop.is_set():
                    try:
                        q.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put((_DONE, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            q.put((_DONE, exc))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    worker = pool.submit(produce)
    try:
        while True:
            item, error = q.get()
            if item is _DONE:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        while not worker.done():  # drain, so a producer blocked on a full queue sees the stop
            try:
                q.get(timeout=0.1)
            except queue.Empty:
                pass
