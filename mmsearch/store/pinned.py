"""One version of a table, held fixed: what the resident vector index reads and answers from.

A searcher's in-memory index stands for exactly one table version. Reading its rows, its new rows, its
metadata and its full-precision vectors from a handle checked out at that version means a search never
mixes two versions, however many commits land while it runs.

Row ids are LanceDB's `_rowid`: unique within a version and never reused by a later one (a new fragment
gets a higher id than every earlier one; a compaction writes its rows again under new, higher ids), so
"rows added since version V" are the rows whose id is above the highest id V had.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import pyarrow as pa

ROW_ID = "_rowid"


class PinnedVersion:
    """A read-only view of one version of a SpaceTable."""

    def __init__(self, table: Any, version: int) -> None:
        """table: a SpaceTable; version: one of its versions (usually table.version)."""
        self.table = table
        self.version = int(version)
        self._handle = _open_at(table.table, self.version)

    def count(self) -> int:
        return int(self._handle.count_rows())

    def rows_after(self, row_id: int | None, columns: list[str], batch_rows: int = 131072
                   ) -> Iterator[pa.RecordBatch]:
        """Batches of the rows whose id is above row_id (every row for None), with their `_rowid`."""
        query = self._handle.search().select(columns).with_row_id(True)
        if row_id is not None:
            query = query.where(f"{ROW_ID} > {int(row_id)}")
        for batch in query.limit(None).to_batches(batch_rows):
            if batch.num_rows:
                yield batch

    def row_ids(self, where: str | None = None) -> np.ndarray:
        """Sorted ids of the rows alive in this version (matching `where`, when given)."""
        query = self._handle.search().select([ROW_ID])
        if where:
            query = query.where(where)
        ids = [b.column(b.schema.get_field_index(ROW_ID)).to_numpy() for b in query.limit(None).to_batches()]
        out = np.concatenate(ids).astype(np.uint64) if ids else np.zeros(0, np.uint64)
        out.sort()
        return out

    def take(self, row_ids: np.ndarray, columns: list[str]) -> pa.Table:
        """Rows by id, with their `_rowid`, in no particular order; ids this version lacks are left out."""
        if len(row_ids) == 0:
            return pa.table({})
        ids = [int(i) for i in np.asarray(row_ids, np.uint64)]
        return self._handle.take_row_ids(ids).select(columns).with_row_id().to_arrow()


def _open_at(handle: Any, version: int) -> Any:
    """A second handle on the same table, checked out at version: the caller's handle keeps following
    new commits, this one never moves."""
    conn = getattr(handle, "_conn", None)
    other = conn.open_table(handle.name) if conn is not None else handle
    if other is handle:  # no connection to open a second handle with (a future table kind)
        raise RuntimeError(f"cannot pin table {handle.name} at a version")
    other.checkout(version)
    return other
