"""Query latency over synthetic clustered vectors written into a real mmsearch table."""

from __future__ import annotations

import gc
import shutil
import statistics
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pyarrow as pa

from common import CpuShare, ModelUnderTest, interleaved, percentiles, timed

from mmsearch.encoders import Encoder
from mmsearch.encoders.base import EmbeddingSpace
from mmsearch.search import Searcher
from mmsearch.service import MMSearch
from mmsearch.store import Library
from mmsearch.store.table import META_COLUMNS, SpaceTable

DIM = 512
K = 10
CLUSTERS = 256
GAP_S = 0.05
SPREAD = 0.8  # noise norm relative to a unit centre: within-cluster cosine ~0.6, like one photo theme
TEXTS = [f"a photo of {w}" for w in (
    "a dog on the beach", "a red car at night", "mountains under snow", "a bowl of ramen", "two cats sleeping",
    "a city skyline", "children playing football", "an old wooden boat", "a bride and groom", "a birthday cake",
    "autumn leaves", "a lighthouse in fog", "a plate of sushi", "a cyclist in the rain", "a field of tulips",
    "the milky way", "a crowded market", "a sleeping baby", "a vintage camera", "a waterfall in a forest")]


class Clusters:
    def __init__(self, dim: int, seed: int = 0) -> None:
        self.dim = dim
        self.centres = _unit(np.random.default_rng(seed).standard_normal((CLUSTERS, dim), np.float32))

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        pick = self.centres[rng.integers(0, CLUSTERS, n)]
        noise = rng.standard_normal((n, self.dim), np.float32) * (SPREAD / np.sqrt(self.dim))
        return _unit(pick + noise)


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _rows(table: SpaceTable, start: int, vectors: np.ndarray,
          words: Callable[[int], str] | None = None) -> pa.Table:
    """words(i): extra keyword text for row i (file-name words, captions), so keyword search has matches."""
    n, dim = vectors.shape
    names = [f"synthetic_{i:07d}.jpg" for i in range(start, start + n)]
    cols = {"path": [f"/bench/synthetic/{name}" for name in names], "folder": ["/bench/synthetic"] * n,
            "name": names, "hash": [f"{i:032x}" for i in range(start, start + n)], "size": [250_000] * n,
            "mtime_ns": [1_700_000_000_000_000_000] * n, "width": [1024] * n, "height": [768] * n,
            "format": ["JPEG"] * n,
            "text": [f"synthetic {name[:-4]}" + (f" {words(start + j)}" if words else "") for j, name in enumerate(names)],
            "indexed_at": [datetime.now(timezone.utc)] * n,
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), dim)}
    schema = table.table.schema
    # Columns this benchmark has no values for (other modalities' fields) stay null, as for real images.
    cols.update({f.name: pa.nulls(n, f.type) for f in schema if f.name not in cols})
    return pa.table({f.name: cols[f.name] for f in schema}, schema=schema)


def _chunks(n: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n, size):
        yield start, min(size, n - start)


def build_table(data_dir: Path, space: EmbeddingSpace, n: int, chunk: int = 20_000) -> tuple[Library, SpaceTable, float]:
    """A fresh library whose image table holds n clustered vectors, written with SpaceTable.upsert."""
    shutil.rmtree(data_dir, ignore_errors=True)
    lib = Library(data_dir, create=True)
    table = lib.table("image", space, create=True)
    assert table is not None
    return lib, table, fill_table(table, n, Clusters(space.dim), np.random.default_rng(1), chunk=chunk)


def fill_table(table: SpaceTable, n: int, clusters: Clusters, rng: np.random.Generator,
               words: Callable[[int], str] | None = None, chunk: int = 20_000) -> float:
    """Writes n rows of vectors drawn from `clusters` with SpaceTable.upsert; returns the seconds it took."""
    spent = 0.0
    for start, size in _chunks(n, chunk):
        rows = _rows(table, start, clusters.sample(size, rng), words)
        spent += timed(lambda: table.upsert(rows))
    return spent


def _matrix(table: SpaceTable) -> tuple[np.ndarray, list[str]]:
    mats, paths = [], []
    for batch, vectors in table.iter_vectors():
        mats.append(vectors)
        paths.extend(batch.column(batch.schema.get_field_index("path")).to_pylist())
    return np.ascontiguousarray(np.concatenate(mats)), paths


def _einsum(matrix: np.ndarray, q: np.ndarray) -> np.ndarray:
    return np.einsum("ij,j->i", matrix, q)  # numpy's own loop: one thread, no BLAS pool to wake


def numpy_top(matrix: np.ndarray, q: np.ndarray, k: int = K, matvec=np.matmul) -> np.ndarray:  # noqa: ANN001
    scores = matvec(matrix, q)
    top = np.argpartition(-scores, k - 1)[:k]
    return top[np.argsort(-scores[top], kind="stable")]


def lancedb_flat(table: SpaceTable, q: np.ndarray) -> pa.Table:
    return (table.table.search(q, vector_column_name="vector").distance_type("cosine")
            .select([*META_COLUMNS, "_distance"]).limit(K).to_arrow())


def _recall(found: list[list[str]], truth: list[list[str]]) -> float:
    return round(statistics.fmean(len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)), 4)


def exact_paths(matrix: np.ndarray, paths: list[str], queries: np.ndarray) -> list[list[str]]:
    return [[paths[i] for i in numpy_top(matrix, q)] for q in queries]


