"""The ANN path at 10M rows (issue 14): build an IVF_SQ index over bench_vectors.py's 10M-row library and
measure build time, p50/p95 and recall@10 against the float32 exact top 10 kept when the rows were written.

At 10M, 1024 rows a partition and 256 training rows a partition would train ~9,800 centres on 2.5M rows:
~100x the k-means work of the 1M build. DEFAULT_ANN therefore grows the partitions with the square root of
the rows above 1M and keeps the training sample at the 1M build's (AnnConfig.partitions/training_rate): at
10M, 3,088 partitions trained on ~250k rows. That default is what is built here unless overridden. The
latency is LanceDB's search alone (SpaceTable.ann_search, what VectorSearch calls above its ANN threshold),
in this process, one query at a time, after one warm-up pass.

    .venv/bin/python bench/bench_vectors.py --sizes 10000000 --truth-while-building --keep ...  # the library
    .venv/bin/python bench/ann_10m.py --lib /tmp/v10m/lib-10000000 --queries /tmp/v10m/queries.npy
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from common import ROOT, machine, percentiles, proc_status_mb

from mmsearch.store import Library
from mmsearch.store.table import DEFAULT_ANN

K = 10


def main() -> None:
    from bench_vectors import SPACE

    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", type=Path, required=True)
    ap.add_argument("--queries", type=Path, required=True)
    ap.add_argument("--rows-per-partition", type=int, help="override DEFAULT_ANN's")
    ap.add_argument("--sample-rate", type=int, help="override DEFAULT_ANN's")
    ap.add_argument("--max-iterations", type=int, help="override DEFAULT_ANN's")
    ap.add_argument("--probes", default="10:10,20:10,40:10,40:20")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ann_10m.json")
    args = ap.parse_args()
    queries = np.load(args.queries)
    truth = json.loads((args.lib / "bench_rows.json").read_text())["truth"]
    table = Library(args.lib, create=False).table("image", SPACE)
    given = {"rows_per_partition": args.rows_per_partition, "sample_rate": args.sample_rate,
             "max_iterations": args.max_iterations}
    config = replace(DEFAULT_ANN, **{k: v for k, v in given.items() if v is not None})
    out = {"command": "python bench/ann_10m.py " + " ".join(os.sys.argv[1:]), "machine": machine(),
           "rows": table.count(), "config": {"index_type": config.index_type,
                                              "partitions": config.partitions(table.count()),
                                              "rows_per_partition": config.rows_per_partition,
                                              "training_rows_per_partition": config.training_rate(table.count()),
                                              "max_iterations": config.max_iterations},
           "load_avg_before_build": [round(x, 2) for x in os.getloadavg()]}
    if not table.has_ann_index():
        t0, c0 = time.perf_counter(), time.process_time()
        table.build_ann_index(config)
        out["build_s"] = round(time.perf_counter() - t0, 1)
        out["build_cpu_s"] = round(time.process_time() - c0, 1)
        out["build_peak_rss_mb"] = round(proc_status_mb("VmHWM"))
        print(json.dumps(out), flush=True)
    out["load_avg_after_build"] = [round(x, 2) for x in os.getloadavg()]
    out["probes"] = []
    out["config"]["default"] = not any(v is not None for v in given.values())
    for pair in args.probes.split(","):
        nprobes, refine = (int(x) for x in pair.split(":"))
        search = lambda q: table.ann_search(q, K, nprobes=nprobes, refine=refine)  # noqa: E731
        for q in queries[:3]:  # warm-up: the index's partitions into the page cache
            search(q)
        times, found = [], []
        for round_ in range(2):  # two passes for the latency, the first one's answers for the recall
            for q in queries:
                t0 = time.perf_counter()
                paths = search(q).column("path").to_pylist()
                times.append(time.perf_counter() - t0)
                if round_ == 0:
                    found.append(paths)
        recall = float(np.mean([len(set(f) & set(t)) / K for f, t in zip(found, truth)]))
        row = {"nprobes": nprobes, "refine": refine, "recall_at_10": round(recall, 4),
               **{f"{k}_ms": v for k, v in percentiles(times).items() if k != "n"}, "n": len(times),
               "rss_mb": round(proc_status_mb("VmRSS"))}
        out["probes"].append(row)
        print(json.dumps(row), flush=True)
    out["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    args.out.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
