"""How the resident copy of a table's vectors is stored: float32, float16, int8 or binary.

The resident copy only ranks a shortlist; the full-precision vectors stay in LanceDB and rescore it
(the binary-first, rerank-with-full-precision pipeline), so a lossy codec costs recall only where the
true top k falls outside its shortlist. bench/results/storage.md measured the trade: int8 with a
100-row shortlist kept recall@10 1.000. binary codes are sign bits around k-means centres (search/binary.py);
they need a 2,000-row shortlist at 1M clustered rows for 0.98 (0.996). Each codec's `rerank` is its default
shortlist per result asked. A Matryoshka length (`int8@256`) cuts the resident copy to its leading
dimensions for models trained for it (encoders/matryoshka.py); the rescoring still uses every dimension.

Every score is "higher is closer" and is used for ranking only; the scores a search returns are exact
cosines from the full-precision rescoring (float32 is exact already and skips it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from mmsearch.encoders.matryoshka import truncations
from mmsearch.errors import MMSearchError
from mmsearch.search import binary

if TYPE_CHECKING:
    from mmsearch.encoders.base import EmbeddingSpace

Kind = Literal["float32", "float16", "int8", "binary"]
KINDS: tuple[str, ...] = ("float32", "float16", "int8", "binary")
SETTINGS: tuple[str, ...] = ("auto", *KINDS)
# Rows converted to float32 at a time: a 2048 x 512 block (4 MB) stays in cache, which made int8 as fast as a
# float32 scan here (37 ms per 200k rows against 172 ms with 32k-row blocks); never the whole matrix.
CHUNK_ROWS = 2048
BINARY_GROWS_ABOVE = 1_000_000  # rows: binary's shortlist grows with the table above this (Codec.rerank_for)

# auto: the largest codec whose resident copy stays under these sizes (float32 up to ~250k rows at 512-d,
# int8 up to ~2M, binary above: 64 bytes a row, ~0.7 GB at 10M rows with ids and path hashes).
AUTO_FLOAT32_BYTES = 512 * 2**20
AUTO_INT8_BYTES = 1024 * 2**20


class BadVectorSetting(MMSearchError):
    """A --vectors / MMSEARCH_VECTORS value that is not one of the codecs."""


def parse_setting(value: str) -> tuple[str, int | None]:
    """"int8" -> ("int8", None); "int8@256" -> ("int8", 256): the codec (or auto) and the Matryoshka length the
    resident copy keeps (None: every dimension)."""
    kind, at, dims = str(value).partition("@")
    if kind not in SETTINGS or (at and not (dims.isdigit() and int(dims) > 0)):
        raise BadVectorSetting(f"vectors={value!r}: use one of {', '.join(SETTINGS)}, optionally with @DIMS "
                               f"(e.g. int8@256) for a model trained for Matryoshka truncation")
    return kind, int(dims) if dims else None


def check_setting(value: str) -> str:
    parse_setting(value)
    return value


def with_dims(setting: str, dims: int | None) -> str:
    """setting with its Matryoshka length replaced (dims None keeps the one it has)."""
    kind, had = parse_setting(setting)
    dims = had if dims is None else dims
    return check_setting(f"{kind}@{dims}" if dims else kind)


def table_dims(space: "EmbeddingSpace", dims: int | None) -> int | None:
    """The length a table of space keeps for a setting's dims: None when it keeps every dimension."""
    if dims is None or dims >= space.dim:
        return None
    return dims if dims in truncations(space) else None


