"""Big folders, quick second runs: re-indexing an unchanged library of many files (issue 14, part 5).

Generates N small distinct PNGs in a scratch folder (default /tmp, removed afterwards), indexes them once
with the tests' tiny model (the embedding is not what is measured), then re-runs over the unchanged folder:

- in process: `MMSearch.index()` with the model already loaded, split into the walk, the one columnar read
  of (path, size, mtime) and the plan, with a count of every SpaceTable query it issued;
- as a person runs it: `python -m mmsearch index --quiet FOLDER` in a fresh process (interpreter start,
  imports, model load, index, index maintenance, the moderation check, the text tower export check);
- after touching a few files (new mtime, same bytes): they are re-checked (hashed, reused), nothing embedded.

    .venv/bin/python bench/rerun_bench.py --files 100000      # ~10 min on 2 busy cores, most of it the first run
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from common import ROOT, CpuShare, machine, model_under_test

from mmsearch.media.files import iter_media_files
from mmsearch.service import MMSearch
from mmsearch.store.table import SpaceTable

PER_FOLDER = 1000
QUERIES = ("_scan", "rows_for_hashes", "rows_for_paths", "known_hashes", "existing_under", "upsert", "delete_paths")


def _write_chunk(args: tuple[str, int, int]) -> None:
    import numpy as np
    from PIL import Image

    folder, start, n = args
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(start)
    for i in range(start, start + n):
        pixels = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(os.path.join(folder, f"img_{i:07d}.png"))


def make_files(root: Path, n: int) -> None:
    chunks = [(str(root / f"d{s // PER_FOLDER:04d}"), s, min(PER_FOLDER, n - s)) for s in range(0, n, PER_FOLDER)]
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_write_chunk, chunks))


class QueryCounter:
    """Counts calls of SpaceTable's query methods while installed (class-level wrappers)."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._saved: dict[str, object] = {}

    def __enter__(self) -> "QueryCounter":
        for name in QUERIES:
            original = getattr(SpaceTable, name)
            self._saved[name] = original

            def wrapper(*a, _o=original, _n=name, **kw):  # noqa: ANN002, ANN003
                self.calls[_n] += 1
                return _o(*a, **kw)

            setattr(SpaceTable, name, wrapper)
        return self

    def __exit__(self, *exc: object) -> None:
        for name, original in self._saved.items():
            setattr(SpaceTable, name, original)


def timed_parts(mm: MMSearch, folder: Path) -> dict:
    """The steps of an unchanged re-run, each on its own (the walk, the one columnar read, the plan)."""
    from mmsearch.ingest.plan import make_plan

    t = time.perf_counter()
    entries = list(iter_media_files(folder))
    walk = time.perf_counter() - t
    table = mm.searcher.table()
    t = time.perf_counter()
    existing = table.existing_under(str(folder))
    read = time.perf_counter() - t
    t = time.perf_counter()
    plan = make_plan(folder, existing, entries)
    return {"walk_s": round(walk, 2), "read_path_size_mtime_s": round(read, 2),
            "plan_s": round(time.perf_counter() - t, 2), "plan_unchanged": plan.unchanged, "plan_todo": len(plan.todo)}


def write_rows(mm: MMSearch, folder: Path) -> int:
    """The library a first run leaves, without embedding 100k files: one row per file with its real path,
    size, mtime and content hash (blake2b of its bytes, as the indexer computes it) and a random unit vector."""
    import hashlib
    from datetime import datetime, timezone

    import numpy as np

    from mmsearch.media.files import keyword_text

    table = mm.library(create=True).table("image", mm.encoder.space, create=True)
    mm.library().add_root(str(folder))
    rng = np.random.default_rng(0)
    entries, n = list(iter_media_files(folder)), 0
    for start in range(0, len(entries), 20_000):
        rows = []
        for e in entries[start:start + 20_000]:
            with open(e.path, "rb") as fh:
                digest = hashlib.blake2b(fh.read(), digest_size=16).hexdigest()
            v = rng.standard_normal(table.space.dim).astype(np.float32)
            rows.append({"path": e.path, "folder": os.path.dirname(e.path), "name": os.path.basename(e.path),
                         "hash": digest, "size": e.size, "mtime_ns": e.mtime_ns, "format": "PNG", "width": 8,
                         "height": 8, "text": keyword_text(e.path), "indexed_at": datetime.now(timezone.utc),
                         "vector": v / np.linalg.norm(v)})
        table.upsert_rows(rows)
        n += len(rows)
    return n


