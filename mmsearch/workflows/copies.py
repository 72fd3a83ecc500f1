"""Copies of a known-bad file and clusters of near-duplicates, photos and videos alike: the one workflow
behind `mmsearch moderate copies|dupes` and the Review tab's "Find copies" and "Find near-duplicate clusters".

A picture is matched by its perceptual hashes (workflows/dupes.py, optionally by embedding too), a video
clip by its frames' hashes lined up in time (workflows/video_dupes.py); which one is chosen by the file's
extension, as the indexer chooses. Copies go to the review queue as flags: a photo as itself, a video as
the stretch of it that copies the clip.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mmsearch.media.video import is_video_file
from mmsearch.workflows import dupes, video_dupes

if TYPE_CHECKING:
    from mmsearch.service import MMSearch

IMAGE_COLUMNS = ["method", "distance", "similarity", "path"]
VIDEO_COLUMNS = ["method", "score", "start_s", "end_s", "path"]


@dataclass
class Copies:
    modality: str  # "image" or "video"
    found: list[Any]  # dupes.Copy or video_dupes.VideoCopy, best first
    flags: list[Any] = field(default_factory=list)  # review-queue entries, one per copy

    @property
    def columns(self) -> list[str]:
        return VIDEO_COLUMNS if self.modality == "video" else IMAGE_COLUMNS

    def records(self) -> list[dict]:
        return [c.record() for c in self.found]

    def queue(self, service: "MMSearch") -> int:
        """Put the copies in the review queue; how many were new there."""
        from mmsearch.workflows.review import ReviewQueue

        return ReviewQueue(service.library()).add(self.flags, source="copies").new if self.flags else 0


def find_copies(service: "MMSearch", file: str, cut: int = dupes.DEFAULT_CUT, similarity: float | None = None,
                min_share: float = video_dupes.MIN_SHARE) -> Copies:
    """Every copy of `file` in the library. `cut`: most differing bits of 64 (an image's, or a video frame's);
    `similarity`: also embedding matches at or above this cosine (images); `min_share`: a video's share of the
    clip's frames that must line up."""
    name = Path(file).name
    if is_video_file(file):
        found = video_dupes.find_clip_copies(service, file, cut, min_share)
        return Copies("video", found, [c.flag(name, min_share) for c in found])
    found = dupes.find_copies(service, dupes.hash_index(service), file, cut, similarity)
    return Copies("image", found, [c.flag(name, cut) for c in found])


@dataclass
class Cluster:
    modality: str
    members: list[dict]  # {"path", ...how it matches the first}

    def record(self, n: int) -> dict:
        return {"cluster": n, "modality": self.modality, "members": self.members}


@dataclass
class NearDuplicates:
    clusters: list[Cluster]
    images: int
    videos: int
    hashed: int  # files hashed in this run (the rest came from the store)
    seconds: float
    skipped: list[tuple[str, str]]


def near_duplicates(service: "MMSearch", cut: int = dupes.DEFAULT_CUT,
                    min_share: float = video_dupes.DUPE_SHARE) -> NearDuplicates:
    """Clusters of near-identical photos (by hash, within `cut` bits) and of videos that copy one another
    (frames within `cut` bits lining up over `min_share` of their common time and of the shorter video),
    largest first within each."""
    library = service.library()
    # A library of videos alone has no photos to hash; one with neither says so (the image side's message).
    if library.spaces("image") or not library.tables("video"):
        images = dupes.hash_index(service)
    else:
        images = dupes.HashIndex([], np.zeros((0, len(dupes.CROPS)), np.uint64))
    found = [Cluster("image", [{"path": p, "distance": d} for p, d in g]) for g in dupes.clusters(images, cut)]
    videos = video_dupes.library_prints(service)
    for group in video_dupes.clusters(videos, cut, min_share):
        found.append(Cluster("video", [{"path": p, **({} if a is None else _aligned(a))} for p, a in group]))
    return NearDuplicates(found, len(images.paths), len(videos.paths), images.hashed + videos.hashed,
                          images.seconds + videos.seconds, images.skipped + videos.skipped)


def _aligned(a: "video_dupes.Alignment") -> dict:
    return {"score": a.score, "offset_s": a.offset_s, "start_s": a.start_s, "end_s": a.end_s,
            "coverage": a.coverage}
