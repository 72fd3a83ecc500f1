"""Runs judged queries through the query engine under one or more configurations."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from statistics import fmean

from mmsearch.eval.judged import Judged, JudgedSet
from mmsearch.eval.metrics import METRICS, all_metrics
from mmsearch.query.parts import QueryOptions, QueryPart
from mmsearch.service import MMSearch

# Named configurations for --compare; each is a change to the library's default query options.
CONFIGS: dict[str, dict] = {
    "default": {},
    "rrf": {"method": "rrf"},
    "weighted": {"method": "weighted"},
    "weighted-zscore": {"method": "weighted", "norm": "zscore"},
    "no-hybrid": {"hybrid": False},
    "no-rerank": {"rerank": False},
    "mmr": {"mmr": 0.7},
}


@dataclass
class Evaluation:
    config: str
    per_query: list[tuple[Judged, dict[str, float]]] = field(default_factory=list)
    seconds: float = 0.0

    def overall(self) -> dict[str, float]:
        return {m: fmean(r[m] for _, r in self.per_query) for m in METRICS} if self.per_query else {}

    def by_type(self) -> dict[str, dict[str, float]]:
        groups: dict[str, list[dict[str, float]]] = {}
        for q, r in self.per_query:
            groups.setdefault(q.type, []).append(r)
        return {t: {m: fmean(r[m] for r in rs) for m in METRICS} | {"n": len(rs)} for t, rs in groups.items()}

    def to_dict(self) -> dict:
        return {"config": self.config, "queries": len(self.per_query), "seconds": round(self.seconds, 3),
                "overall": self.overall(), "by_type": self.by_type()}


def parts_of(q: Judged) -> list[QueryPart]:
    parts = []
    if q.text:
        parts.append(QueryPart("text", q.text))
    if q.image:
        parts.append(QueryPart("image", q.image))
    if q.audio:
        parts.append(QueryPart("audio", q.audio))
    return parts


def config_options(name: str, base: QueryOptions) -> QueryOptions:
    if name not in CONFIGS:
        from mmsearch.errors import BadQuery

        raise BadQuery(f"unknown configuration {name!r}; choose from {', '.join(CONFIGS)}")
    return replace(base, **CONFIGS[name])


def evaluate(service: MMSearch, judged: JudgedSet, config: str = "default", depth: int = 100,
             base: QueryOptions | None = None) -> Evaluation:
    options = config_options(config, base or QueryOptions(k=depth, shortlist=max(100, depth)))
    out = Evaluation(config)
    started = time.perf_counter()
    for q in judged.queries:
        answer = service.query(parts_of(q), replace(options, where=list(options.where)))
        ranked = [(h.result.path, h.score) for h in answer.hits]
        out.per_query.append((q, all_metrics(ranked, q.relevant)))
    out.seconds = time.perf_counter() - started
    return out
