"""ANN index type and parameters by measurement (issue 14, part 3): build time, latency, recall@10.

Synthetic 512-d unit vectors in 256 clusters (query_bench.Clusters, within-cluster cosine ~0.6), appended
into a real mmsearch table; queries are new vectors from the same clusters; the truth is numpy's exact top 10.
Each config is built with SpaceTable.build_ann_index(AnnConfig(...)) and searched with
SpaceTable.ann_search at several (nprobes, refine_factor); the default config is then confirmed through the
searcher (Searcher.by_vector, the ANN path every query takes) and by an append + SpaceTable.maintain
(LanceDB optimize folds new rows into the index, no rebuild).

    .venv/bin/python bench/ann_bench.py --rows 200000 --grid            # pick: ~15 min on 2 busy cores
    .venv/bin/python bench/ann_bench.py --rows 1000000                  # confirm the default at 1M
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pyarrow as pa

from common import ROOT, CpuShare, interleaved, machine, percentiles, timed
from query_bench import DIM, K, Clusters, _recall, _rows, exact_paths

from mmsearch.encoders.base import EmbeddingSpace
from mmsearch.search import Searcher
from mmsearch.store import Library
from mmsearch.store.table import DEFAULT_ANN, AnnConfig, SpaceTable

GRID = [
    AnnConfig("IVF_PQ", rows_per_partition=4096, num_sub_vectors=64),
    AnnConfig("IVF_PQ", rows_per_partition=1024, num_sub_vectors=64),
    AnnConfig("IVF_PQ", rows_per_partition=4096, num_sub_vectors=128),
    AnnConfig("IVF_PQ", rows_per_partition=4096, num_sub_vectors=64, sample_rate=64, max_iterations=20),
    AnnConfig("IVF_SQ", rows_per_partition=4096),
    AnnConfig("IVF_RQ", rows_per_partition=4096),
    AnnConfig("IVF_HNSW_SQ", rows_per_partition=4096, m=16, ef_construction=100),
    AnnConfig("IVF_SQ", rows_per_partition=1024),
    AnnConfig("IVF_SQ", rows_per_partition=4096, sample_rate=64, max_iterations=20),
    AnnConfig("IVF_RQ", rows_per_partition=1024),
    AnnConfig("IVF_HNSW_PQ", rows_per_partition=4096, num_sub_vectors=64, m=16, ef_construction=100),
    AnnConfig("IVF_SQ", rows_per_partition=1024, sample_rate=64, max_iterations=20),  # 11: the 1M build budget
]
PROBES = [(10, 10), (20, 10), (20, 20), (40, 10), (40, 20), (20, 50), (40, 50)]


def fill(table: SpaceTable, n: int, clusters: Clusters, chunk: int = 50_000) -> float:
    """Appends n rows (Table.add: the bench's keys are new, so no merge is needed)."""
    rng, spent = np.random.default_rng(1), 0.0
    for start in range(0, n, chunk):
        rows = _rows(table, start, clusters.sample(min(chunk, n - start), rng))
        spent += timed(lambda: table.table.add(rows))
    table._wrote()
    return spent


def matrix_of(table: SpaceTable) -> tuple[np.ndarray, list[str]]:
    mats, paths = [], []
    for batch, vectors in table.iter_vectors():
        mats.append(vectors)
        paths.extend(batch.column(batch.schema.get_field_index("path")).to_pylist())
    return np.ascontiguousarray(np.concatenate(mats)), paths


def measure(table: SpaceTable, queries: np.ndarray, truth: list[list[str]], probes: list[tuple[int, int]]) -> list:
    out = []
    for nprobes, refine in probes:
        search = lambda i: table.ann_search(queries[i], K, nprobes=nprobes, refine=refine)  # noqa: E731
        found = [search(i).column("path").to_pylist() for i in range(len(queries))]
        lat = interleaved({"ann": search}, len(queries))["ann"]
        out.append({"nprobes": nprobes, "refine": refine, "recall_at_10": _recall(found, truth),
                    "p50_ms": lat["p50"], "p95_ms": lat["p95"]})
        print(json.dumps(out[-1]), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--grid", action="store_true", help="every config of GRID at every (nprobes, refine)")
    ap.add_argument("--only", help="comma-separated GRID indexes to run")
    ap.add_argument("--probes", help="nprobes:refine pairs to measure the default config at, e.g. 10:10,20:10")
    ap.add_argument("--work", type=Path, default=Path("/tmp/mmsearch-ann"))
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ann.json")
    args = ap.parse_args()

    space = EmbeddingSpace("bench", "synthetic", "clustered", DIM)
    shutil.rmtree(args.work, ignore_errors=True)
    lib = Library(args.work / "lib", create=True)
    table = lib.table("image", space, create=True)
    clusters = Clusters(DIM)
    result: dict = {"machine": machine(), "rows": args.rows, "queries": args.queries, "k": K, "configs": []}
    share = CpuShare()
    result["fill_s"] = round(fill(table, args.rows, clusters), 1)
    matrix, paths = matrix_of(table)
    queries = clusters.sample(args.queries, np.random.default_rng(2))
    truth = exact_paths(matrix, paths, queries)
    result["numpy_exact"] = interleaved({"numpy": lambda i: matrix @ queries[i]}, min(50, args.queries))["numpy"]
    del matrix
    print(json.dumps({"fill_s": result["fill_s"]}), flush=True)

    configs = GRID if args.grid else [DEFAULT_ANN]
    if args.only:
        configs = [GRID[int(i)] for i in args.only.split(",")]
    for cfg in configs:
        try:
            build_s = timed(lambda: table.build_ann_index(cfg))
        except Exception as exc:  # noqa: BLE001 - a config LanceDB refuses is reported, not fatal
            result["configs"].append({"config": asdict(cfg), "error": str(exc)[:300]})
            print(json.dumps(result["configs"][-1]), flush=True)
            continue
        entry = {"config": asdict(cfg), "partitions": cfg.partitions(args.rows), "build_s": round(build_s, 1)}
        print(json.dumps(entry), flush=True)
        entry["probes"] = measure(table, queries, truth, PROBES if args.grid else probe_list(args.probes, cfg))
        result["configs"].append(entry)
    if not args.grid:
        result["searcher"] = through_searcher(lib, table, queries, truth)
        result["append"] = append_and_optimize(table, clusters, args.rows)
    result["others_cpu_share"] = share.others()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    shutil.rmtree(args.work, ignore_errors=True)


def probe_list(text: str | None, cfg: AnnConfig) -> list[tuple[int, int]]:
    if not text:
        return [(cfg.nprobes, cfg.refine_factor)]
    return [(int(a), int(b)) for a, b in (pair.split(":") for pair in text.split(","))]


def through_searcher(lib: Library, table: SpaceTable, queries: np.ndarray, truth: list[list[str]]) -> dict:
    searcher = Searcher(lib, encoder=None, ann_threshold=1)  # type: ignore[arg-type] # by_vector needs no model
    assert searcher.vectors.uses_ann(table)
    found = [[r.path for r in searcher.by_vector(table, q, K)] for q in queries]
    lat = interleaved({"searcher_ann": lambda i: searcher.by_vector(table, queries[i], K)}, len(queries))
    out = {"recall_at_10": _recall(found, truth), **lat["searcher_ann"]}
    print(json.dumps({"searcher": out}), flush=True)
    return out


def append_and_optimize(table: SpaceTable, clusters: Clusters, n: int) -> dict:
    """An indexer-sized commit (512 rows) then maintain(): the index takes them in without a rebuild."""
    rng = np.random.default_rng(9)
    new = clusters.sample(512, rng)
    rows = _rows(table, 10**8, new)
    # Steady state first: the bench's first maintain() also builds the keyword index over every row and
    # compacts the fill's 50k-row fragments into one (246 s at 1M under load 7-13), once in a table's life.
    settle_s = timed(lambda: table.maintain(ann_threshold=1))
    before = [ix.index_uuid for ix in table.table.list_indices() if "vector" in ix.columns]
    upsert_s = timed(lambda: table.upsert(rows))
    maintain_s = timed(lambda: table.maintain(ann_threshold=1))
    stats = table.table.index_stats("vector_idx")
    found = sum(table.ann_search(v, 1).column("path").to_pylist() == [f"/bench/synthetic/synthetic_{10**8 + j:07d}.jpg"]
                for j, v in enumerate(new[:50]))
    out = {"first_maintain_s": round(settle_s, 2), "upsert_512_s": round(upsert_s, 2), "maintain_s": round(maintain_s, 2),
           "unindexed_after": stats.num_unindexed_rows, "indexed_after": stats.num_indexed_rows,
           "index_uuid_before": before, "new_rows_top1_of_50": int(found)}
    print(json.dumps({"append": out}), flush=True)
    return out


if __name__ == "__main__":
    main()