def check_dims(table_name: str, space: "EmbeddingSpace", dims: int | None) -> None:
    """Refuses a truncation the table's model was not trained for (its vectors would lose what matters)."""
    if dims is None or dims >= space.dim:
        return
    allowed = truncations(space)
    if not allowed:
        raise BadVectorSetting(
            f"table {table_name} holds {space.describe()} vectors, and that model was not trained for Matryoshka "
            f"truncation: cutting them to {dims} dimensions would discard what the other dimensions carry. Leave out --dims "
            f"(or use a compressed codec, e.g. --vectors int8)")
    if dims not in allowed:
        shown = ", ".join(map(str, allowed)) if len(allowed) <= 8 else f"1-{allowed[-1]}"
        raise BadVectorSetting(f"table {table_name}: --dims {dims} is not a length {space.describe()} was trained "
                               f"for; use one of {shown}")


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
    dim: int  # the stored vectors' length
    scale: np.ndarray | None = None  # int8: one step size per dimension, fitted on the table's own vectors
    centroids: np.ndarray | None = None  # binary: (K, kept dims) k-means centres the sign bits are taken around
    keep: int | None = None  # Matryoshka: the leading dimensions kept (renormalised); None keeps all

    @property
    def exact(self) -> bool:
        return self.kind == "float32" and self.keep is None

    @property
    def kept_dim(self) -> int:
        return self.keep or self.dim

    @property
    def rerank(self) -> int:
        """Default shortlist per result asked (the full-precision rescoring reads that many rows). binary's 200
        was measured at 1M clustered rows: recall@10 0.996 with 2,000 rows, 0.968 with 1,000, 0.83 with 400
        (bench/results/vectors_binary.md)."""
        return {"float32": 1 if self.keep is None else 10, "float16": 4, "int8": 10, "binary": 200}[self.kind]

    def rerank_for(self, rows: int) -> int:
        """The default shortlist per result for a search over `rows` rows. Sign bits crowd more rows into the
        shortlist as a table grows. binary needed 400 rows at 200k for recall@10 0.98 and 2,000 at 1M (0.996).
        At 10M, 2,000 rows gave 0.85 and 10,000 gave 0.98 (bench/results/vectors_10m.md). So above 1M rows its
        factor grows as (rows / 1M) ** 0.7: x5 at 10M. The other codecs keep theirs (int8: 1.0 at 10M)."""
        if self.kind != "binary" or rows <= BINARY_GROWS_ABOVE:
            return self.rerank
        return int(round(self.rerank * (rows / BINARY_GROWS_ABOVE) ** 0.7))

    @property
    def bytes_per_vector(self) -> int:
        d = self.kept_dim
        return {"float32": 4 * d, "float16": 2 * d, "int8": d, "binary": binary.width(d)}[self.kind]

    @classmethod
    def fit(cls, kind: str, sample: np.ndarray, keep: int | None = None) -> "Codec":
        """A codec for kind; int8 takes its per-dimension scale and binary its centres from sample (rows of the
        table); keep: the Matryoshka length (search/codecs.table_dims decides whether a table may be cut)."""
        if kind not in KINDS:
            raise BadVectorSetting(f"vectors={kind!r}: use one of {', '.join(KINDS)}")
        dim = sample.shape[1]
        keep = keep if keep is not None and keep < dim else None
        x = _cut(np.asarray(sample, np.float32), keep)
        if kind == "binary":
            return cls(kind, dim, centroids=binary.fit_centroids(x), keep=keep)
        if kind != "int8":
            return cls(kind, dim, keep=keep)
        # Symmetric per-dimension steps: 127 steps to the largest magnitude seen. Later rows beyond it clip,
        # which costs ranking precision only; the rescoring uses the stored float32 vectors.
        top = np.abs(x).max(axis=0) if len(x) else np.ones(x.shape[1], np.float32)
        return cls(kind, dim, (np.maximum(top, 1e-12) / 127.0).astype(np.float32), keep=keep)

    def encode(self, vectors: np.ndarray) -> np.ndarray:
        x = _cut(np.asarray(vectors, np.float32), self.keep)
        if self.kind == "float32":
            return np.ascontiguousarray(x)
        if self.kind == "float16":
            return x.astype(np.float16)
        if self.kind == "int8":
            return np.clip(np.rint(x / self.scale), -127, 127).astype(np.int8)
        return binary.encode(x, self.centroids)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Approximate float32 vectors (float32 and float16 give the stored values back)."""
        if self.kind in ("float32", "float16"):
            return codes.astype(np.float32)
        if self.kind == "int8":
            return codes.astype(np.float32) * self.scale
        return binary.decode(codes, self.centroids)

    def scores(self, codes: np.ndarray, queries: np.ndarray) -> np.ndarray:
        """(rows, P) ranking scores of every row against every query; higher is closer."""
        q = _cut(np.asarray(queries, np.float32), self.keep)
        out = np.empty((len(codes), len(q)), np.float32)
        if self.kind == "binary":
            binary.scores(codes, q, self.centroids, out)
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


def _cut(x: np.ndarray, keep: int | None) -> np.ndarray:
    """The leading keep dimensions of each row, renormalised (how a Matryoshka model's short vectors are made)."""
    if keep is None or x.ndim != 2 or x.shape[1] <= keep:
        return x
    head = x[:, :keep]
    norm = np.linalg.norm(head, axis=1, keepdims=True)
    return head / np.where(norm > 0, norm, 1)
