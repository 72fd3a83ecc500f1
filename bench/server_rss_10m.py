"""A search server's memory at 10M rows, measured in one process: the resident vectors of bench_vectors.py's
10M-row library (binary by default) plus the ViT-B-32 architecture (random weights, loaded through mmsearch's
own path, as `pretrained="random"` builds it), then text queries embedded by that model and answered by the
resident vectors. What a `mmsearch serve` process holds, short of Gradio and the HTTP server.

    .venv/bin/python bench/server_rss_10m.py --lib /tmp/v10m/lib-10000000 --kind binary
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", type=Path, required=True)
    ap.add_argument("--kind", default="binary")
    ap.add_argument("--queries", type=int, default=10)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "server_rss_10m.json")
    args = ap.parse_args()

    import numpy as np

    from bench_vectors import SPACE
    from common import proc_status_mb
    from mmsearch.search.vector import VectorSearch
    from mmsearch.service import encoder_from_settings
    from mmsearch.settings import Settings
    from mmsearch.store import Library

    out = {"kind": args.kind, "rss_start_mb": round(proc_status_mb("VmRSS"))}
    table = Library(args.lib, create=False).table("image", SPACE)
    vs = VectorSearch(10**12, setting=lambda t: args.kind)
    t0 = time.perf_counter()
    vs.snapshot(table)
    out.update(rows=table.count(), load_s=round(time.perf_counter() - t0, 1),
               rss_vectors_mb=round(proc_status_mb("VmRSS")))
    settings = Settings(data_dir=Path("/tmp/server-rss-10m"), models_dir=Path("/tmp/server-rss-10m/models"),
                        model="ViT-B-32", pretrained="random", device="cpu", offline=True)
    encoder = encoder_from_settings(settings)
    encoder.load()
    out["rss_vectors_and_model_mb"] = round(proc_status_mb("VmRSS"))
    times = []
    for i in range(args.queries):  # the model's 512-d text vector searches the 512-d synthetic table
        t0 = time.perf_counter()
        q = np.asarray(encoder.encode_text([f"a photo of thing number {i}"])[0], np.float32)
        vs.search(table, q / np.linalg.norm(q), 10)
        times.append(time.perf_counter() - t0)
    out.update(rss_after_queries_mb=round(proc_status_mb("VmRSS")), peak_rss_mb=round(proc_status_mb("VmHWM")),
               query_s=[round(t, 2) for t in times], load_avg_end=[round(x, 2) for x in os.getloadavg()])
    print(json.dumps(out), flush=True)
    args.out.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
