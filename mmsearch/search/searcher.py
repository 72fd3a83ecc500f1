"""Text, image and more-like-this queries over the image table of the encoder's space."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from PIL import Image

from mmsearch.encoders.base import Encoder
from mmsearch.errors import BadMedia, BadQuery, EmptyQuery, LibraryNotFound, SpaceMismatch
from mmsearch.media.images import decode_image, flatten
from mmsearch.search.vector import VectorSearch
from mmsearch.search.results import SearchResult
from mmsearch.store.library import Library
from mmsearch.store.table import SpaceTable

MAX_K = 1000


class Searcher:
    """Receives a library and an encoder; never builds them."""

    def __init__(self, library: Library, encoder: Encoder, ann_threshold: int = 150_000,
                 max_pixels: int = 178_956_970) -> None:
        self.library = library
        self.encoder = encoder
        self.ann_threshold = ann_threshold
        self.max_pixels = max_pixels
        self.vectors = VectorSearch(ann_threshold)
        self._ann_lock = threading.Lock()

    def table(self) -> SpaceTable:
        space = self.encoder.space
        table = self.library.table("image", space)
        if table is not None:
            return table
        others = self.library.spaces("image")
        if not others:
            raise LibraryNotFound(f"the library at {self.library.data_dir} has no images yet; index a folder first")
        have = "; ".join(s.describe() for s in others)
        raise SpaceMismatch(
            f"this library was indexed with {have}, not {space.describe()}. Search with the model it was "
            f"built with (--model/--pretrained), or run `mmsearch index` with the new model to embed the "
            f"library again in its own table (the existing table is kept)"
        )

    # -- queries --------------------------------------------------------------------------------
    def by_text(self, text: str, k: int = 12) -> list[SearchResult]:
        text = (text or "").strip()
        if not text:
            raise EmptyQuery("the query is empty: type some words to search for")
        table = self.table()
        return self.by_vector(table, self.encoder.encode_text([text])[0], k)

    def by_image(self, image: Image.Image | str | Path, k: int = 12) -> list[SearchResult]:
        table = self.table()
        if not isinstance(image, Image.Image):
            image = self._read_image(Path(image))
        tensor = self.encoder.preprocess_image(flatten(image))
        return self.by_vector(table, self.encoder.encode_images([tensor])[0], k)

    def like(self, path: str, k: int = 12, table: SpaceTable | None = None) -> list[SearchResult]:
        """More like this: reuse the stored vector of an indexed file, skip the file itself.

        table: another table to look in (e.g. the audio table); default the image table."""
        table = table or self.table()
        row = table.rows_for_paths([path], with_vector=True).get(path)
        if row is None:
            raise BadQuery(f"{path} is not in the library; index its folder first or upload it as an image query")
        hits = self.by_vector(table, np.asarray(row["vector"], np.float32), k + 1)
        return [h for h in hits if h.path != path][:k]

    def by_vector(self, table: SpaceTable, vector: np.ndarray, k: int) -> list[SearchResult]:
        if not 1 <= k <= MAX_K:
            raise BadQuery(f"k must be between 1 and {MAX_K}, got {k}")
        return [SearchResult.from_row(r, s, table.modality, table.space.id)
                for r, s in self.vectors.search(table, vector, k)]

    # -- maintenance ----------------------------------------------------------------------------
    def maintain(self) -> list[str]:
        """Update keyword and ANN indexes of every table. Safe to run in a background thread.

        Holds the library's writer lock, as an indexer does: an index build rewrites the table's
        indexes and must not interleave with another process's commits. Raises LibraryBusy when a
        writer holds it (that writer maintains the indexes itself when it finishes)."""
        if not self._ann_lock.acquire(blocking=False):
            return []  # a maintenance of this library is running in this process already
        try:
            with self.library.writer_lock():
                done = []
                for modality in ("image", "audio"):
                    for space in self.library.spaces(modality):
                        table = self.library.table(modality, space)
                        if table is not None:
                            done += [f"{table.name}: {d}" for d in table.maintain(self.ann_threshold)]
                return done
        finally:
            self._ann_lock.release()

    def _read_image(self, path: Path) -> Image.Image:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise BadQuery(f"cannot read query image {path}: {exc.strerror or exc}") from None
        try:
            return decode_image(data, str(path), self.max_pixels).image
        except BadMedia as bad:
            raise BadQuery(f"query image {bad}") from None
