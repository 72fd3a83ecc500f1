"""The first search a served library answers: with the server's warm-up (the default) and without it.

    .venv/bin/python bench/first_search.py --rows 100000 --out bench/results/first_search.json

One library (bench_serving's: --rows synthetic rows in the space of the real ViT-B-32 architecture with random
weights, a local model folder loaded through the production path, the keyword index and the ONNX text export
as `mmsearch index` leaves them). For each mode, a fresh `python -m mmsearch serve` process, as a user starts
it: the seconds until it listens, until its warm-up says the models and vectors are loaded (on only), the
first search over GET /api/v1/search sent once the server is ready (for warm-up on: once its status says
ready), and the median of the next five searches (distinct texts: no cache hit). --runs repeats each mode.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from bench_serving import Server, build_library, model_folder
from common import CpuShare, machine

from mmsearch.settings import Settings

TEXTS = ["a red bicycle by the river", "two dogs in the snow", "a bowl of ramen at night", "sunset over a bridge",
         "an old green door", "a horse on a beach", "children playing football", "a city street in the rain"]


def search(url: str, text: str) -> float:
    t = time.perf_counter()
    with urllib.request.urlopen(url + "api/v1/search?" + urllib.parse.urlencode({"q": text, "k": 10}),
                                timeout=600) as answer:
        body = json.loads(answer.read())
    if not body.get("ok"):
        raise SystemExit(f"search failed: {body.get('message')}")
    return time.perf_counter() - t


def status(url: str) -> dict:
    with urllib.request.urlopen(url + "api/v1/status", timeout=60) as answer:
        return json.loads(answer.read())


def one(settings: Settings, warm: bool, log: Path) -> dict:
    spawned = time.perf_counter()
    server = Server(settings, log, env={"MMSEARCH_WARM_UP": "true" if warm else "false"})
    out = {"warm_up": warm, "listening_s": round(server.start_s, 2)}
    try:
        if warm:
            while (state := status(server.url)["warm_up"])["state"] == "loading":
                time.sleep(0.1)
            out.update(warm_state=state["state"], warm_reported_s=state["seconds"],
                       ready_s=round(time.perf_counter() - spawned, 2))
        first = search(server.url, TEXTS[0])
        out["first_search_ms"] = round(first * 1000, 1)
        out["first_answer_s_after_spawn"] = round(time.perf_counter() - spawned, 2)
        out["next_five_median_ms"] = round(statistics.median(search(server.url, t) for t in TEXTS[1:6]) * 1000, 1)
    finally:
        server.stop()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "mmsearch-first-search")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    settings = Settings(data_dir=args.work / "library", models_dir=args.work / "models", device="cpu",
                        model=str(model_folder(args.work)), pretrained="", offline=True)
    if not (args.work / "library").exists():
        build_library(settings, args.rows, args.work / "photos")
    share = CpuShare()
    runs = [one(settings, warm, args.work / f"serve-{warm}-{i}.log") for i in range(args.runs) for warm in (False, True)]
    result = {"machine": machine(), "rows": args.rows, "runs": runs, "others_cpu_share": share.others()}
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