def bench_size(mut: ModelUnderTest, encoder: Encoder, n: int, work: Path, n_queries: int, ann: bool) -> dict:
    share = CpuShare()
    space = encoder.space if encoder.space.dim == DIM else EmbeddingSpace("bench", "synthetic", "clustered", DIM)
    lib, table, write_s = build_table(work / f"q-lib-{n}", space, n)
    matrix, paths = _matrix(table)
    queries = Clusters(DIM).sample(n_queries, np.random.default_rng(2))
    searcher = Searcher(lib, encoder, ann_threshold=10**12)  # the exact path, whatever n is
    out: dict = {"rows": table.count(), "write_s_upsert_20k_chunks": round(write_s, 2)}
    out["searcher_exact_cold_ms"] = round(timed(lambda: searcher.by_vector(table, queries[0], K)) * 1000, 1)
    exact = {
        "searcher_exact": lambda i: searcher.by_vector(table, queries[i], K),
        "numpy_bruteforce": lambda i: numpy_top(matrix, queries[i]),
        "numpy_einsum_1_thread": lambda i: numpy_top(matrix, queries[i], matvec=_einsum),
    }
    out.update(interleaved(exact, n_queries))
    # As in interactive use: an idle pause before each query (BLAS threads asleep, caches cold).
    idle = interleaved(exact, min(n_queries, 100), gap_s=GAP_S)
    out.update({f"{name}_after_idle": v for name, v in idle.items()})
    # Timed apart: during a LanceDB scan (10-300 ms) the BLAS threads go to sleep, so the next numpy
    # product, woken on a busy machine, ran ~10x slower here; interleaving would charge that to numpy.
    out.update(interleaved({"lancedb_flat": lambda i: lancedb_flat(table, queries[i])}, n_queries,
                           budget_s={"lancedb_flat": 20.0}))
    truth = exact_paths(matrix, paths, queries)
    found = [lancedb_flat(table, q).column("path").to_pylist() for q in queries[:5]]
    out["lancedb_flat_recall_vs_numpy"] = _recall(found, truth[:5])
    out["end_to_end_text"] = _end_to_end(mut, encoder, n, work, lib if space == encoder.space else None)
    if ann:
        out["ann"] = _ann(lib, encoder, table, matrix, queries, truth)
    out["upsert_512_rows_into_table_ms"] = _commit_cost(table, n)
    out["others_cpu_share"] = share.others()
    del matrix, searcher
    shutil.rmtree(work / f"q-lib-{n}", ignore_errors=True)
    gc.collect()
    return out


def _end_to_end(mut: ModelUnderTest, encoder: Encoder, n: int, work: Path, lib: Library | None) -> dict:
    """MMSearch.search_text: tokenise + encode + table lookup + search, in the encoder's own space."""
    data_dir = work / f"q-lib-{n}" if lib is not None else work / f"q-e2e-{n}"
    if lib is None:  # the tiny model's space has its own width, so it gets its own table of n rows
        build_table(data_dir, encoder.space, n)
    mm = MMSearch(mut.with_data_dir(data_dir), encoder=encoder)
    text = lambda i: TEXTS[i % len(TEXTS)]  # noqa: E731
    out = interleaved({
        "search_text": lambda i: mm.search_text(text(i), K),
        "text_encode": lambda i: encoder.encode_text([text(i)]),
    }, 40)
    # Timed alone: between forward passes on the busy machine it read 3-5 ms p50, alone 0.01-0.03 ms.
    out.update(interleaved({"searcher_table_lookup": lambda i: mm.searcher.table()}, 200))
    if lib is None:
        shutil.rmtree(data_dir, ignore_errors=True)
    return {**out, "dim": encoder.space.dim}


def _ann(lib: Library, encoder: Encoder, table: SpaceTable, matrix: np.ndarray, queries: np.ndarray,
         truth: list[list[str]]) -> dict:
    build_s = timed(table.build_ann_index)
    searcher = Searcher(lib, encoder, ann_threshold=1)  # the ANN path of a real query, count and index checks included
    found = [[r.path for r in searcher.by_vector(table, q, K)] for q in queries]
    lat = interleaved({
        "searcher_ann": lambda i: searcher.by_vector(table, queries[i], K),
        "table_ann_search": lambda i: table.ann_search(queries[i], K),
        "numpy_bruteforce": lambda i: numpy_top(matrix, queries[i]),
    }, len(queries))
    return {"index": "IVF_HNSW_SQ (SpaceTable.build_ann_index)", "build_s": round(build_s, 1), **lat,
            "recall_at_10_vs_exact": _recall(found, truth)}


def _commit_cost(table: SpaceTable, n: int) -> dict:
    """One indexer commit (merge_insert of 512 new rows) into a table of about n rows."""
    rng, clusters = np.random.default_rng(3), Clusters(table.space.dim)
    rows = [_rows(table, 10**8 + j * 512, clusters.sample(512, rng)) for j in range(4)]
    table.upsert(rows[0])  # warm-up
    return percentiles([timed(lambda r=r: table.upsert(r)) for r in rows[1:]])


def run_queries(mut: ModelUnderTest, sizes: list[int], work: Path, n_queries: int, ann: bool,
                ann_min: int) -> dict:
    encoder = mut.encoder()
    encoder.load()
    out: dict = {"dim": DIM, "k": K, "clusters": CLUSTERS, "queries": n_queries, "sizes": {}}
    for n in sizes:
        out["sizes"][str(n)] = bench_size(mut, encoder, n, work, n_queries, ann and n >= ann_min)
    return out
