"""Nearest neighbours in one table: exact in memory below the ANN threshold, LanceDB's index above."""

from __future__ import annotations

import threading

import numpy as np

from mmsearch.query.filters import Filters
from mmsearch.search.exact import ExactIndex
from mmsearch.store.table import DEFAULT_ANN, SpaceTable


class VectorSearch:
    def __init__(self, ann_threshold: int = 150_000, one_shot: bool = False) -> None:
        """one_shot: a process that answers one query (a cold CLI search) scans in LanceDB instead of loading
        the whole matrix into memory first, which costs more than the query itself."""
        self.ann_threshold = ann_threshold
        self.one_shot = one_shot
        self._exact: dict[str, ExactIndex] = {}
        self._lock = threading.Lock()

    def _index(self, table: SpaceTable) -> ExactIndex:
        with self._lock:
            return self._exact.setdefault(table.name, ExactIndex())

    def uses_ann(self, table: SpaceTable) -> bool:
        return table.count() >= self.ann_threshold and table.has_ann_index()

    def search_many(self, table: SpaceTable, vectors: list[np.ndarray], n: int, filters: Filters | None = None,
                    approximate: bool = False) -> list[list[tuple[dict, float]]]:
        """One result list per vector; below the ANN threshold they share one pass over the matrix."""
        if not self.uses_ann(table) and not self.one_shot:
            return self._index(table).search_many(table, np.stack(vectors), n, filters)
        return [self.search(table, v, n, filters, approximate) for v in vectors]

    def search(self, table: SpaceTable, vector: np.ndarray, n: int, filters: Filters | None = None,
               approximate: bool = False) -> list[tuple[dict, float]]:
        """approximate=True returns the ANN index's quantised scores, for a caller that rescores."""
        ann = self.uses_ann(table)
        if not ann and not self.one_shot:
            return self._index(table).search(table, vector, n, filters)
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
        if not self.uses_ann(table) and not self.one_shot:
            return self._index(table).vectors(table, paths)
        rows = table.rows_for_paths(paths, with_vector=True)
        return {p: np.asarray(r["vector"], np.float32) for p, r in rows.items()}
