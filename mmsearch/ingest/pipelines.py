"""What indexing one modality takes: which files, how to read them, how to embed them.

The indexer runs the same plan -> prepare -> embed -> commit loop for every modality; a pipeline
supplies the parts that differ. `prepare` runs in worker threads (hash, metadata, and whatever decoding
can be done per file), `embed` in the indexer's thread, which owns the model.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

from mmsearch.encoders.base import Encoder
from mmsearch.errors import BadMedia
from mmsearch.ingest.sources import read_bytes
from mmsearch.location import is_uri
from mmsearch.media.files import FileEntry
from mmsearch.media.images import decode_image
from mmsearch.media.images import supported_extensions as image_extensions

HASH_CHUNK = 1 << 22


@dataclass
class Prepared:
    entry: FileEntry
    hash: str
    fields: dict[str, Any] = field(default_factory=dict)  # metadata columns of the row
    payload: Any = None  # what embed() needs; None when the vector is reused from an identical file


class MediaPipeline(ABC):
    modality: ClassVar[str]
    optional: ClassVar[bool] = False  # True: a missing model skips these files instead of failing the run
    missing: ClassVar[str] = ""  # what a missing optional model leaves out, said for each file ("" : "no M model")
    reused_columns: ClassVar[tuple[str, ...]] = ("vector",)  # copied from an identical file's row
    reads_objects: ClassVar[bool] = False  # True: can read files from object storage (s3://...) too
    source_options: Mapping[str, str] = {}  # object-store options for those reads (set by the indexer)

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder

    @abstractmethod
    def extensions(self) -> frozenset[str]: ...

    def accepts(self, path: str) -> bool:
        dot = path.rfind(".")
        return dot >= 0 and path[dot:].lower() in self.extensions()

    def prefetch(self, batch_size: int, workers: int) -> int:
        """Files prepared ahead of the model."""
        return max(batch_size * 3, workers * 2)

    def work(self, item: Prepared) -> float:
        """Model inputs an item costs, which batches and commits are sized in: one per file by default."""
        return 1.0

    def rows(self, row: dict) -> list[dict]:
        """The table rows of one file's columns: one by default (a video has one per moment)."""
        return [row]

    @abstractmethod
    def prepare(self, entry: FileEntry, known: set[str]) -> Prepared:
        """Worker thread: hash and read metadata; decode only if the hash is not in `known`."""

    @abstractmethod
    def embed(self, items: list[Prepared], pool: Executor) -> list[dict | BadMedia]:
        """Indexer thread: one dict of columns (with 'vector') or one BadMedia per item, in order."""


class ImagePipeline(MediaPipeline):
    modality = "image"
    reads_objects = True

    def __init__(self, encoder: Encoder, max_pixels: int) -> None:
        super().__init__(encoder)
        self.max_pixels = max_pixels

    def extensions(self) -> frozenset[str]:
        return image_extensions()

    def prepare(self, entry: FileEntry, known: set[str]) -> Prepared:
        data = read_file(entry.path, self.source_options)
        digest = hashlib.blake2b(data, digest_size=16).hexdigest()
        decoded = decode_image(data, entry.path, self.max_pixels, self.encoder.image_draft_size())
        item = Prepared(entry, digest, {"width": decoded.width, "height": decoded.height, "format": decoded.format})
        if digest not in known:
            item.payload = self.encoder.preprocess_image(decoded.image)
        return item

    def embed(self, items: list[Prepared], pool: Executor) -> list[dict | BadMedia]:
        vectors = self.encoder.encode_images([i.payload for i in items])
        return [{"vector": v} for v in vectors]


def read_file(path: str, options: Mapping[str, str] | None = None) -> bytes:
    """A local file, or an object (s3://bucket/key) read with the given store options."""
    if is_uri(path):
        return read_bytes(path, options)
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise BadMedia(path, f"cannot read ({exc.strerror or exc})") from None


def hash_file(path: str) -> str:
    """The same digest as hashing the whole file at once, read in chunks so big files stay on disk."""
    h = hashlib.blake2b(digest_size=16)
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(HASH_CHUNK), b""):
                h.update(chunk)
    except OSError as exc:
        raise BadMedia(path, f"cannot read ({exc.strerror or exc})") from None
    return h.hexdigest()
