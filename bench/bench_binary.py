"""Why binary + rerank kept recall@10 0.61 at 1M rows, and which binary code fixes it (issue 14, part 1).

Candidates, each a 1-bit-per-dimension code ranked by Hamming distance, its shortlist rescored with the
float32 vectors (as the resident index does):
- sign:      the sign bits of each vector (the codec before this change);
- centred:   the sign bits of x - mean(table) (the usual fix for un-centred embeddings);
- residual:  the sign bits of x - c, c the nearest of K k-means centres, scored with the angle estimate of
             search/binary.py (what the binary codec does now).
Recall@10 against float32 exact for several shortlist sizes, on the bench's clustered 512-d vectors (as
bench_vectors.py draws them) and on real all-MiniLM-L6-v2 sentence vectors (bench_storage.py's corpus).
Numpy only, no LanceDB: the shortlist's rescoring reads the same float32 values a table holds.

    .venv/bin/python bench/bench_binary.py --rows 1000000 --out bench/results/vectors_binary.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import numpy as np  # noqa: E402

import bench_vectors as bv  # noqa: E402
from common import machine  # noqa: E402
from mmsearch.search import binary  # noqa: E402
from mmsearch.search.codecs import Codec  # noqa: E402

K = 10


def hamming_scores(bits: np.ndarray, qbits: np.ndarray) -> np.ndarray:
    words, qwords = bits.view(np.uint64), qbits.view(np.uint64)
    out = np.empty((len(bits), len(qbits)), np.float32)
    for j, q in enumerate(qwords):
        for s in range(0, len(words), 65536):
            out[s:s + 65536, j] = -np.bitwise_count(words[s:s + 65536] ^ q).sum(axis=1, dtype=np.int32)
    return out


def pad_bits(x: np.ndarray) -> np.ndarray:
    bits = np.packbits(x > 0, axis=1)
    out = np.zeros((len(x), binary.bit_bytes(x.shape[1])), np.uint8)
    out[:, :bits.shape[1]] = bits
    return out


def recalls(x: np.ndarray, q: np.ndarray, truth: list[set], scores: np.ndarray, shortlists: list[int]) -> dict:
    out = {}
    for s in shortlists:
        got = []
        for j in range(len(q)):
            cand = np.argpartition(-scores[:, j], s - 1)[:s]
            top = cand[np.argsort(-(x[cand] @ q[j]), kind="stable")[:K]]
            got.append(len(truth[j] & set(top.tolist())) / K)
        out[str(s)] = round(float(np.mean(got)), 4)
    return out


def candidates(x: np.ndarray, q: np.ndarray, shortlists: list[int]) -> dict:
    exact = x @ q.T
    truth = [set(np.argpartition(-exact[:, j], K - 1)[:K].tolist()) for j in range(len(q))]
    del exact
    out = {}
    t = time.process_time()
    out["sign"] = recalls(x, q, truth, hamming_scores(pad_bits(x), pad_bits(q)), shortlists)
    out["sign"]["scan_cpu_ms_per_query"] = round((time.process_time() - t) * 1000 / len(q), 1)
    print("sign", out["sign"], flush=True)
    mean = x[:100_000].mean(axis=0)
    out["centred"] = recalls(x, q, truth, hamming_scores(pad_bits(x - mean), pad_bits(q - mean)), shortlists)
    out["centred"]["mean_norm"] = round(float(np.linalg.norm(mean)), 4)
    print("centred", out["centred"], flush=True)
    t = time.process_time()
    codec = Codec.fit("binary", x[:131_072])  # the first batch a load reads, as ResidentIndex fits it
    codes = codec.encode(x)
    fit_encode = time.process_time() - t
    t = time.process_time()
    scores = codec.scores(codes, q)
    scan = time.process_time() - t
    out["residual"] = {**recalls(x, q, truth, scores, shortlists), "centroids": len(codec.centroids),
                       "bytes_per_vector": codec.bytes_per_vector, "fit_encode_cpu_s": round(fit_encode, 1),
                       "scan_cpu_ms_per_query": round(scan * 1000 / len(q), 1)}
    print("residual", out["residual"], flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--shortlists", default="100,400,1000,2000,4000")
    ap.add_argument("--sentences", type=int, default=20_000, help="MiniLM corpus size (0: skip)")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "vectors_binary.json")
    args = ap.parse_args()
    shortlists = [int(s) for s in args.shortlists.split(",")]
    result = {"machine": machine(), "rows": args.rows, "queries": args.queries,
              "load_avg_start": [round(v, 2) for v in os.getloadavg()], "corpora": {}}
    c, rng = bv.centres(), np.random.default_rng(1)
    x = np.concatenate([bv.sample(c, min(bv.CHUNK, args.rows - s), rng) for s in range(0, args.rows, bv.CHUNK)])
    q = bv.sample(c, args.queries, np.random.default_rng(2))
    result["corpora"][f"clustered 512-d, {args.rows:,} rows"] = candidates(x, q, shortlists)
    del x
    if args.sentences:
        try:
            from bench_storage import QUERIES, doc_sentences, minilm

            emb = minilm(doc_sentences(args.sentences + QUERIES))
            small = [s for s in shortlists if s < len(emb) - QUERIES]
            result["corpora"][f"all-MiniLM-L6-v2, {len(emb) - QUERIES:,} sentences"] = \
                candidates(np.ascontiguousarray(emb[QUERIES:]), emb[:QUERIES], small)
        except Exception as exc:  # noqa: BLE001 - the real corpus needs a packaged model; report, go on
            result["minilm_error"] = str(exc)[:300]
    result["load_avg_end"] = [round(v, 2) for v in os.getloadavg()]
    args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
