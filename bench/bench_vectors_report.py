"""vectors.md and vectors.png from bench_vectors.py's JSON; sizes not measured are extrapolated, and say so."""

from __future__ import annotations

from pathlib import Path


def _extrapolate(results: dict, target: int = 10_000_000) -> list[str]:
    sizes = sorted(int(s) for s in results["sizes"])
    if not sizes or target in sizes:
        return []
    n = sizes[-1]
    lines = [f"", f"## 10M rows: extrapolated, NOT measured", "",
             f"Scaled linearly from the {n:,}-row run (the scan is linear in rows; resident bytes per item are fixed). "
             f"Recall cannot be extrapolated: on this data a lossy codec's shortlist is crowded more at 10M.", "",
             "| codec | resident MB (est.) | query p50 ms (est.) |", "|---|---|---|"]
    for kind, r in results["sizes"][str(n)]["kinds"].items():
        mb = r["stats"]["bytes_per_item"] * target / 2**20
        lines.append(f"| {kind} | {mb:,.0f} (+ ~{r['rss_before_mb']} MB process) | {r['query']['p50_ms'] * target / n:,.0f} |")
    return lines


def write_report(results: dict, md: Path, png: Path) -> None:
    m = results.get("machine", {})
    lines = ["# Resident vectors: compressed codes, full-precision rerank, refresh by diff", "",
             f"Machine: {m.get('cores')} cores ({m.get('cpu')}), load {m.get('load_avg_1_5_15')} (shared with other "
             f"sessions), numpy {m.get('numpy')}, lancedb {m.get('lancedb')}, commit {m.get('commit')}, {m.get('when')}.",
             "", f"Command: `{results.get('command', '.venv/bin/python bench/bench_vectors.py --sizes 1000000 --commit-at 1000000 --queries 20')}`", "",
             "Each codec runs in a fresh process (the vector layer of a search server, no model loaded). Query: "
             "VectorSearch.search, k=10, one query at a time, one thread. Recall@10 against float32 exact computed by a "
             "streamed pass over the table.", ""]
    for size, entry in sorted(results["sizes"].items(), key=lambda kv: int(kv[0])):
        b = entry["build"]
        lines += [f"## {int(size):,} rows ({b['disk_bytes'] / 2**30:.1f} GB on disk, written in {b['write_s']} s)", "",
                  "| codec | bytes/item resident | load s | RSS after load MB | peak RSS MB | p50 ms | p95 ms | recall@10 | load avg (1 min) after load / at end |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for kind, r in entry["kinds"].items():
            loads = f"{r.get('load_avg_after_load', ['?'])[0]} / {r.get('load_avg_end', ['?'])[0]}"
            lines.append(f"| {kind} | {r['stats']['bytes_per_item']} | {r['load_s']} | {r['rss_after_load_mb']} | "
                         f"{r['peak_rss_mb']} | {r['query']['p50_ms']} | {r['query']['p95_ms']} | {r['recall_at_10']} | {loads} |")
        lines.append("")
        for kind, r in entry["kinds"].items():
            if "rerank_sweep" in r:
                lines.append(f"{kind} shortlist sweep: " + "; ".join(
                    f"{v['shortlist']} rows: recall {v['recall_at_10']}, p50 {v['p50_ms']} ms" for v in r["rerank_sweep"].values()))
        lines.append("")
        commits = {k: r["commit"] for k, r in entry["kinds"].items() if "commit" in r}
        if commits:
            lines += ["First query after a 512-row commit (merge_insert through SpaceTable.upsert, applied as a diff):", "",
                      "| codec | normal p50 ms | first after commit p50 / max ms | ratio p50 / max | full loads / diffs |",
                      "|---|---|---|---|---|"]
            for kind, c in commits.items():
                r = entry["kinds"][kind]["refreshes"]
                lines.append(f"| {kind} | {c['normal']['p50_ms']} | {c['first_after_commit']['p50_ms']} / "
                             f"{c['first_after_commit']['p95_ms']} | {c['ratio_first_to_normal_p50']} / "
                             f"{c['ratio_first_to_normal_max']} | {r['full_loads']} / {r['diffs']} |")
            lines.append("")
    lines += _extrapolate(results)
    md.write_text("\n".join(lines) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, axes = plt.subplots(1, 4, figsize=(17, 3.8))
    for size, entry in sorted(results["sizes"].items(), key=lambda kv: int(kv[0])):
        kinds = list(entry["kinds"])
        x = [f"{k}\n{int(size) // 1000}k" for k in kinds]
        axes[0].bar(x, [entry["kinds"][k]["query"]["p50_ms"] for k in kinds])
        axes[1].bar(x, [entry["kinds"][k]["recall_at_10"] for k in kinds])
        axes[2].bar(x, [entry["kinds"][k]["rss_after_load_mb"] for k in kinds])
        for k in kinds:
            sweep = entry["kinds"][k].get("rerank_sweep", {})
            if sweep:
                pts = sorted((v["shortlist"], v["recall_at_10"]) for v in sweep.values())
                axes[3].plot(*zip(*pts), marker="o", label=f"{k} {int(size) // 1000}k")
    for ax, title in zip(axes, ("query p50 (ms)", "recall@10 vs float32 exact", "RSS after load (MB)",
                                "recall@10 by shortlist (rows rescored)")):
        ax.set_title(title)
    axes[1].set_ylim(0.5, 1.0)
    axes[3].set_xscale("log")
    axes[3].axhline(0.98, color="grey", linestyle=":")
    axes[3].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png, dpi=90)
