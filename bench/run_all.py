"""One command for every benchmark: JSON per section in bench/results/, PNG plots and SUMMARY.md.

    .venv/bin/python bench/run_all.py            # the standard set (about 45-55 min on 2 cores)
    .venv/bin/python bench/run_all.py --quick    # smaller sizes, a few minutes
    .venv/bin/python bench/run_all.py --plots-only   # redraw plots and summary from existing JSON

Sections that cost the most (audio on the real CLAP architecture, the encoder zoo, 1M rows) run only
when named with --with (audio, encoders, workflows, ann).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def run(script: str, *args: str) -> None:
    cmd = [sys.executable, str(HERE / script), *args]
    print("$", " ".join(cmd[1:]), flush=True)
    subprocess.run(cmd, check=True, cwd=HERE)


def benchmarks(quick: bool, extra: set[str]) -> None:
    rows = "20000" if quick else "100000"
    run("bench_core.py", "--model", "tiny", *(["--images", "128", "--rss-images", "100,500", "--sizes", "10000"] if quick else []))
    run("bench_core.py", "--model", "ViT-B-32", *(["--images", "32", "--rss-images", "50,100", "--sizes", "10000"] if quick
                                                   else ["--sizes", "10000,100000"] + (["--ann"] if "ann" in extra else [])))
    run("bench_fusion.py", "--rows", rows, "--queries", "10" if quick else "30")
    run("bench_storage.py", *(["--sentences", "3000", "--synthetic", "10000"] if quick else []))
    run("bench_fusion_gain.py", *(["--items", "5000", "--queries", "60"] if quick else []))
    # the engine, the JSON API and the Gradio API under 1 and 20 users, cold CLI searches (~15 min in full)
    run("bench_serving.py", *(["--rows", "20000", "--seconds", "15", "--gradio-seconds", "10", "--cli-runs", "3"]
                              if quick else []))
    if "audio" in extra:
        run("bench_audio.py")
    if "encoders" in extra:
        run("bench_encoders.py")
    if "workflows" in extra:
        run("bench_workflows.py", "--n", "200", "--ocr", "10")  # 12 MP photos, ~3 MB each


def _load(name: str) -> dict | None:
    f = RESULTS / name
    return json.loads(f.read_text()) if f.is_file() else None


def plots() -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []

    def save(fig, name: str) -> None:
        fig.tight_layout()
        fig.savefig(RESULTS / name, dpi=110)
        plt.close(fig)
        made.append(name)

    core = _load("core_ViT-B-32.json")
    if core and "ingest" in core:
        g = core["ingest"]
        bars = {"bare forward": g["bare_forward_images_per_s"], "`mmsearch index`": g["pipeline_images_per_s"]}
        if "lancedb_open_clip_images_per_s" in g:
            bars["lancedb open-clip fn"] = g["lancedb_open_clip_images_per_s"]
        fig, ax = plt.subplots(figsize=(6, 3.2))
        ax.bar(list(bars), list(bars.values()), color=["#888", "#4c5fd5", "#d58c4c"][: len(bars)])
        ax.set_ylabel("images / s")
        ax.set_title("Ingestion, ViT-B-32 (random weights), 2 CPU cores")
        save(fig, "ingest_vit_b_32.png")
    if core and "query" in core:
        sizes = core["query"]["sizes"]
        xs = sorted(sizes, key=int)
        fig, ax = plt.subplots(figsize=(6, 3.2))
        for key, label in (("searcher_exact", "mmsearch exact"), ("numpy_bruteforce", "numpy matmul"),
                           ("lancedb_flat", "LanceDB flat")):
            ys = [sizes[x].get(key, {}).get("p50") for x in xs]
            if any(y is not None for y in ys):
                ax.plot([int(x) for x in xs], ys, marker="o", label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("rows")
        ax.set_ylabel("p50 ms per query")
        ax.legend()
        ax.set_title("Query latency, 512-d")
        save(fig, "query_latency.png")
    fusion = _load("fusion.json")
    if fusion:
        lat = fusion["latency_ms"]
        fig, ax = plt.subplots(figsize=(7, 3.2))
        ax.barh(list(lat), [v["p50"] for v in lat.values()], color="#4c5fd5")
        ax.set_xlabel("p50 ms")
        ax.set_title(f"Query engine, {fusion['rows_per_table']:,} rows x {fusion['tables']} tables")
        save(fig, "fusion_latency.png")
    storage = _load("storage.json")
    if storage:
        fig, axes = plt.subplots(1, len(storage["results"]), figsize=(6 * len(storage["results"]), 3.6))
        for ax, r in zip(axes if len(storage["results"]) > 1 else [axes], storage["results"]):
            names = list(r["results"])
            ax.barh(names, [r["results"][n]["recall@10"] for n in names], color="#4c5fd5")
            ax.set_xlim(0, 1.05)
            ax.set_xlabel("recall@10 vs float32")
            ax.set_title(r["corpus"][:60], fontsize=9)
        save(fig, "storage_retention.png")
    gain = _load("fusion_gain.json")
    if gain:
        names = list(gain["results"])
        fig, ax = plt.subplots(figsize=(7, 3.4))
        ax.barh(names, [gain["results"][n]["topic"]["nDCG@10"] for n in names], color="#4c5fd5", label="topic nDCG@10")
        ax.barh(names, [gain["results"][n]["code"]["MRR"] for n in names], color="#d58c4c", alpha=0.5,
                label="code-query MRR")
        ax.legend(fontsize=8)
        ax.set_title("Fusion and hybrid gain (constructed ground truth)")
        save(fig, "fusion_gain.png")
    return made


def summary(made: list[str]) -> None:
    parts = ["# mmsearch benchmark summary", "",
             "Made by `.venv/bin/python bench/run_all.py`. Every number comes from the JSON next to this file; "
             "each section's own markdown has the machine, load and command. The machine has 2 shared CPU cores: "
             "where other processes used the CPU during a run, its markdown says how much.", ""]
    for md in ("core_ViT-B-32.md", "1m/core_ViT-B-32.md", "core_tiny.md", "fusion.md", "storage.md", "fusion_gain.md", "audio_cpu.md",
               "encoders.md", "workflows.md", "text.md", "serving.md"):
        if (RESULTS / md).is_file():
            parts.append(f"- [{md}]({md})")
    parts.append("")
    parts += [f"![{png}]({png})" for png in made]
    (RESULTS / "SUMMARY.md").write_text("\n".join(parts) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--plots-only", action="store_true")
    ap.add_argument("--with", dest="extra", default="", help="comma-separated: audio, encoders, workflows, ann")
    args = ap.parse_args()
    if not args.plots_only:
        benchmarks(args.quick, {x.strip() for x in args.extra.split(",") if x.strip()})
    summary(plots())
    print(f"wrote {RESULTS / 'SUMMARY.md'}")


if __name__ == "__main__":
    main()
