"""How much of float32 exact search a codec keeps, measured on a table's own vectors.

Some of the table's rows are the queries; recall@10 compares the codec's answer (its shortlist, rescored in
full precision, as searches run it) with float32 exact search over the same rows, each query's own row left
out of both lists. Above `max_rows` the measurement runs over the table's first max_rows rows (read from disk,
never the whole table), which flatters a lossy codec a little: a larger table crowds each shortlist more.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from mmsearch.search.codecs import Codec
from mmsearch.store.pinned import PinnedVersion
from mmsearch.store.table import SpaceTable, _vectors

K = 10


@dataclass
class Retention:
    vectors: str
    recall_at_10: float
    queries: int
    rows: int  # rows searched
    table_rows: int
    shortlist: int  # rows rescored in full precision per query
    dims: int | None = None  # the Matryoshka length the codes keep (None: every dimension)

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        over = f"{self.rows:,} rows" if self.rows == self.table_rows else f"a sample of {self.rows:,} of {self.table_rows:,} rows"
        cut = f", first {self.dims} dims" if self.dims else ""
        return (f"recall@10 {self.recall_at_10:.3f}{cut} against float32 exact ({self.queries} of its rows as queries "
                f"over {over}, shortlist {self.shortlist})")


def sample_vectors(table: SpaceTable, max_rows: int) -> tuple[np.ndarray, int]:
    """The table's first max_rows vectors (float32) and its row count."""
    pinned = PinnedVersion(table, table.version)
    mats, n = [], 0
    for batch in pinned.rows_after(None, ["vector"]):
        mats.append(_vectors(batch.column("vector")))
        n += len(mats[-1])
        if n >= max_rows:
            break
    dim = table.space.dim
    matrix = np.concatenate(mats)[:max_rows] if mats else np.zeros((0, dim), np.float32)
    return np.ascontiguousarray(matrix), pinned.count()


def measure(matrix: np.ndarray, kind: str, rerank: int | None = None, queries: int = 30, seed: int = 0,
            table_rows: int | None = None, keep: int | None = None) -> Retention:
    """recall@10 of kind (cut to keep dims) with its shortlist + float32 rescoring, against float32 exact."""
    n = len(matrix)
    codec = Codec.fit(kind, matrix, keep)
    factor = 1 if codec.exact else (rerank or codec.rerank)
    shortlist = min(n - 1, K * factor)
    picks = np.random.default_rng(seed).choice(n, size=min(queries, n), replace=False) if n > K else np.zeros(0, int)
    if len(picks) == 0:
        return Retention(kind, 1.0, 0, n, table_rows or n, shortlist, codec.keep)
    q = matrix[picks]
    exact = matrix @ q.T
    approx = codec.scores(codec.encode(matrix), q)
    recalls = []
    for j, own in enumerate(picks):
        exact[own, j] = approx[own, j] = -np.inf  # a row is trivially its own nearest neighbour
        truth = set(np.argpartition(-exact[:, j], K - 1)[:K].tolist())
        cand = np.argpartition(-approx[:, j], shortlist - 1)[:shortlist]
        cand = cand[cand != own]
        top = cand[np.argsort(-(matrix[cand] @ q[j]), kind="stable")[:K]]
        recalls.append(len(truth & set(top.tolist())) / K)
    return Retention(kind, round(float(np.mean(recalls)), 4), len(picks), n, table_rows or n, shortlist, codec.keep)


def table_retention(table: SpaceTable, kind: str, rerank: int | None = None, queries: int = 30,
                    max_rows: int = 50_000, keep: int | None = None) -> Retention:
    matrix, rows = sample_vectors(table, max_rows)
    return measure(matrix, kind, rerank, queries, table_rows=rows, keep=keep)
