"""Shared scans on/off (search/batching.py), A/B in alternating rounds: in-process engine, 20 closed-loop
callers, on bench_serving's library (100k rows, ViT-B-32 architecture at random weights, text on torch).

    PYTHONPATH=. python bench/bench_scan_batching.py --work /tmp/bs     # a library built by bench_serving --work
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_serving import Queries, closed_loop, in_process, model_folder  # noqa: E402
from common import ROOT, machine  # noqa: E402

from mmsearch.search.batching import ScanBatcher  # noqa: E402
from mmsearch.service import MMSearch  # noqa: E402
from mmsearch.settings import Settings  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, required=True, help="bench_serving's --work folder (library + model)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "scan_batching.json")
    args = ap.parse_args()
    settings = Settings(data_dir=args.work / "library", models_dir=args.work / "models",
                        model=str(model_folder(args.work)), pretrained="", device="cpu", offline=True)
    svc = MMSearch(settings)
    svc.encoder.load()
    queries = Queries(svc.encoder._tokenizer, 40_000)
    for _ in range(5):
        in_process(svc, queries.take())
    shared = ScanBatcher.search_many

    def alone(self, snapshot, vectors, k, filters, rerank):  # noqa: ANN001 - the batcher's own signature
        return snapshot.search_many(vectors, k, filters, rerank)

    result: dict = {"command": "python bench/bench_scan_batching.py " + " ".join(sys.argv[1:]), "machine": machine(),
                    "rounds": {"alone": [], "shared": []}}
    for _ in range(args.rounds):
        for mode in ("alone", "shared"):
            ScanBatcher.search_many = shared if mode == "shared" else alone
            out = closed_loop(args.clients, args.seconds, lambda i: (lambda t: in_process(svc, t)), queries)
            row = {"answers_per_s": out["answers_per_s"], "p50_s": out["latency_s"]["p50"],
                   "p95_s": out["latency_s"]["p95"], "errors": out["errors"], "load1": round(os.getloadavg()[0], 1)}
            result["rounds"][mode].append(row)
            print(mode, json.dumps(row), flush=True)
    args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
