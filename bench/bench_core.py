"""Core benchmark: ingestion rate, indexing memory, query latency. See bench/README.md.

    .venv/bin/python bench/bench_core.py [--model tiny|ViT-B-32] [--sizes 10000,100000] [--images 96]
                                         [--ann] [--out bench/results]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from common import MODELS, ROOT, CpuShare, machine, model_under_test  # also puts the checkout on sys.path

DEFAULTS = {  # sized so a default run takes a few minutes on 2 cores
    "tiny": {"images": 512, "rss_images": "100,2000"},
    "ViT-B-32": {"images": 96, "rss_images": "100,400"},
}
SECTIONS = ("ingest", "rss", "query")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=MODELS, default="tiny")
    p.add_argument("--sizes", default="10000,100000", help="table sizes for query latency, comma-separated")
    p.add_argument("--images", type=int, help="photos for the ingestion rate (default: tiny 512, ViT-B-32 96)")
    p.add_argument("--rss-images", help="folder sizes for peak RSS (default: tiny 100,2000; ViT-B-32 100,400)")
    p.add_argument("--repeats", type=int, default=3, help="timed ingestion passes; the median is reported")
    p.add_argument("--queries", type=int, default=200, help="query vectors per latency measurement")
    p.add_argument("--ann", action="store_true", help="also build IVF_HNSW_SQ and measure ANN latency/recall")
    p.add_argument("--ann-min", type=int, default=100_000, help="smallest table size that gets an ANN index")
    p.add_argument("--sections", default=",".join(SECTIONS), help="which of ingest,rss,query to run")
    p.add_argument("--no-lancedb", action="store_true", help="skip lancedb's own open-clip function")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    p.add_argument("--work", type=Path, help="scratch folder; the photo pool is kept there between runs "
                                              "(default: OUT/tmp, git-ignored)")
    p.add_argument("--rss-child", nargs=2, metavar=("FOLDER", "DATA_DIR"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.work = (args.work or args.out / "tmp").resolve()
    args.images = args.images or DEFAULTS[args.model]["images"]
    args.rss_images = args.rss_images or DEFAULTS[args.model]["rss_images"]
    return args


def _ints(text: str) -> list[int]:
    return [int(x.replace("_", "")) for x in text.split(",") if x.strip()]


def run(args: argparse.Namespace) -> dict:
    from ingest_bench import run_ingest
    from photos import link_folder, photo_pool
    from query_bench import run_queries
    from rss_bench import run_rss

    sections = set(args.sections.split(","))
    mut = model_under_test(args.model, args.work)
    result: dict = {"model": args.model, "settings": _settings_summary(mut), "machine": machine(),
                    "command": " ".join([".venv/bin/python", "bench/bench_core.py", *sys.argv[1:]]), "timings_s": {}}
    rss_sizes = _ints(args.rss_images)
    pool = photo_pool(args.work / "photo-pool", max([args.images] + (rss_sizes if "rss" in sections else [])))
    if "ingest" in sections:
        folder = link_folder(pool[: args.images], args.work / f"photos-{args.images}")
        result["ingest"] = _section(result, "ingest", lambda: run_ingest(
            mut, pool[: args.images], folder, args.work, args.repeats, not args.no_lancedb))
    if "rss" in sections:
        folders = [link_folder(pool[:n], args.work / f"photos-{n}") for n in rss_sizes]
        result["rss"] = _section(result, "rss", lambda: run_rss(args.model, args.work, folders))
    if "query" in sections:
        result["query"] = _section(result, "query", lambda: run_queries(
            mut, _ints(args.sizes), args.work, args.queries, args.ann, args.ann_min))
    result["machine"]["loadavg_end"] = os.getloadavg()
    return result


def _section(result: dict, name: str, fn) -> dict:  # noqa: ANN001 - a thunk
    print(f"[bench] {name} ...", file=sys.stderr, flush=True)
    t, share = time.perf_counter(), CpuShare()
    out = fn()
    result["timings_s"][name] = round(time.perf_counter() - t, 1)
    result.setdefault("others_cpu_share", {})[name] = share.others()
    print(f"[bench] {name} done in {result['timings_s'][name]}s", file=sys.stderr, flush=True)
    return out


def _settings_summary(mut) -> dict:  # noqa: ANN001
    s = mut.settings
    return {"model": s.model if mut.key != "tiny" else "tiny-clip (tests/conftest.py TINY_CFG)",
            "pretrained": s.pretrained or "(local folder, random init)", "device": s.device,
            "batch_size": s.batch_size, "workers": s.workers, "commit_every": s.commit_every,
            "ann_threshold": s.ann_threshold}


def _merged(path: Path, new: dict) -> dict:
    """A run of some --sections replaces those sections of an earlier result and keeps the others."""
    ran = [name for name in SECTIONS if name in new]
    for name in ran:
        new.setdefault("section_runs", {})[name] = {"command": new["command"], "machine": new["machine"]}
    if not path.is_file() or set(ran) == set(SECTIONS):
        return new
    old = json.loads(path.read_text())
    if old.get("model") != new["model"]:
        return new
    for name in ran:
        old[name] = new[name]
        old.setdefault("section_runs", {})[name] = new["section_runs"][name]
        for key in ("timings_s", "others_cpu_share"):
            old.setdefault(key, {})[name] = new[key][name]
    return old


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.rss_child:
        from rss_bench import child_main

        child_main(model_under_test(args.model, args.work), Path(args.rss_child[0]), Path(args.rss_child[1]))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"core_{args.model}"
    result = _merged(stem.with_suffix(".json"), run(args))
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    from report import markdown

    stem.with_suffix(".md").write_text(markdown(result))
    print(stem.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
