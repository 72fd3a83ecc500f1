"""Ranking metrics, implemented once and tested against hand-computed examples.

`ranked` is the system's list of (key, score), best first; `relevant` maps keys to graded relevance
(grade > 0 is relevant). nDCG handles ties in the scores the tie-aware way (McSherry & Najork, ECIR
2008): items with equal scores share the average discount of the positions they span, so the
metric does not depend on how a sort happened to break the tie.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

Ranked = Sequence[tuple[str, float]]


def _rel(relevant: Mapping[str, float]) -> set[str]:
    return {k for k, g in relevant.items() if g > 0}


def recall_at(ranked: Ranked, relevant: Mapping[str, float], k: int) -> float:
    rel = _rel(relevant)
    if not rel:
        return 0.0
    return len(rel & {key for key, _ in ranked[:k]}) / len(rel)


def reciprocal_rank(ranked: Ranked, relevant: Mapping[str, float]) -> float:
    rel = _rel(relevant)
    for i, (key, _) in enumerate(ranked, start=1):
        if key in rel:
            return 1.0 / i
    return 0.0


def average_precision(ranked: Ranked, relevant: Mapping[str, float]) -> float:
    rel = _rel(relevant)
    if not rel:
        return 0.0
    hits, total = 0, 0.0
    for i, (key, _) in enumerate(ranked, start=1):
        if key in rel:
            hits += 1
            total += hits / i
    return total / len(rel)


def _gain(grade: float) -> float:
    return 2.0 ** grade - 1.0


def _discount(position: int) -> float:  # position from 1
    return 1.0 / math.log2(position + 1)


def dcg_at(ranked: Ranked, relevant: Mapping[str, float], k: int) -> float:
    """Tie-aware DCG@k: a group of equal scores spreads its mean gain over its positions' discounts."""
    total, pos = 0.0, 1
    items = list(ranked)
    i = 0
    while i < len(items) and pos <= k:
        j = i
        while j + 1 < len(items) and items[j + 1][1] == items[i][1]:
            j += 1
        group = items[i:j + 1]
        mean_gain = sum(_gain(relevant.get(key, 0.0)) for key, _ in group) / len(group)
        for p in range(pos, pos + len(group)):
            if p <= k:
                total += mean_gain * _discount(p)
        pos += len(group)
        i = j + 1
    return total


def ndcg_at(ranked: Ranked, relevant: Mapping[str, float], k: int) -> float:
    ideal_grades = sorted((g for g in relevant.values() if g > 0), reverse=True)[:k]
    ideal = sum(_gain(g) * _discount(p) for p, g in enumerate(ideal_grades, start=1))
    return dcg_at(ranked, relevant, k) / ideal if ideal > 0 else 0.0


METRICS = ("R@1", "R@5", "R@10", "nDCG@10", "MRR", "mAP")


def all_metrics(ranked: Ranked, relevant: Mapping[str, float]) -> dict[str, float]:
    return {
        "R@1": recall_at(ranked, relevant, 1),
        "R@5": recall_at(ranked, relevant, 5),
        "R@10": recall_at(ranked, relevant, 10),
        "nDCG@10": ndcg_at(ranked, relevant, 10),
        "MRR": reciprocal_rank(ranked, relevant),
        "mAP": average_precision(ranked, relevant),
    }
