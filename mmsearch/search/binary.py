"""Binary codes taken around k-means centres: the sign bits of each row's residual from its nearest centre.

Why not the sign bits of the vector itself: on clustered vectors (the bench's 256 clusters; CLIP's shared
mean direction) the signs follow the cluster centre, so rows of one cluster share most bits and Hamming
distance barely orders the neighbours inside it. At 1M rows that kept recall@10 0.60 with a 400-row
shortlist; centring on the table mean alone changed nothing there (0.61: those clusters average to ~0).
The residual's bits spend all of their information on where a row sits inside its cluster (measured in
bench/results/vectors_binary.md).

A row's code: its residual's sign bits (padded to whole 64-bit words), then 8 bytes: the centre's number
(uint16), two bytes unused, ||r|| and c.r (float16 each). A query q scores a row as
    q.x = q.c + c.r + (q - c).r  ~  q.c + c.r + ||q - c|| ||r|| cos(pi h / dim)
with h the Hamming distance between the row's bits and the bits of q - c: the angle between two vectors
estimated from their sign bits (random-hyperplane hashing). One XOR + popcount per word, as plain Hamming.
"""

from __future__ import annotations

import numpy as np

CENTROIDS = 256  # k-means centres at most; 64 rows per centre at least
SAMPLE_PER_CENTROID = 64
ITERATIONS = 6
TAIL = 8  # bytes after the bits: centre (uint16), unused (2), ||r|| (float16), c.r (float16)
BLOCK_ROWS = 16_384
ASSIGN_ROWS = 8_192


def bit_bytes(dim: int) -> int:
    """Bytes of sign bits per row: whole 64-bit words, so XOR + popcount runs on uint64."""
    return (dim + 63) // 64 * 8


def width(dim: int) -> int:
    return bit_bytes(dim) + TAIL


def fit_centroids(sample: np.ndarray, seed: int = 0) -> np.ndarray:
    """k-means centres of sample's rows (a few Lloyd iterations from a random pick of rows)."""
    x = np.asarray(sample, np.float32)
    if len(x) == 0:
        return np.zeros((1, x.shape[1]), np.float32)
    k = max(1, min(CENTROIDS, len(x) // SAMPLE_PER_CENTROID))
    rng = np.random.default_rng(seed)
    if len(x) > k * SAMPLE_PER_CENTROID:
        x = x[np.sort(rng.choice(len(x), k * SAMPLE_PER_CENTROID, replace=False))]
    centres = x[rng.choice(len(x), k, replace=False)].copy()
    for _ in range(ITERATIONS if k > 1 else 1):
        near = nearest(x, centres)
        sums = np.zeros_like(centres)
        np.add.at(sums, near, x)
        counts = np.bincount(near, minlength=k)
        filled = counts > 0  # an empty centre keeps its place
        centres[filled] = sums[filled] / counts[filled, None]
    return centres


def nearest(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest centre (Euclidean) of each row."""
    half = 0.5 * np.einsum("kd,kd->k", centres, centres)
    out = np.empty(len(x), np.int64)
    for start in range(0, len(x), ASSIGN_ROWS):
        out[start:start + ASSIGN_ROWS] = np.argmax(x[start:start + ASSIGN_ROWS] @ centres.T - half, axis=1)
    return out


def encode(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    n, dim = x.shape
    bb = bit_bytes(dim)
    codes = np.zeros((n, bb + TAIL), np.uint8)
    near = nearest(x, centres)
    residual = x - centres[near]
    bits = np.packbits(residual > 0, axis=1)
    codes[:, :bits.shape[1]] = bits
    codes[:, bb:bb + 2] = near.astype(np.uint16).view(np.uint8).reshape(n, 2)
    tail = np.stack([np.linalg.norm(residual, axis=1), np.einsum("nd,nd->n", centres[near], residual)], axis=1)
    codes[:, bb + 4:bb + 8] = tail.astype(np.float16).view(np.uint8).reshape(n, 4)
    return codes


def _parts(codes: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """bits as uint64 words, centre numbers, ||r||, c.r of a block of codes."""
    bb = bit_bytes(dim)
    codes = np.ascontiguousarray(codes)
    words = codes.view(np.uint64)[:, :bb // 8]
    near = codes[:, bb:bb + 2].copy().view(np.uint16)[:, 0]
    tail = codes[:, bb + 4:bb + 8].copy().view(np.float16).astype(np.float32)
    return words, near, tail[:, 0], tail[:, 1]


def decode(codes: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """An approximation of each row: its centre plus ||r|| times its residual's sign vector."""
    dim = centres.shape[1]
    _, near, norm, _ = _parts(codes, dim)
    signs = np.unpackbits(codes[:, :bit_bytes(dim)], axis=1, count=dim).astype(np.float32) * 2 - 1
    return centres[near] + signs * (norm / np.sqrt(dim))[:, None]


def scores(codes: np.ndarray, queries: np.ndarray, centres: np.ndarray, out: np.ndarray) -> None:
    """out[i, j]: the estimate of queries[j] . row i (see the module's docstring); higher is closer."""
    dim = centres.shape[1]
    bb = bit_bytes(dim)
    cos = np.cos(np.pi * np.arange(bb * 8 + 1) / dim).astype(np.float32)
    per_query = []
    for q in queries:
        diff = q - centres
        bits = np.zeros((len(centres), bb), np.uint8)
        packed = np.packbits(diff > 0, axis=1)
        bits[:, :packed.shape[1]] = packed
        per_query.append((bits.view(np.uint64), np.linalg.norm(diff, axis=1).astype(np.float32),
                          (centres @ q).astype(np.float32)))
    for start in range(0, len(codes), BLOCK_ROWS):
        words, near, norm, cr = _parts(codes[start:start + BLOCK_ROWS], dim)
        for j, (qbits, qnorm, qc) in enumerate(per_query):
            h = np.bitwise_count(words ^ qbits[near]).sum(axis=1, dtype=np.int32)
            out[start:start + len(words), j] = qc[near] + cr + qnorm[near] * norm * cos[h]
