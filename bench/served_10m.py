"""A served library of 10M rows: the memory of a real `mmsearch serve` process, sampled from its start, and its
searches over HTTP (issue 14: "memory of a search server at 10M rows ≤ 4 GB").

    .venv/bin/python bench/served_10m.py --rows 10000000 --work /tmp/served10m --out bench/results/served_10m.json

The library: bench_vectors.py's clustered 512-d rows (the same generator and seed), written in the space of the
real ViT-B-32 architecture with random weights (bench_serving's local model folder, loaded through the production
path), so the server's text queries reach the table. No ANN index is built, so searches take the resident
(compressed) path; `auto` picks binary at this size. The server is started as a user starts it (`python -m
mmsearch serve`, warm-up on: it loads the model and the resident codes once it listens). Its RSS is read from
/proc every second until the warm-up is done and through --queries text searches (GET /api/v1/search, k=10).
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path

from bench_serving import Server, model_folder
from bench_vectors import build
from common import CpuShare, machine
from first_search import TEXTS, search, status

from mmsearch.service import MMSearch
from mmsearch.settings import Settings


def rss_of(pid: int) -> tuple[float, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = round(int(value.split()[0]) / 1024, 1)
    return fields["VmRSS"], fields["VmHWM"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--queries", type=int, default=20)
    ap.add_argument("--work", type=Path, default=Path("/tmp/served10m"))
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    settings = Settings(data_dir=args.work / "library", models_dir=args.work / "models", device="cpu",
                        model=str(model_folder(args.work)), pretrained="", offline=True, audio=False)
    space = MMSearch(settings).encoder.space
    built = build(settings.data_dir, args.rows, space=space)
    share = CpuShare()
    spawned = time.perf_counter()
    server = Server(settings, args.work / "serve.log", env={"MMSEARCH_AUDIO": "false"})
    curve: list[tuple[float, str, float]] = []
    phase = ["warm-up"]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(1.0):
            curve.append((round(time.perf_counter() - spawned, 1), phase[0], rss_of(server.proc.pid)[0]))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        while (warm := status(server.url)["warm_up"])["state"] == "loading":
            time.sleep(1)
        after_warm = rss_of(server.proc.pid)
        phase[0] = "queries"
        times = [search(server.url, TEXTS[i % len(TEXTS)] + f" {i}") for i in range(args.queries)]
        end = rss_of(server.proc.pid)
        library = status(server.url)
    finally:
        stop.set()
        sampler.join()
        server.stop()
    times_ms = sorted(round(t * 1000, 1) for t in times)
    out = {"machine": machine(), "rows": built["rows"], "write_s": built.get("write_s"),
           "listening_s": round(server.start_s, 1), "warm_up": warm,
           "rss_after_warm_up_mb": after_warm[0], "rss_after_queries_mb": end[0], "peak_rss_mb": end[1],
           "query_ms": times_ms, "p50_ms": times_ms[len(times_ms) // 2],
           "p95_ms": times_ms[min(len(times_ms) - 1, round(0.95 * len(times_ms)) - 1)],
           "tables": library.get("tables"), "vectors": library.get("vectors"),
           "others_cpu_share": share.others(), "curve": curve}
    print(json.dumps({k: v for k, v in out.items() if k != "curve"}, indent=1))
    if args.out:
        args.out.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
