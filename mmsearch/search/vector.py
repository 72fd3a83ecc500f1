"""Nearest neighbours in one table: the resident (compressed) index below the ANN threshold, LanceDB's
index above it, LanceDB's own scan for a process that answers one query."""

from __future__ import annotations

import threading
from typing import Callable

import numpy as np

from mmsearch.query.filters import Filters
from mmsearch.search.batching import ScanBatcher
from mmsearch.search.resident import META_ROWS, ResidentIndex, Snapshot
from mmsearch.store.table import DEFAULT_ANN, SpaceTable


class VectorSearch:
    def __init__(self, ann_threshold: int = 150_000, one_shot: bool = False,
                 setting: Callable[[SpaceTable], str] | None = None, rerank: int | None = None,
                 meta_rows: int = META_ROWS) -> None:
        """one_shot: a process that answers one query (a cold CLI search) scans in LanceDB instead of loading
        the whole matrix into memory first, which costs more than the query itself.
        setting(table): "auto" or a codec kind for the table's resident copy (search/choice.py reads the
        library's); rerank: shortlist per result for the full-precision rescoring (None: the codec's own)."""
        self.ann_threshold = ann_threshold
        self.one_shot = one_shot
        self.setting = setting or (lambda table: "auto")
        self.rerank = rerank
        self.meta_rows = meta_rows
        self._resident: dict[str, ResidentIndex] = {}
        self._lock = threading.Lock()
        self.batcher = ScanBatcher()  # concurrent queries on one snapshot share a scan

    def _index(self, table: SpaceTable) -> ResidentIndex:
        with self._lock:
            index = self._resident.get(table.name)
            if index is None:
                index = self._resident[table.name] = ResidentIndex(self.setting, self.meta_rows)
            return index

    def snapshot(self, table: SpaceTable) -> Snapshot:
        """The resident index's current snapshot of table (loaded or refreshed as needed)."""
        return self._index(table).snapshot(table)

    def loaded(self, table: SpaceTable) -> Snapshot | None:
        """The snapshot already resident for table, if any; loads nothing."""
        index = self._resident.get(table.name)
        return index.current if index is not None else None

    def uses_ann(self, table: SpaceTable) -> bool:
        return table.count() >= self.ann_threshold and table.has_ann_index()

    def _resident_path(self, table: SpaceTable) -> bool:
        return not self.uses_ann(table) and not self.one_shot

    def search_many(self, table: SpaceTable, vectors: list[np.ndarray], n: int, filters: Filters | None = None,
                    approximate: bool = False, keep: int | None = None) -> list[list[tuple[dict, float]]]:
        """One result list per vector; below the ANN threshold they share one pass over the resident codes.
        keep: how many of the n the caller will show (Snapshot.search_many sizes the rescoring for those)."""
        if self._resident_path(table):
            return self.batcher.search_many(self.snapshot(table), np.stack(vectors), n, filters, self.rerank, keep)
        return [self.search(table, v, n, filters, approximate) for v in vectors]

    def search(self, table: SpaceTable, vector: np.ndarray, n: int, filters: Filters | None = None,
               approximate: bool = False) -> list[tuple[dict, float]]:
        """approximate=True returns the ANN index's quantised scores, for a caller that rescores. The resident
        path always answers with exact cosines (its shortlist is rescored in full precision)."""
        if self._resident_path(table):
            return self.snapshot(table).search_many(vector.reshape(1, -1), n, filters, self.rerank)[0]
        ann = self.uses_ann(table)
        where = filters.sql() if filters else None
        if not ann:  # one query in this process: LanceDB's exact scan, no matrix in memory
            rows = table.ann_search(vector, n, where, exact=True).to_pylist()
            return [(r, 1.0 - r.pop("_distance")) for r in rows]
        rows = table.ann_search(vector, n, where, refine=None if approximate else DEFAULT_ANN.refine_factor).to_pylist()
        if where and len(rows) < n:
            # A selective filter can starve the index's candidate lists: confirm with an exact scan.
            rows = table.ann_search(vector, n, where, exact=True).to_pylist()
        return [(r, 1.0 - r.pop("_distance")) for r in rows]

    def vectors(self, table: SpaceTable, paths: list[str]) -> dict[str, np.ndarray]:
        """Full-precision stored vectors for rescoring a shortlist."""
        if self._resident_path(table):
            return self.snapshot(table).vectors_for_paths(paths)
        rows = table.rows_for_paths(paths, with_vector=True)
        return {p: np.asarray(r["vector"], np.float32) for p, r in rows.items()}
