"""Scale-out benchmark: images/s of `index --ray` (1 and 2 model actors) against the single-process indexer on
the same folder, Ray's start-up timed apart; search latency p50/p95 of one library (synthetic rows written in a few
big commits, with keyword and IVF_SQ indexes) on local disk and, the same files uploaded, on S3 (moto on loopback),
through mmsearch's own query paths, each kind of query within a time budget (--budget-s) so the run ends.

Runs itself inside a loopback-only network and PID namespace (unshare), as the tests do: Ray and the S3 server
never reach beyond loopback. Results: bench/results/scaleout.json and .md.

    python bench/bench_scaleout.py --images 400 --rows 100000 [--model ViT-B-32] [--skip throughput]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"


def _in_namespace() -> bool:
    return [n for _, n in socket.if_nameindex()] == ["lo"]


def _reexec() -> None:
    inner = " ".join([sys.executable, *map(repr, sys.argv)])
    cmd = ["unshare", "--net", "--pid", "--fork", "--mount-proc", "--kill-child", "sh", "-c", f"ip link set lo up && exec {inner}"]
    raise SystemExit(subprocess.call(cmd, env={**os.environ, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0"}))


def throughput(model_key: str, images: int, work: Path) -> dict:
    from bench.common import model_under_test
    from bench.photos import photo_pool
    from mmsearch.scale.cluster import connect
    from mmsearch.scale.ray_index import index_with_ray
    from mmsearch.service import MMSearch

    folder = work / "photos"
    photo_pool(folder, images)
    mut = model_under_test(model_key, work)
    out: dict = {"images": images, "model": model_key}
    single = MMSearch(mut.with_data_dir(work / "single"))
    t = time.perf_counter()
    report = single.index([folder])
    out["single_process"] = {"seconds": round(time.perf_counter() - t, 2), "embedded": report.embedded,
                             "images_per_s": round(report.embedded / (time.perf_counter() - t), 2)}
    t = time.perf_counter()
    connect("auto", 2)
    out["ray_startup_s"] = round(time.perf_counter() - t, 2)
    for actors in (1, 2):
        svc = MMSearch(mut.with_data_dir(work / f"ray{actors}").model_copy(update={"ray_chunk_files": images}))
        t = time.perf_counter()
        report = index_with_ray(svc, [folder], "auto", actors=actors)
        took = time.perf_counter() - t
        out[f"ray_{actors}_actors"] = {"seconds": round(took, 2), "embedded": report.embedded,
                                       "images_per_s": round(report.embedded / took, 2)}
    return out


def _moto() -> tuple[object, str]:
    """moto's S3 server on loopback, with the standard AWS variables pointing at it (as the tests do)."""
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per S3 request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    os.environ.update({"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                       "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"})
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="bench")
    return server, endpoint


def _upload(folder: Path, bucket: str, prefix: str) -> int:
    import boto3

    client, sent = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"]), 0
    for f in sorted(folder.rglob("*")):
        if f.is_file():
            client.upload_file(str(f), bucket, f"{prefix}/{f.relative_to(folder).as_posix()}")
            sent += f.stat().st_size
    return sent


def build_library(rows: int, dim: int, commits: int, work: Path) -> tuple[object, dict]:
    """A local mmsearch library of `rows` synthetic clustered vectors, appended in `commits` big commits (as
    index --ray commits chunks), with its keyword and IVF_SQ indexes (SpaceTable's own builds)."""
    sys.path.insert(0, str(ROOT / "bench"))
    from query_bench import Clusters, _rows

    from mmsearch.encoders.base import EmbeddingSpace
    from mmsearch.store.library import Library

    space = EmbeddingSpace("bench", "synthetic", "clustered", dim)
    table = Library(work / "lat-local", create=True).table("image", space, create=True)
    clusters, rng, out = Clusters(dim), np.random.default_rng(1), {}
    size = -(-rows // commits)
    t = time.perf_counter()
    for start in range(0, rows, size):
        n = min(size, rows - start)
        table.table.add(_rows(table, start, clusters.sample(n, rng), lambda i: "beach" if i % 7 == 0 else ""))
    table.refresh()
    out["write_s"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    table.build_keyword_index()
    out["fts_build_s"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    table.build_ann_index()
    out["ivf_sq_build_s"] = round(time.perf_counter() - t, 2)
    return space, out


def latency(rows: int, dim: int, queries: int, work: Path, budget_s: float, commits: int = 4) -> dict:
    """The same library (byte for byte: the local one's files uploaded to the bucket) searched on local disk
    and on S3 through mmsearch's own paths, each kind of query within a time budget."""
    from bench.common import interleaved
    from mmsearch.search.vector import VectorSearch
    from mmsearch.store.library import Library

    server, _ = _moto()
    space, out = build_library(rows, dim, commits, work)
    out.update(rows=rows, dim=dim, queries=queries, commits=commits, budget_s_per_case=budget_s)
    t = time.perf_counter()
    out["upload_mb"] = round(_upload(work / "lat-local" / "lancedb", "bench", "lib/lancedb") / 2**20, 1)
    out["upload_s"] = round(time.perf_counter() - t, 2)
    sys.path.insert(0, str(ROOT / "bench"))
    from query_bench import Clusters

    probes = Clusters(dim).sample(queries + 3, np.random.default_rng(7))
    cases: dict = {}
    for where, uri in (("local", work / "lat-local"), ("s3", "s3://bench/lib")):
        table = Library(uri, create=where == "s3").table("image", space)  # default read consistency: 1 s
        resident, ann = VectorSearch(ann_threshold=10**12), VectorSearch(ann_threshold=1)
        t = time.perf_counter()
        snap = resident.snapshot(table)  # what a server does once at start-up, then per commit as a diff
        out[f"{where}_resident_load_s"] = round(time.perf_counter() - t, 2)
        out[f"{where}_resident_codec"] = snap.codec.kind
        cases |= {
            f"{where}/server_vector_k10": lambda i, tb=table, vs=resident: vs.search(tb, probes[i], 10),
            f"{where}/server_ann_k10": lambda i, tb=table, vs=ann: vs.search(tb, probes[i], 10),
            f"{where}/keyword_k10": lambda i, tb=table: tb.keyword_search("beach", 10),
            f"{where}/scan_k10": lambda i, tb=table: tb.ann_search(probes[i], 10, exact=True),
            f"{where}/filtered_scan_k10": lambda i, tb=table: tb.ann_search(
                probes[i], 10, "path >= '/bench/synthetic/synthetic_0050000.jpg'", exact=True),
        }
    t = time.perf_counter()
    measured = interleaved({k: (lambda i, f=f: f(i + 3)) for k, f in cases.items()}, queries, warmup=2,
                           budget_s={k: budget_s for k in cases})
    out["measure_s"] = round(time.perf_counter() - t, 1)
    for key, stats in measured.items():
        where, name = key.split("/")
        out.setdefault(where, {})[name] = stats
    server.stop()
    return out


CASES = {"server_vector_k10": "vector k=10, resident copy (what `serve` does)",
         "server_ann_k10": "vector k=10, IVF_SQ index + refine (`serve` past ann_threshold)",
         "keyword_k10": "keyword (BM25) k=10",
         "scan_k10": "vector k=10, LanceDB exact scan (a one-shot CLI search)",
         "filtered_scan_k10": "vector k=10, exact scan with a path filter"}


def markdown(result: dict) -> str:
    t, lat = result.get("throughput"), result.get("latency")
    lines = ["# Scale-out benchmark", "", "Each part says the run that measured it: the command, the load average "
             "(1, 5, 15 min) at its start and end, on a 2-core machine shared with other sessions.", ""]
    if t:
        lines += [f"## Indexing {t['images']} photo-like 1024x768 JPEGs, {t['model']} (random weights), CPU", "",
                  "| run | seconds | images/s |", "|---|---:|---:|"]
        for key in ("single_process", "ray_1_actors", "ray_2_actors"):
            lines.append(f"| {key} | {t[key]['seconds']} | {t[key]['images_per_s']} |")
        lines += ["", f"Ray start-up (ray.init, local, not in the rows above): {t['ray_startup_s']} s", "", _run(t), ""]
    if lat:
        lines += [f"## Search latency at {lat['rows']} rows (dim {lat['dim']}), the same library local and on S3 "
                  f"(moto on loopback), ms", "",
                  "| query | local p50 | local p95 | S3 p50 | S3 p95 | samples local/S3 |",
                  "|---|---:|---:|---:|---:|---:|"]
        for name, what in CASES.items():
            a, b = lat["local"][name], lat["s3"][name]
            lines.append(f"| {what} | {a['p50']} | {a['p95']} | {b['p50']} | {b['p95']} | {a['n']}/{b['n']} |")
        lines += ["", f"Library written locally in {lat['commits']} commits ({lat['write_s']} s), keyword index "
                  f"{lat['fts_build_s']} s, IVF_SQ index {lat['ivf_sq_build_s']} s; its files ({lat['upload_mb']} MB) "
                  f"uploaded to the bucket in {lat['upload_s']} s. Resident copy loaded in "
                  f"{lat['local_resident_load_s']} s locally, {lat['s3_resident_load_s']} s from S3 "
                  f"({lat['s3_resident_codec']} codes). Cases interleaved "
                  f"query by query; each stops after {lat['budget_s_per_case']} s of timed calls (at least 5); "
                  f"measuring took {lat['measure_s']} s.", "", _run(lat), ""]
    return "\n".join(lines)


def _run(part: dict) -> str:
    r = part["run"]
    load = lambda key: "/".join(f"{x:.1f}" for x in r[key]) if key in r else "?"  # noqa: E731
    when = f", started {r['started_utc']}" if r.get("started_utc") else ""
    return (f"Measured by `{r['command']}` on {r.get('cores', '?')} cores{when}; load average at start {load('load_start')}, "
            f"at end {load('load_end')}.")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=400)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--commits", type=int, default=4, help="latency: commits the synthetic rows are written in")
    ap.add_argument("--budget-s", type=float, default=40.0, help="latency: timed seconds per kind of query at most")
    ap.add_argument("--model", default="ViT-B-32", choices=["tiny", "ViT-B-32"])
    ap.add_argument("--skip", choices=["throughput", "latency"], action="append", default=[])
    ap.add_argument("--out", type=Path, default=RESULTS, help="folder for scaleout.json/.md (parts skipped are kept)")
    args = ap.parse_args()
    if not _in_namespace():
        _reexec()
    result = _previous(args.out)
    with tempfile.TemporaryDirectory() as tmp:
        # each part saved as soon as it is measured, with the run that measured it
        if "throughput" not in args.skip:
            run = _started()
            result["throughput"] = {**throughput(args.model, args.images, Path(tmp)), "run": _ended(run)}
            _save(result, args.out)
        if "latency" not in args.skip:
            run = _started()
            result["latency"] = {**latency(args.rows, args.dim, args.queries, Path(tmp), args.budget_s, args.commits),
                                 "run": _ended(run)}
            _save(result, args.out)
    print(markdown(result))


def _started() -> dict:
    from datetime import datetime, timezone

    return {"command": "python bench/bench_scaleout.py " + " ".join(sys.argv[1:]), "cores": os.cpu_count(),
            "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "load_start": [round(x, 2) for x in os.getloadavg()]}


def _ended(run: dict) -> dict:
    return {**run, "load_end": [round(x, 2) for x in os.getloadavg()]}


def _previous(out: Path) -> dict:
    """The parts an earlier run measured; one saved before parts kept their own run gets it from the top level."""
    f = out / "scaleout.json"
    if not f.is_file():
        return {}
    old = json.loads(f.read_text())
    for key in ("throughput", "latency"):
        if key in old and "run" not in old[key]:
            old[key]["run"] = {"command": old.get("command", "?"), "cores": os.cpu_count(),
                               "load_start": [float(old.get("machine", "").rsplit(" ", 1)[-1] or 0)],
                               "load_end": [old["load_average_end"]] if "load_average_end" in old else []}
    return {k: old[k] for k in ("throughput", "latency") if k in old}


def _save(result: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "scaleout.json").write_text(json.dumps(result, indent=2))
    (out / "scaleout.md").write_text(markdown(result))


if __name__ == "__main__":
    main()
