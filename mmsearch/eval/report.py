"""Evaluation results as a readable table."""

from __future__ import annotations

from mmsearch.eval.metrics import METRICS
from mmsearch.eval.runner import Evaluation


def table(results: list[Evaluation], source: str) -> str:
    n = len(results[0].per_query) if results else 0
    head = f"{'configuration':<18} {'type':<12} {'n':>5} " + " ".join(f"{m:>8}" for m in METRICS)
    lines = [f"{n} judged queries from {source}", head, "-" * len(head)]
    for r in results:
        lines.append(_row(r.config, "all", n, r.overall()))
        by_type = r.by_type()
        if len(by_type) > 1:
            for t, vals in sorted(by_type.items()):
                lines.append(_row("", t, int(vals["n"]), vals))
    return "\n".join(lines)


def _row(config: str, kind: str, n: int, vals: dict[str, float]) -> str:
    return f"{config:<18} {kind:<12} {n:>5} " + " ".join(f"{vals[m]:>8.3f}" for m in METRICS)
