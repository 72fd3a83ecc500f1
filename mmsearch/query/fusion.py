"""Late fusion of ranked lists. Small, pure and validated.

Two methods:
- Reciprocal Rank Fusion (Cormack, Clarke & Buettcher, SIGIR 2009): score(d) = sum_i w_i / (k + rank_i(d)),
  ranks from 1; equal scores in a list share the best of their ranks (two copies of a file, two identical
  moments), so the order a tie happens to be listed in never decides the fused order. It needs no score
  calibration, so it is the default across spaces and across dense and keyword lists.
- A weighted combination of normalised scores (min-max or z-score per list). Raw scores of different
  spaces are never compared: each list is normalised on its own first.

Negative weights subtract: a list for "- people" pushes down what it ranks high.

One piece of evidence is one list: `best_of` folds the lists of the same keyword query over several
tables of the same files into one before fusing, so a file-name match counts once, not once per table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np

from mmsearch.errors import FusionError  # noqa: F401 - raised here, importable from here as before
from mmsearch.query.parts import Method, Norm  # noqa: F401 - importable from here as before

METHODS = ("rrf", "weighted")
TIE = 1e-6  # scores closer than this are the same score (float noise, not evidence)
NORMS = ("minmax", "zscore")


@dataclass(frozen=True)
class RankedList:
    """One (query part, table) result list, best first."""

    keys: tuple[str, ...]
    scores: tuple[float, ...]
    weight: float = 1.0
    label: str = ""

    def __post_init__(self) -> None:
        if len(self.keys) != len(self.scores):
            raise FusionError(f"list {self.label!r}: {len(self.keys)} keys but {len(self.scores)} scores")
        if len(set(self.keys)) != len(self.keys):
            raise FusionError(f"list {self.label!r} has duplicate keys")


def _check(lists: Sequence[RankedList]) -> None:
    if not lists:
        raise FusionError("nothing to fuse: no ranked lists")
    if not any(rl.weight > 0 for rl in lists):
        raise FusionError("at least one list needs a positive weight; all weights are zero or negative")


def rrf(lists: Sequence[RankedList], k: float = 60) -> dict[str, float]:
    if not k > 0:
        raise FusionError(f"RRF k must be positive, got {k}")
    _check(lists)
    fused: dict[str, float] = {}
    for rl in lists:
        rank, leader = 0, None
        for position, (key, score) in enumerate(zip(rl.keys, rl.scores), start=1):
            # Equal scores share the best rank among them ("1224"): a tie is not a ranking. Equal to within
            # TIE: batched model calls differ in the 7th digit for the same input.
            if leader is None or abs(score - leader) > TIE:
                rank, leader = position, score
            fused[key] = fused.get(key, 0.0) + rl.weight / (k + rank)
    return fused


def normalize(scores: Sequence[float], method: Norm = "minmax") -> np.ndarray:
    x = np.asarray(scores, dtype=np.float64)
    if x.size == 0:
        return x
    if method == "minmax":
        span = x.max() - x.min()
        return np.ones_like(x) if span == 0 else (x - x.min()) / span
    if method == "zscore":
        std = x.std()
        return np.zeros_like(x) if std == 0 else (x - x.mean()) / std
    raise FusionError(f"unknown normalisation {method!r}; use one of {', '.join(NORMS)}")


def weighted(lists: Sequence[RankedList], norm: Norm = "minmax") -> dict[str, float]:
    """Sum of weight x normalised score. An item missing from a list gets that list's floor (0 for
    min-max, the list minimum for z-score), so absence never beats presence."""
    _check(lists)
    fused: dict[str, float] = {}
    floors = []
    for rl in lists:
        z = normalize(rl.scores, norm)
        floor = 0.0 if norm == "minmax" or z.size == 0 else float(z.min())
        floors.append(floor)
        for key, s in zip(rl.keys, z):
            fused[key] = fused.get(key, 0.0) + rl.weight * (float(s) - floor)
    return fused


def best_of(lists: Sequence[RankedList], weight: float = 1.0, label: str = "") -> RankedList:
    """One list from several lists of the same evidence (one keyword query over the same files' words in
    several tables): each key once, at its best score, best first (ties keep first-seen order). Fusing
    the lists side by side instead would count one match once per table."""
    best: dict[str, float] = {}
    for rl in lists:
        for key, s in zip(rl.keys, rl.scores):
            if key not in best or s > best[key]:
                best[key] = s
    ranked = sorted(best.items(), key=lambda kv: -kv[1])
    return RankedList(tuple(k for k, _ in ranked), tuple(float(s) for _, s in ranked), weight, label)


def fuse(lists: Sequence[RankedList], method: Method = "rrf", k: float = 60, norm: Norm = "minmax") -> list[tuple[str, float]]:
    """Fused (key, score) pairs, best first; ties keep first-seen order."""
    if method == "rrf":
        scores = rrf(lists, k)
    elif method == "weighted":
        scores = weighted(lists, norm)
    else:
        raise FusionError(f"unknown fusion method {method!r}; use one of {', '.join(METHODS)}")
    return sorted(scores.items(), key=lambda kv: -kv[1])
