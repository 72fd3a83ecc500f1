"""The image table of the encoder's space, its index maintenance, and top-k of one vector in a table.

Queries from every surface go through the query engine (mmsearch/query/engine.py); this module keeps only
what the engine and the benchmarks call: the table lookup with its clear mismatch message, by_vector and
maintain."""

from __future__ import annotations

import threading

import numpy as np

from mmsearch.encoders.base import Encoder
from mmsearch.errors import BadQuery, LibraryNotFound, SpaceMismatch
from mmsearch.search.choice import LibraryVectors
from mmsearch.search.vector import VectorSearch
from mmsearch.search.results import SearchResult
from mmsearch.store.library import Library
from mmsearch.store.table import SpaceTable

MAX_K = 1000


class Searcher:
    """Receives a library and an encoder; never builds them."""

    def __init__(self, library: Library, encoder: Encoder, ann_threshold: int = 150_000,
                 max_pixels: int = 178_956_970, vectors: str | None = None, rerank: int | None = None) -> None:
        """vectors: the resident codec for every table (None: the library's stored setting, else auto)."""
        self.library = library
        self.encoder = encoder
        self.ann_threshold = ann_threshold
        self.max_pixels = max_pixels
        self.vectors = VectorSearch(ann_threshold, setting=LibraryVectors(library, vectors), rerank=rerank)
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
                for modality in ("image", "audio", "video"):
                    for space in self.library.spaces(modality):
                        table = self.library.table(modality, space)
                        if table is not None:
                            done += [f"{table.name}: {d}" for d in table.maintain(self.ann_threshold)]
                return done
        finally:
            self._ann_lock.release()
