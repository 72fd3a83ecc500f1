"""Compressed resident vectors at scale: latency, recall@10 against float32 exact, server memory, refresh.

For each size, a library of clustered synthetic 512-d vectors (as bench/query_bench.py draws them: 256
clusters, within-cluster cosine ~0.6) is streamed into a real mmsearch table in 100k-row chunks; nothing ever
holds the whole float32 matrix. Float32 exact ground truth for the queries is computed by one streamed pass
over the table. Each codec is then measured in a fresh child process, the search server's vector layer
alone (no model loaded; a server adds its encoder's memory to these figures):
- load: the full read of the table into the resident codes (what happens once at start-up),
- query p50/p95 through VectorSearch.search (the path every surface's engine uses), recall@10 vs exact,
- RSS after load and peak,
- with --commit: the first query after a 512-row commit (an indexer's commit; applied as a diff) against
  the normal query before it.

    .venv/bin/python bench/bench_vectors.py --sizes 1000000,3000000 --commit-at 1000000
    .venv/bin/python bench/bench_vectors.py --report     # rewrite vectors.md / vectors.png from vectors.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

from mmsearch.encoders.base import EmbeddingSpace  # noqa: E402
from mmsearch.store import Library  # noqa: E402

DIM, K, CLUSTERS, SPREAD = 512, 10, 256, 0.8
SPACE = EmbeddingSpace("bench", "synthetic", "clustered", DIM)
CHUNK = 100_000
RESULTS = ROOT / "bench" / "results"


def sample(centres: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    x = centres[rng.integers(0, CLUSTERS, n)] + rng.standard_normal((n, DIM), np.float32) * (SPREAD / np.sqrt(DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def centres() -> np.ndarray:
    c = np.random.default_rng(0).standard_normal((CLUSTERS, DIM), np.float32)
    return c / np.linalg.norm(c, axis=1, keepdims=True)


def rows(table, start: int, vectors: np.ndarray) -> pa.Table:  # noqa: ANN001
    n = len(vectors)
    names = [f"v{i:08d}.jpg" for i in range(start, start + n)]
    cols = {"path": [f"/bench/vectors/{x}" for x in names], "folder": ["/bench/vectors"] * n, "name": names,
            "hash": [f"{i:032x}" for i in range(start, start + n)], "size": [250_000] * n,
            "mtime_ns": [1_700_000_000_000_000_000] * n, "width": [1024] * n, "height": [768] * n,
            "format": ["JPEG"] * n, "text": names, "indexed_at": [datetime.now(timezone.utc)] * n,
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), DIM)}
    schema = table.table.schema
    cols.update({f.name: pa.nulls(n, f.type) for f in schema if f.name not in cols})
    return pa.table({f.name: cols[f.name] for f in schema}, schema=schema)


def build(data_dir: Path, n: int, queries: np.ndarray | None = None, space: EmbeddingSpace = SPACE) -> dict:
    """Stream n rows into a fresh library. With queries, their float32 exact top-10 is kept as the rows are
    made (the same vectors the table receives), which saves a full read of the table at 10M (20.9 GB).
    space: the table's embedding space (a model's own, for a server whose text queries must reach it)."""
    marker = data_dir / "bench_rows.json"
    if marker.is_file() and json.loads(marker.read_text()).get("rows") == n:
        return json.loads(marker.read_text())
    shutil.rmtree(data_dir, ignore_errors=True)
    lib = Library(data_dir, create=True)
    table = lib.table("image", space, create=True)
    c, rng = centres(), np.random.default_rng(1)
    top = TopK(len(queries)) if queries is not None else None
    started = time.perf_counter()
    for start in range(0, n, CHUNK):
        batch = rows(table, start, sample(c, min(CHUNK, n - start), rng))
        table.table.add(batch)  # append: no merge join
        if top is not None:
            top.add(_vectors_of(batch) @ queries.T, np.array(batch.column("path").to_pylist(), object))
    info = {"rows": table.table.count_rows(), "write_s": round(time.perf_counter() - started, 1),
            "disk_bytes": lib.size_on_disk()}
    if top is not None:
        info["truth"] = top.paths()
        info["truth_queries_sha1"] = _digest(queries)
    marker.write_text(json.dumps(info))
    return info


def _digest(queries: np.ndarray) -> str:
    import hashlib
    return hashlib.sha1(np.ascontiguousarray(queries).tobytes()).hexdigest()


def _vectors_of(batch: pa.Table) -> np.ndarray:
    from mmsearch.store.table import _vectors
    return _vectors(batch.column("vector"))


class TopK:
    """The running float32 exact top-K of each query over chunks of rows."""

    def __init__(self, queries: int) -> None:
        self.s = np.full((queries, K), -np.inf, np.float32)
        self.p = np.empty((queries, K), object)

    def add(self, scores: np.ndarray, paths: np.ndarray) -> None:  # scores: (rows, Q)
        for j in range(self.s.shape[0]):
            top = np.argpartition(-scores[:, j], K - 1)[:K]
            s = np.concatenate([self.s[j], scores[top, j]])
            p = np.concatenate([self.p[j], paths[top]])
            keep = np.argsort(-s, kind="stable")[:K]
            self.s[j], self.p[j] = s[keep], p[keep]

    def paths(self) -> list[list[str]]:
        return [list(p) for p in self.p]


def ground_truth(data_dir: Path, queries: np.ndarray) -> tuple[list[list[str]], float]:
    """Float32 exact top-10 of each query by one streamed pass over the table (never the whole matrix)."""
    from mmsearch.store.pinned import PinnedVersion

    table = Library(data_dir, create=False).table("image", SPACE)
    started = time.perf_counter()
    top = TopK(len(queries))
    for batch in PinnedVersion(table, table.version).rows_after(None, ["path", "vector"]):
        top.add(_vectors_of(batch) @ queries.T, np.array(batch.column("path").to_pylist(), object))
    return top.paths(), time.perf_counter() - started


def rss_mb(field: str = "VmRSS") -> float:
    """VmRSS now, or VmHWM (its peak; unlike ru_maxrss it starts afresh at exec, not at the parent's peak)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def pct(values: list[float]) -> dict:
    ms = sorted(v * 1000 for v in values)
    return {"p50_ms": round(statistics.median(ms), 1), "p95_ms": round(ms[min(len(ms) - 1, int(0.95 * len(ms)))], 1),
            "n": len(ms)}


def child(args: argparse.Namespace) -> None:
    """One codec in a fresh process: the search server's vector layer."""
    from mmsearch.search.vector import VectorSearch

    base_rss = rss_mb()
    queries = np.load(args.queries_file)
    truth = json.loads(Path(args.truth_file).read_text())
    table = Library(Path(args.data_dir), create=False).table("image", SPACE)
    vs = VectorSearch(10**12, setting=lambda t: args.kind)
    started = time.perf_counter()
    snap = vs.snapshot(table)
    out = {"kind": args.kind, "load_s": round(time.perf_counter() - started, 1), "load_cpu_s": round(time.process_time(), 1),
           "load_avg_after_load": [round(x, 2) for x in os.getloadavg()], "rss_before_mb": round(base_rss),
           "rss_after_load_mb": round(rss_mb()), "stats": snap.stats()}

    def run(n: int, rerank: int | None = None) -> tuple[list[float], float]:
        vs.rerank = rerank
        times, recalls = [], []
        for j in range(n):
            q = queries[j % len(queries)]
            t0 = time.perf_counter()
            found = vs.search(table, q, K)
            times.append(time.perf_counter() - t0)
            recalls.append(len({r["path"] for r, _ in found} & set(truth[j % len(queries)])) / K)
        return times, round(float(np.mean(recalls)), 4)

    run(2)  # warm-up
    times, recall = run(len(queries))
    out.update(query=pct(times), recall_at_10=recall)
    if args.kind != "float32":
        sweep = {}
        for factor in ([4, 10, 20, 40] if args.kind in ("int8", "float16") else [40, 100, 200, 400, 1000]):
            t, r = run(min(len(queries), 15), factor)
            sweep[str(factor)] = {"shortlist": factor * K, "recall_at_10": r, **pct(t)}
        out["rerank_sweep"] = sweep
        vs.rerank = None
    if args.commit:
        out["commit"] = commit_cost(vs, table, queries)
    out["rss_end_mb"] = round(rss_mb())
    out["peak_rss_mb"] = round(rss_mb("VmHWM"))
    out["rss_anon_end_mb"] = round(rss_mb("RssAnon"))
    out["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    index = vs._index(table)
    out["refreshes"] = {"full_loads": index.loads, "diffs": index.diffs}
    print("RESULT " + json.dumps(out), flush=True)


def commit_cost(vs, table, queries: np.ndarray) -> dict:  # noqa: ANN001
    """An indexer's commit (merge_insert of 512 new rows), then the first query, which applies it."""
    rng, c = np.random.default_rng(3), centres()
    normal, first, second, commit_s = [], [], [], []
    added: list[str] = []
    for j in range(5):
        for i in range(3):
            t0 = time.perf_counter()
            vs.search(table, queries[(j * 3 + i) % len(queries)], K)
            normal.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        batch = rows(table, 10**8 + j * 512, sample(c, 512, rng))
        table.upsert(batch)
        commit_s.append(time.perf_counter() - t0)
        added += batch.column("path").to_pylist()
        t0 = time.perf_counter()
        vs.search(table, queries[j % len(queries)], K)
        first.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        vs.search(table, queries[(j + 1) % len(queries)], K)
        second.append(time.perf_counter() - t0)
    table.delete_paths(added)  # the next codec's process measures the same rows as the ground truth's
    t0 = time.perf_counter()
    vs.search(table, queries[0], K)
    after_delete = time.perf_counter() - t0
    n50 = statistics.median(normal)
    return {"first_after_deleting_2560_rows_ms": round(after_delete * 1000, 1),"normal": pct(normal), "first_after_commit": pct(first), "second_after_commit": pct(second),
            "commit_merge_insert": pct(commit_s), "ratio_first_to_normal_p50": round(statistics.median(first) / n50, 2),
            "ratio_first_to_normal_max": round(max(first) / n50, 2)}


def measure(data_dir: Path, kind: str, qfile: Path, tfile: Path, commit: bool) -> dict:
    cmd = [sys.executable, __file__, "--child", "--data-dir", str(data_dir), "--kind", kind,
           "--queries-file", str(qfile), "--truth-file", str(tfile)] + (["--commit"] if commit else [])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise SystemExit(f"child {kind} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1000000")
    ap.add_argument("--kinds", default="int8,binary")
    ap.add_argument("--float32-max", type=int, default=1_000_000, help="also float32 (the old path) up to this size")
    ap.add_argument("--queries", type=int, default=30)
    ap.add_argument("--commit-at", type=int, default=1_000_000, help="measure refresh after commits at this size")
    ap.add_argument("--work", type=Path, default=RESULTS / "tmp" / "vectors")
    ap.add_argument("--out", type=Path, default=RESULTS / "vectors.json")
    ap.add_argument("--keep", action="store_true", help="keep the libraries (GBs) for the next run")
    ap.add_argument("--truth-while-building", action="store_true",
                    help="exact top-10 kept as rows are written, not by a second read of the table (10M: 20.9 GB)")
    ap.add_argument("--report", action="store_true")
    ap.add_argument("--child", action="store_true")
    ap.add_argument("--data-dir")
    ap.add_argument("--kind")
    ap.add_argument("--queries-file")
    ap.add_argument("--truth-file")
    ap.add_argument("--commit", action="store_true")
    args = ap.parse_args()
    if args.child:
        return child(args)
    if args.report:
        return report(json.loads(args.out.read_text()), args.out)
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    results.setdefault("sizes", {})
    results["machine"] = machine()
    results["command"] = ".venv/bin/python bench/bench_vectors.py " + " ".join(sys.argv[1:])
    args.work.mkdir(parents=True, exist_ok=True)
    queries = sample(centres(), args.queries, np.random.default_rng(2))
    qfile = args.work / "queries.npy"
    np.save(qfile, queries)
    for n in (int(s) for s in args.sizes.split(",")):
        data_dir = args.work / f"lib-{n}"
        built = build(data_dir, n, queries if args.truth_while_building else None)
        if built.get("truth_queries_sha1") == _digest(queries):
            truth = built["truth"]
            entry = {"build": {k: v for k, v in built.items() if not k.startswith("truth")},
                     "exact": "kept while the rows were written (the same vectors)"}
        else:
            entry = {"build": {k: v for k, v in built.items() if not k.startswith("truth")}}
            truth, truth_s = ground_truth(data_dir, queries)
            entry["exact_streamed_from_disk_s"] = round(truth_s, 1)
        print(f"{n}: built {entry['build']}", flush=True)
        tfile = args.work / f"truth-{n}.json"
        tfile.write_text(json.dumps(truth))
        kinds = args.kinds.split(",") + (["float32"] if n <= args.float32_max else [])
        entry["kinds"] = {}
        for kind in kinds:
            entry["kinds"][kind] = measure(data_dir, kind, qfile, tfile, commit=n == args.commit_at)
            print(f"{n} {kind}: {json.dumps(entry['kinds'][kind])}", flush=True)
        results["sizes"][str(n)] = entry
        args.out.write_text(json.dumps(results, indent=2))
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
    report(results, args.out)


def machine() -> dict:
    import platform

    import lancedb

    load = os.getloadavg()
    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "load_avg_1_5_15": [round(x, 2) for x in load], "numpy": np.__version__, "lancedb": lancedb.__version__,
            "commit": subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                     text=True).stdout.strip(), "when": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def report(results: dict, out: Path) -> None:
    from bench_vectors_report import write_report

    write_report(results, out.with_suffix(".md"), out.with_suffix(".png"))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
