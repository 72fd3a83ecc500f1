"""The RSS curves of bench/ingest_memory.py runs: one plot and a table.

    .venv/bin/python bench/ingest_memory_report.py RUNS.json [RUNS.json ...]   # -> bench/results/ingest_memory.{md,png}
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import ROOT

OUT = ROOT / "bench" / "results"


def _runs(files: list[Path]) -> list[dict]:
    runs = []
    for f in files:
        data = json.loads(f.read_text())
        for run in data["runs"]:
            runs.append({**run, "machine": data["machine"]})
    return runs


def _late_growth(run: dict) -> float:
    """MB the RSS rose from the end of the first fifth of the run to the end: a flat curve is near zero."""
    s = [m for _, _, m in run["samples"]]
    if len(s) < 10:
        return float("nan")
    fifth = len(s) // 5
    return round(max(s[-fifth:]) - max(s[:fifth]), 1)


def table(runs: list[dict]) -> list[str]:
    lines = ["| model | files | setting | RSS after model load (MB) | peak RSS (MB) | peak − load (MB) | "
             "rise after the first fifth (MB) | seconds | others' CPU share |", "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in runs:
        lines.append(f"| {r['model']} | {r['files']:,} | {r['label']} | {r['after_load_mb']} | {r['hwm_mb']} | "
                     f"{round(r['hwm_mb'] - r['after_load_mb'], 1)} | {_late_growth(r)} | {r['seconds']} | "
                     f"{r['others_cpu_share']} |")
    return lines


def _band(run: dict, bins: int = 100) -> tuple[list[float], list[float], list[float]]:
    """Per 1 % of the files: the lowest and highest RSS sampled (the forward passes are the spikes)."""
    lo: dict[int, float] = {}
    hi: dict[int, float] = {}
    for _, done, mb in run["samples"]:
        b = min(bins - 1, int(bins * done / max(run["files"], 1)))
        lo[b], hi[b] = min(lo.get(b, mb), mb), max(hi.get(b, mb), mb)
    keys = sorted(hi)
    return [(b + 0.5) / bins for b in keys], [lo[b] for b in keys], [hi[b] for b in keys]


def plot(runs: list[dict], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5))
    for r in runs:
        x, lo, hi = _band(r)
        line, = ax.plot(x, hi, label=f"{r['model']}, {r['files']:,} files, {r['label']}: highest per 1 %")
        ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2)
    ax.axhline(2048, color="red", linestyle="--", linewidth=1, label="2 GiB (2,048 MiB)")
    ax.set_xlabel("fraction of the files indexed")
    ax.set_ylabel("RSS (MiB)")
    ax.legend(fontsize=7, title="band: lowest to highest sample in each 1 % of the files", title_fontsize=7)
    fig.tight_layout()
    fig.savefig(png, dpi=90)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--name", default="ingest_memory")
    ap.add_argument("--notes", type=Path, help="a markdown file to put above the table")
    args = ap.parse_args()
    runs = _runs(args.files)
    OUT.mkdir(parents=True, exist_ok=True)
    plot(runs, OUT / f"{args.name}.png")
    head = args.notes.read_text() if args.notes else f"# Indexing memory\n"
    m = runs[0]["machine"]
    (OUT / f"{args.name}.md").write_text("\n".join([
        head.rstrip(), "", f"Machine: {m.get('cpu')}, {m.get('cores_usable')} cores, load average at start "
        f"{m.get('loadavg_start')}. Curves: `{args.name}.png` (RSS sampled every 0.25 s in the indexing process).",
        "", *table(runs), ""]))


if __name__ == "__main__":
    main()