# `python -m mmsearch index`, then which heavy modules the run imported (an unchanged re-run should import none)
HEAVY_PROBE = ("import sys\nfrom mmsearch.cli import main\nsys.argv = ['mmsearch'] + sys.argv[1:]\ntry:\n    main()\n"
               "finally:\n    print('HEAVY:' + ','.join(m for m in ('torch', 'open_clip', 'transformers', 'lancedb', "
               "'pandas') if m in sys.modules), file=sys.stderr)")


def importtime_top(env: dict, folder: Path, n: int = 12) -> list[str]:
    """`python -X importtime -m mmsearch index` once: the top-level imports that cost the most (cumulative)."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "mmsearch", "index", "--quiet", str(folder)],
                          env=env, capture_output=True, text=True, cwd=ROOT)
    rows = []
    for line in proc.stderr.splitlines():
        parts = line.split("|")
        if line.startswith("import time:") and len(parts) == 3 and parts[1].strip().isdigit() \
                and not parts[2].startswith("  "):
            rows.append((int(parts[1]), parts[2].strip()))
    return [f"{name} {us / 1e6:.2f} s" for us, name in sorted(rows, reverse=True)[:n]]


def cli_run(env: dict, args: list[str]) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{args} failed: {proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "stderr": proc.stderr.strip().splitlines()[-3:]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--work", type=Path, default=Path("/tmp/mmsearch-rerun"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--touch", type=int, default=100)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder (files and library)")
    ap.add_argument("--real-first-run", action="store_true", help="build the library with MMSearch.index() "
                    "(embeds every file: ~7 ms/file here) instead of writing its rows directly")
    args = ap.parse_args()

    work = args.work
    folder, data_dir = work / "files", work / "library"
    shutil.rmtree(data_dir, ignore_errors=True)
    out: dict = {"machine": machine(), "files": args.files}
    share = CpuShare()
    t = time.perf_counter()
    if not (folder.is_dir() and sum(1 for _ in iter_media_files(folder)) == args.files):
        shutil.rmtree(folder, ignore_errors=True)
        make_files(folder, args.files)
    out["generate_s"] = round(time.perf_counter() - t, 1)

    mut = model_under_test("tiny", work)
    settings = mut.with_data_dir(data_dir).model_copy(update={"commit_every": 4096, "batch_size": 64})
    mm = MMSearch(settings)
    t = time.perf_counter()
    if args.real_first_run:
        first = mm.index([folder]).embedded
    else:
        first = write_rows(mm, folder)
    out["first_run"] = {"embedded" if args.real_first_run else "rows_written": first,
                        "how": "MMSearch.index()" if args.real_first_run else "rows written directly",
                        "index_s": round(time.perf_counter() - t, 1)}
    t = time.perf_counter()
    out["first_run"]["maintain"] = mm.maintain_index()
    out["first_run"]["maintain_s"] = round(time.perf_counter() - t, 1)
    print(json.dumps(out["first_run"]), flush=True)

    runs = []
    for _ in range(args.repeats):
        with QueryCounter() as counter:
            t = time.perf_counter()
            report = mm.index([folder])
            runs.append({"index_s": round(time.perf_counter() - t, 2), "embedded": report.embedded,
                         "unchanged": report.unchanged, "table_calls": dict(counter.calls)})
    out["rerun_in_process"] = {"runs": runs, "median_s": statistics.median(r["index_s"] for r in runs),
                               "parts": timed_parts(mm, folder)}
    print(json.dumps(out["rerun_in_process"]), flush=True)

    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "MMSEARCH_DATA_DIR": str(data_dir),
           "MMSEARCH_MODELS_DIR": str(settings.models_dir), "MMSEARCH_MODEL": settings.model,
           "MMSEARCH_PRETRAINED": "", "MMSEARCH_DEVICE": "cpu", "MMSEARCH_OFFLINE": "1"}
    cli, imports = [], []
    for _ in range(args.repeats):  # interleaved: the same load on both
        cli.append(cli_run(env, ["-c", HEAVY_PROBE, "index", "--quiet", str(folder)]))
        imports.append(cli_run(env, ["-c", "import mmsearch.service, mmsearch.cli.root, mmsearch.cli.index"]))
    out["rerun_cli"] = {"runs": cli, "median_s": statistics.median(r["wall_s"] for r in cli),
                        "median_cpu_s": statistics.median(r["cpu_s"] for r in cli),
                        "imports_only": imports, "imports_median_s": statistics.median(r["wall_s"] for r in imports),
                        "imports_median_cpu_s": statistics.median(r["cpu_s"] for r in imports),
                        "importtime_top": importtime_top(env, folder)}
    print(json.dumps(out["rerun_cli"]), flush=True)

    touched = sorted(iter_media_files(folder), key=lambda e: e.path)[:: max(1, args.files // args.touch)][: args.touch]
    for e in touched:
        os.utime(e.path, ns=(e.mtime_ns + 10**9, e.mtime_ns + 10**9))
    t = time.perf_counter()
    report = mm.index([folder])
    out["touched"] = {"touched": len(touched), "index_s": round(time.perf_counter() - t, 2),
                      "embedded": report.embedded, "reused": report.reused, "unchanged": report.unchanged}
    print(json.dumps(out["touched"]), flush=True)
    out["others_cpu_share"] = share.others()

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "rerun.json").write_text(json.dumps(out, indent=2))
    (args.out / "rerun.md").write_text(summary(out))
    print(summary(out))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


def summary(out: dict) -> str:
    m, ip, cli, t = out["machine"], out["rerun_in_process"], out["rerun_cli"], out["touched"]
    calls = ip["runs"][-1]["table_calls"]
    return "\n".join([
        f"# Unchanged re-run of {out['files']:,} files",
        "",
        f"`bench/rerun_bench.py --files {out['files']}` on {m['cpu']}, {m['cores_usable']} cores, "
        f"mmsearch {m['mmsearch_source']}, load average at start {m['loadavg_start']}, "
        f"other processes' CPU share during the run {out['others_cpu_share']}.",
        "Tiny random-weight model (the embedding is not what is measured): small distinct PNGs, "
        f"{PER_FOLDER} per folder.",
        "",
        "| step | seconds |",
        "|---|---|",
        f"| setup: the first run ({out['first_run']['how']}; not the target) | {out['first_run']['index_s']} |",
        f"| unchanged re-run, `MMSearch.index()` (model loaded), median of {len(ip['runs'])} | {ip['median_s']} |",
        f"| ... the stat walk alone | {ip['parts']['walk_s']} |",
        f"| ... the one columnar read of path, size, mtime | {ip['parts']['read_path_size_mtime_s']} |",
        f"| ... the plan (compare) | {ip['parts']['plan_s']} |",
        f"| unchanged re-run, `python -m mmsearch index --quiet FOLDER` (fresh process), median of {len(cli['runs'])} "
        f"| **{cli['median_s']}** (CPU {cli['median_cpu_s']} s) |",
        f"| ... of which a fresh process importing what the CLI imports (mmsearch.service, cli: lancedb, pandas) "
        f"| {cli['imports_median_s']} (CPU {cli['imports_median_cpu_s']} s) |",
        f"| {t['touched']} files touched (new mtime, same bytes): re-run | {t['index_s']} |",
        "",
        f"Table calls in one unchanged re-run: {json.dumps(calls)}; embedded {ip['runs'][-1]['embedded']}. "
        f"Touched run: embedded {t['embedded']}, reused {t['reused']} (re-hashed, vector kept), unchanged {t['unchanged']}.",
        "",
        f"CLI output of the last re-run: {' / '.join(cli['runs'][-1]['stderr'])}",
        "",
        "Heavy modules the cold re-run imported (last line above, `HEAVY:`): torch must not be among them.",
        "Top-level imports of one cold re-run by cumulative time (`python -X importtime -m mmsearch index`): "
        + "; ".join(cli["importtime_top"]) + ".",
        "",
    ])


if __name__ == "__main__":
    main()
