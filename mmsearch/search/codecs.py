"""How the resident copy of a table's vectors is stored: float32, float16, int8 or binary.

The resident copy only ranks a shortlist; the full-precision vectors stay in LanceDB and rescore it
(the binary-first, rerank-with-full-precision pipeline), so a lossy codec costs recall only where the
true top k falls outside its shortlist. bench/results/storage.md measured the trade: int8 with a
100-row shortlist kept recall@10 1.000, binary needed a shortlist of 100 (MiniLM sentences, 0.986) to
400 (synthetic clusters) for the same. Each codec's `rerank` is its default shortlist per result asked.

Every score is "higher is closer" and is used for ranking only; the scores a search returns are exact
cosines from the full-precision rescoring (float32 is exact already and skips it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from mmsearch.errors import MMSearchError

Kind = Literal["float32", "float16", "int8", "binary"]
KINDS: tuple[str, ...] = ("float32", "float16", "int8", "binary")
SETTINGS: tuple[str, ...] = ("auto", *KINDS)
# Rows converted to float32 at a time: a 2048 x 512 block (4 MB) stays in cache, which made int8 as fast as a
# float32 scan here (37 ms per 200k rows against 172 ms with 32k-row blocks); never the whole matrix.
CHUNK_ROWS = 2048
HAMMING_ROWS = 16_384

# auto: the largest codec whose resident copy stays under these sizes (float32 up to ~250k rows at 512-d,
# int8 up to ~2M, binary above: 64 bytes a row, ~0.7 GB at 10M rows with ids and path hashes).
AUTO_FLOAT32_BYTES = 512 * 2**20
AUTO_INT8_BYTES = 1024 * 2**20


class BadVectorSetting(MMSearchError):
    """A --vectors / MMSEARCH_VECTORS value that is not one of the codecs."""


def check_setting(value: str) -> str:
    if value not in SETTINGS:
        raise BadVectorSetting(f"vectors={value!r}: use one of {', '.join(SETTINGS)}")
    return value


def auto_kind(rows: int, dim: int) -> str:
    """The codec `auto` picks for a table of this size."""
    if rows * dim * 4 <= AUTO_FLOAT32_BYTES:
        return "float32"
    if rows * dim <= AUTO_INT8_BYTES:
        return "int8"
    return "binary"


@dataclass(frozen=True)
class Codec:
    """Encodes vectors into resident codes and scores codes against query vectors."""

    kind: str
    dim: int
    scale: np.ndarray | None = None  # int8: one step size per dimension, fitted on the table's own vectors

    @property
    def exact(self) -> bool:
        return self.kind == "float32"

    @property
    def rerank(self) -> int:
        """Default shortlist per result asked (the full-precision rescoring reads that many rows)."""
        return {"float32": 1, "float16": 4, "int8": 10, "binary": 40}[self.kind]

    @property
    def bytes_per_vector(self) -> int:
        return {"float32": 4 * self.dim, "float16": 2 * self.dim, "int8": self.dim,
                "binary": (self.dim + 7) // 8}[self.kind]

    @classmethod
    def fit(cls, kind: str, sample: np.ndarray) -> "Codec":
        """A codec for kind; int8 takes its per-dimension scale from sample (rows of the table)."""
        if kind not in KINDS:
            raise BadVectorSetting(f"vectors={kind!r}: use one of {', '.join(KINDS)}")
        dim = sample.shape[1]
        if kind != "int8":
            return cls(kind, dim)
        # Symmetric per-dimension steps: 127 steps to the largest magnitude seen. Later rows beyond it clip,
        # which costs ranking precision only; the rescoring uses the stored float32 vectors.
        top = np.abs(sample).max(axis=0) if len(sample) else np.ones(dim, np.float32)
        return cls(kind, dim, (np.maximum(top, 1e-12) / 127.0).astype(np.float32))

    def encode(self, vectors: np.ndarray) -> np.ndarray:
        x = np.asarray(vectors, np.float32)
        if self.kind == "float32":
            return np.ascontiguousarray(x)
        if self.kind == "float16":
            return x.astype(np.float16)
        if self.kind == "int8":
            return np.clip(np.rint(x / self.scale), -127, 127).astype(np.int8)
        return np.packbits(x > 0, axis=1)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Approximate float32 vectors (float32 and float16 give the stored values back)."""
        if self.kind in ("float32", "float16"):
            return codes.astype(np.float32)
        if self.kind == "int8":
            return codes.astype(np.float32) * self.scale
        signs = np.unpackbits(codes, axis=1, count=self.dim).astype(np.float32)
        return (signs * 2 - 1) / np.sqrt(self.dim)

    def scores(self, codes: np.ndarray, queries: np.ndarray) -> np.ndarray:
        """(rows, P) ranking scores of every row against every query; higher is closer."""
        q = np.asarray(queries, np.float32)
        out = np.empty((len(codes), len(q)), np.float32)
        if self.kind == "binary":
            self._hamming(codes, q, out)
            return out
        # numpy's einsum loop beat OpenBLAS for these skinny products (see ExactIndex's history) and runs on
        # one thread, so the tables of a multi-part query are searched side by side.
        weights = q * self.scale if self.kind == "int8" else q
        for start in range(0, len(codes), CHUNK_ROWS):
            block = codes[start:start + CHUNK_ROWS]
            if block.dtype != np.float32:
                block = block.astype(np.float32)
            out[start:start + len(block)] = np.einsum("nd,pd->np", block, weights)
        return out

    def _hamming(self, codes: np.ndarray, q: np.ndarray, out: np.ndarray) -> None:
        packed = np.packbits(q > 0, axis=1)
        words = codes.shape[1]
        wide = words % 8 == 0  # whole 64-bit words: an eighth of the popcount calls
        if wide:
            codes, packed = codes.view(np.uint64), packed.view(np.uint64)
        for start in range(0, len(codes), HAMMING_ROWS):
            block = codes[start:start + HAMMING_ROWS]
            for j, p in enumerate(packed):
                dist = np.bitwise_count(block ^ p).sum(axis=1, dtype=np.int32)
                out[start:start + len(block), j] = -dist
