"""The ANN index (issue 14, part 3): same answers as exact search, and appends join it without a rebuild."""

from __future__ import annotations

import numpy as np

from mmsearch.encoders import EmbeddingSpace
from mmsearch.search import Searcher
from mmsearch.store import Library, SpaceTable
from mmsearch.store.table import DEFAULT_ANN, AnnConfig

DIM = 64


def _clustered(rng: np.random.Generator, n: int, centres: np.ndarray) -> np.ndarray:
    v = centres[rng.integers(0, len(centres), n)] + 0.35 * rng.normal(size=(n, DIM))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def _rows(vecs: np.ndarray, start: int = 0) -> list[dict]:
    return [{"path": f"/p/{start + i}.jpg", "folder": "/p", "name": f"{start + i}.jpg", "hash": f"h{start + i}",
             "size": 1, "format": "JPEG", "text": f"photo {start + i}", "vector": v} for i, v in enumerate(vecs)]


def _table(tmp_path, n: int = 3000) -> tuple[Library, SpaceTable, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(24, DIM))
    vecs = _clustered(rng, n, centres)
    lib = Library(tmp_path / "lib")
    table = lib.table("image", EmbeddingSpace("synthetic", "s", "w", DIM), create=True)
    table.upsert_rows(_rows(vecs))
    return lib, table, vecs, centres


def test_the_index_answers_what_exact_search_answers(tmp_path):
    lib, table, vecs, centres = _table(tmp_path)
    exact = Searcher(lib, encoder=None, ann_threshold=10**9)  # type: ignore[arg-type]
    ann = Searcher(lib, encoder=None, ann_threshold=1)  # type: ignore[arg-type]
    table.build_ann_index()
    assert ann.vectors.uses_ann(table) and not exact.vectors.uses_ann(table)
    queries = _clustered(np.random.default_rng(1), 20, centres)  # new points, not rows of the table
    overlap, same_first = [], 0
    for q in queries:
        want = [r.path for r in exact.by_vector(table, q, 10)]
        got = ann.by_vector(table, q, 10)
        overlap.append(len(set(want) & {r.path for r in got}) / 10)
        same_first += got[0].path == want[0]
        scores = {r.path: r.score for r in exact.by_vector(table, q, 10)}
        # refined: what the index returns carries the full-precision score, not a quantised one
        assert all(abs(r.score - scores[r.path]) < 1e-4 for r in got if r.path in scores)
    assert np.mean(overlap) >= 0.95 and same_first >= 19


def test_an_append_joins_the_index_without_a_rebuild(tmp_path, monkeypatch):
    lib, table, vecs, centres = _table(tmp_path)
    table.build_ann_index()
    builds = []
    original = SpaceTable.build_ann_index
    monkeypatch.setattr(SpaceTable, "build_ann_index", lambda self, *a: builds.append(1) or original(self, *a))
    new = _clustered(np.random.default_rng(2), 64, centres)
    table.upsert_rows(_rows(new, start=10_000))  # one indexer commit
    table.maintain(ann_threshold=1)
    assert builds == []  # folded in by optimize, not rebuilt
    stats = table.table.index_stats(next(ix.name for ix in table.table.list_indices() if "vector" in ix.columns))
    assert stats.num_unindexed_rows == 0 and stats.num_indexed_rows == len(vecs) + len(new)
    ann = Searcher(lib, encoder=None, ann_threshold=1)  # type: ignore[arg-type]
    found = sum(ann.by_vector(table, v, 1)[0].path == f"/p/{10_000 + i}.jpg" for i, v in enumerate(new))
    assert found >= 62  # each new row is its own nearest neighbour through the index


def test_the_partition_count_follows_the_table_size():
    cfg = AnnConfig(rows_per_partition=4096)
    assert cfg.partitions(100) == 1 and cfg.partitions(1_000_000) == 244
    assert DEFAULT_ANN.partitions(200_000) == 195
    assert DEFAULT_ANN.index(1_000_000, "cuda").accelerator == "cuda"  # trained on the GPU when one is there
    assert DEFAULT_ANN.index(1_000_000).num_partitions == DEFAULT_ANN.partitions(1_000_000)
    # Linear up to 1M rows, then with the square root; the k-means sample stays at the 1M build's.
    assert DEFAULT_ANN.partitions(1_000_000) == 977 and DEFAULT_ANN.partitions(10_000_000) == 3088
    assert DEFAULT_ANN.training_rate(1_000_000) == 256 and DEFAULT_ANN.training_rate(200_000) == 256
    big = DEFAULT_ANN.index(10_000_000)
    assert big.num_partitions == 3088 and big.sample_rate == 80
    assert abs(big.num_partitions * big.sample_rate - 977 * 256) < 3088  # ~250k training rows, not 2.5M
