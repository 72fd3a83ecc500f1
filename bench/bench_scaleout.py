"""Scale-out benchmark: images/s of `index --ray` (1 and 2 model actors) against the single-process indexer on
the same folder, Ray's start-up timed apart; LanceDB query latency on an S3 library (moto on loopback) against the
same table on local disk.

Runs itself inside a loopback-only network and PID namespace (unshare), as the tests do: Ray and the S3 server
never reach beyond loopback. Results: bench/results/scaleout.json and .md.

    python bench/bench_scaleout.py --images 400 --rows 100000 [--model ViT-B-32]
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


def latency(rows: int, dim: int, queries: int, work: Path) -> dict:
    import lancedb
    import pyarrow as pa
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per S3 request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    import boto3

    opts = {"aws_endpoint": f"http://127.0.0.1:{port}", "aws_access_key_id": "bench", "aws_secret_access_key": "bench",
            "aws_region": "us-east-1", "allow_http": "true"}
    boto3.client("s3", endpoint_url=opts["aws_endpoint"], aws_access_key_id="bench", aws_secret_access_key="bench",
                 region_name="us-east-1").create_bucket(Bucket="bench")
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((rows, dim), dtype=np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    data = pa.table({"path": [f"s3://photos/{i:07d}.jpg" for i in range(rows)],
                     "text": [f"photo {i % 997} beach" if i % 7 == 0 else f"photo {i % 991}" for i in range(rows)],
                     "vector": pa.FixedSizeListArray.from_arrays(pa.array(vecs.reshape(-1)), dim)})
    out: dict = {"rows": rows, "dim": dim, "queries": queries}
    probes = rng.standard_normal((queries, dim), dtype=np.float32)
    for where, uri, so in (("local", str(work / "lat-local"), None), ("s3", "s3://bench/lib", opts)):
        db = lancedb.connect(uri, storage_options=so)
        t = time.perf_counter()
        table = db.create_table("t", data)
        table.create_fts_index("text")
        built = time.perf_counter() - t
        cases = {"vector_flat_k10": lambda q: table.search(q).limit(10).to_arrow(),
                 "keyword_k10": lambda q: table.search("beach", query_type="fts").limit(10).to_arrow(),
                 "filtered_vector_k10": lambda q: table.search(q).where("path >= 's3://photos/0050000'").limit(10).to_arrow()}
        out[where] = {"write_and_fts_s": round(built, 2)}
        from bench.common import percentiles

        for name, fn in cases.items():
            fn(probes[0])  # warm
            samples = []
            for q in probes:
                t = time.perf_counter()
                fn(q)
                samples.append(time.perf_counter() - t)
            out[where][name] = percentiles(samples)
        t = time.perf_counter()
        table.create_index(metric="cosine", num_partitions=max(1, rows // 1024), index_type="IVF_SQ")
        out[where]["ivf_sq_build_s"] = round(time.perf_counter() - t, 2)
        samples = []
        for q in probes:
            t = time.perf_counter()
            table.search(q).nprobes(20).limit(10).to_arrow()
            samples.append(time.perf_counter() - t)
        out[where]["vector_ivf_sq_k10"] = percentiles(samples)
    server.stop()
    return out


def markdown(result: dict) -> str:
    t, lat = result.get("throughput"), result.get("latency")
    lines = ["# Scale-out benchmark", "", f"Machine: {result['machine']}", ""]
    if t:
        lines += [f"## Indexing {t['images']} photo-like 1024x768 JPEGs, {t['model']} (random weights), CPU", "",
                  "| run | seconds | images/s |", "|---|---:|---:|"]
        for key in ("single_process", "ray_1_actors", "ray_2_actors"):
            lines.append(f"| {key} | {t[key]['seconds']} | {t[key]['images_per_s']} |")
        lines += ["", f"Ray start-up (ray.init, local, not in the rows above): {t['ray_startup_s']} s", ""]
    if lat:
        lines += [f"## LanceDB queries at {lat['rows']} rows (dim {lat['dim']}), {lat['queries']} queries, ms", "",
                  "| query | local p50 | local p95 | S3 (moto) p50 | S3 (moto) p95 |", "|---|---:|---:|---:|---:|"]
        for name in ("vector_flat_k10", "filtered_vector_k10", "keyword_k10", "vector_ivf_sq_k10"):
            a, b = lat["local"][name], lat["s3"][name]
            lines.append(f"| {name} | {a['p50']} | {a['p95']} | {b['p50']} | {b['p95']} |")
        lines += ["", f"Write + FTS build: local {lat['local']['write_and_fts_s']} s, S3 {lat['s3']['write_and_fts_s']} s; "
                  f"IVF_SQ build: local {lat['local']['ivf_sq_build_s']} s, S3 {lat['s3']['ivf_sq_build_s']} s", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=400)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--model", default="ViT-B-32", choices=["tiny", "ViT-B-32"])
    ap.add_argument("--skip", choices=["throughput", "latency"], action="append", default=[])
    args = ap.parse_args()
    if not _in_namespace():
        _reexec()
    result: dict = {"machine": f"{os.cpu_count()} cores, load average at start {os.getloadavg()[0]:.1f}",
                    "command": "python bench/bench_scaleout.py " + " ".join(sys.argv[1:])}
    with tempfile.TemporaryDirectory() as tmp:
        # throughput first, and results written after each part: the S3 latency part is the slow one
        if "throughput" not in args.skip:
            result["throughput"] = throughput(args.model, args.images, Path(tmp))
            _save(result)
        if "latency" not in args.skip:
            result["latency"] = latency(args.rows, args.dim, args.queries, Path(tmp))
            _save(result)
    print(markdown(result))


def _save(result: dict) -> None:
    result["load_average_end"] = os.getloadavg()[0]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "scaleout.json").write_text(json.dumps(result, indent=2))
    (RESULTS / "scaleout.md").write_text(markdown(result) + f"\nLoad average at the end: {result['load_average_end']:.1f}\n"
                                         f"\nReproduce: `{result['command']}`\n")

if __name__ == "__main__":
    main()
