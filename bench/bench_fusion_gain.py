"""What fusion and hybrid search gain, on a constructed multi-view ground truth, through the real engine.

Each item has a hidden topic (a unit vector, items drawn from 200 topic clusters). Two embedding
spaces see it through different random projections with independent noise, as two models see the
same photo. A query is a topic; its relevant items are the 10 closest in the hidden space (graded
by rank). Each space alone ranks with its own noise; fusing both should rank better. For hybrid, a
second query set names an item by its catalogue code (a token in the item's keyword text) plus a
vague description: the dense side cannot read codes, the keyword side can.

    .venv/bin/python bench/bench_fusion_gain.py [--items 20000] [--queries 200] [--out bench/results]
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

from common import ROOT, machine

from mmsearch.encoders.base import EmbeddingSpace, Encoder
from mmsearch.eval.metrics import ndcg_at, recall_at, reciprocal_rank
from mmsearch.query.engine import QueryEngine
from mmsearch.query.parts import QueryOptions, QueryPart
from mmsearch.search.vector import VectorSearch
from mmsearch.store import Library

LATENT, DIM, TOPICS = 64, 256, 200


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


class Lookup(Encoder):
    """Query text -> the constructed query vector of this space (the 'model' is the construction)."""

    name = "bench-lookup"
    modalities = frozenset({"text"})

    def __init__(self, space: EmbeddingSpace, vectors: dict[str, np.ndarray]) -> None:
        super().__init__()
        self._space, self.vectors = space, vectors

    @property
    def space(self) -> EmbeddingSpace:
        return self._space

    def _load(self) -> None: ...

    def _unload(self) -> None: ...

    def encode_text(self, texts):
        return np.stack([self.vectors[t] for t in texts])


def build(work: Path, items: int, rng: np.random.Generator):
    centres = _unit(rng.standard_normal((TOPICS, LATENT)))
    latent = _unit(centres[rng.integers(0, TOPICS, items)] + 0.7 * _unit(rng.standard_normal((items, LATENT))))
    proj = [np.linalg.qr(rng.standard_normal((DIM, LATENT)))[0].astype(np.float32) for _ in range(2)]
    noise = 1.1  # per-view noise norm relative to the signal
    views = [_unit(latent @ p.T + noise * _unit(rng.standard_normal((items, DIM)))) for p in proj]
    codes = [f"SKU{100000 + i}" for i in range(items)]
    shutil.rmtree(work, ignore_errors=True)
    lib = Library(work, create=True)
    spaces = [EmbeddingSpace("bench", f"view-{v}", "w", DIM) for v in "ab"]
    for space, vecs in zip(spaces, views):
        table = lib.table("image", space, create=True)
        rows = [{"path": f"/items/{i}.jpg", "folder": "/items", "name": f"{i}.jpg", "hash": str(i), "size": 1,
                 "format": "JPEG", "text": f"item {codes[i]}", "vector": vecs[i]} for i in range(items)]
        for s in range(0, items, 20_000):
            table.upsert_rows(rows[s:s + 20_000])
        table.maintain(ann_threshold=10**9)
    return lib, spaces, latent, proj, codes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = ap.parse_args()
    rng = np.random.default_rng(7)
    lib, spaces, latent, proj, codes = build(args.out / "tmp" / "fusion-gain", args.items, rng)
    vecs: list[dict[str, np.ndarray]] = [{}, {}]
    judged = []
    for j in range(args.queries):  # topic queries: relevant = the 10 nearest items in the hidden space
        q = _unit(latent[rng.integers(args.items)] + 0.2 * _unit(rng.standard_normal(LATENT)))
        text = f"topic query {j}"
        for v in range(2):
            vecs[v][text] = _unit(proj[v] @ q)
        near = np.argsort(-(latent @ q))[:10]
        judged.append(("topic", text, {f"/items/{i}.jpg": 2.0 if r < 3 else 1.0 for r, i in enumerate(near)}))
    for j in range(args.queries // 2):  # code queries: one relevant item, named by its code
        i = int(rng.integers(args.items))
        vague = _unit(latent[i] + 3.0 * _unit(rng.standard_normal(LATENT)))  # 'blue one': barely a hint
        text = f"{codes[i]} blue one"
        for v in range(2):
            vecs[v][text] = _unit(proj[v] @ vague)
        judged.append(("code", text, {f"/items/{i}.jpg": 1.0}))
    encoders = [Lookup(s, vecs[v]) for v, s in enumerate(spaces)]
    configs = {
        "space A alone": ([encoders[0]], QueryOptions(k=10, hybrid=False)),
        "space B alone": ([encoders[1]], QueryOptions(k=10, hybrid=False)),
        "A+B, RRF": (encoders, QueryOptions(k=10, hybrid=False, method="rrf")),
        "A+B, weighted min-max": (encoders, QueryOptions(k=10, hybrid=False, method="weighted")),
        "A+B, weighted z-score": (encoders, QueryOptions(k=10, hybrid=False, method="weighted", norm="zscore")),
        "A+B + keyword (hybrid, RRF)": (encoders, QueryOptions(k=10, hybrid=True, method="rrf")),
    }
    results: dict[str, dict[str, dict[str, float]]] = {}
    for name, (encs, opts) in configs.items():
        engine = QueryEngine(lib, encs, VectorSearch())
        per_type: dict[str, list[tuple[float, float, float]]] = {}
        for kind, text, rel in judged:
            ranked = [(h.result.path, h.score) for h in engine.run([QueryPart("text", text)], opts).hits]
            per_type.setdefault(kind, []).append((ndcg_at(ranked, rel, 10), recall_at(ranked, rel, 10),
                                                  reciprocal_rank(ranked, rel)))
        results[name] = {kind: {"nDCG@10": float(np.mean([m[0] for m in ms])), "R@10": float(np.mean([m[1] for m in ms])),
                                "MRR": float(np.mean([m[2] for m in ms])), "n": len(ms)} for kind, ms in per_type.items()}
    out = {"machine": machine(), "items": args.items, "results": results}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fusion_gain.json").write_text(json.dumps(out, indent=2))
    lines = [f"# Fusion and hybrid gain on a constructed two-view ground truth ({args.items:,} items)", "",
             "| configuration | topic nDCG@10 | topic R@10 | code-query MRR | code-query R@10 |", "|---|---|---|---|---|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['topic']['nDCG@10']:.3f} | {r['topic']['R@10']:.3f} | "
                     f"{r['code']['MRR']:.3f} | {r['code']['R@10']:.3f} |")
    lines += ["", f"Command: `.venv/bin/python bench/bench_fusion_gain.py --items {args.items} --queries {args.queries}`"]
    (args.out / "fusion_gain.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
