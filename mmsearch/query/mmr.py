"""Maximal Marginal Relevance (Carbonell & Goldstein, 1998): a result page that is not ten near-copies."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from mmsearch.query.fusion import normalize


def mmr_order(relevance: np.ndarray, vectors: Sequence[np.ndarray | None], groups: Sequence[str],
              lam: float, k: int) -> list[int]:
    """Greedy MMR: pick argmax lam*rel - (1-lam)*max similarity to what is already picked.

    Similarity is only defined between items of the same group (table/space); across spaces it is 0.
    """
    n = len(relevance)
    rel = normalize(relevance) if n else relevance
    chosen: list[int] = []
    penalty = np.zeros(n)
    left = list(range(n))
    while left and len(chosen) < k:
        gains = [lam * rel[i] - (1 - lam) * penalty[i] for i in left]
        pick = left.pop(int(np.argmax(gains)))
        chosen.append(pick)
        v = vectors[pick]
        if v is None:
            continue
        for i in left:
            if groups[i] == groups[pick] and vectors[i] is not None:
                penalty[i] = max(penalty[i], float(vectors[i] @ v))
    return chosen
