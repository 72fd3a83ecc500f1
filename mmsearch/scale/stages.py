"""The Ray Data stages: decode tasks (read, hash, decode) and the model actors (preprocess, embed), each made of
the single-process indexer's own parts (ImagePipeline's read and hash, decode_image, the encoder loaded through
encoder_from_settings, file_row), so both produce the same rows."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mmsearch.errors import BadMedia
from mmsearch.ingest.pipelines import Prepared, read_file
from mmsearch.media.files import FileEntry
from mmsearch.media.images import decode_image

EMBEDDED, REUSE, SKIPPED = "embedded", "reuse", "skipped"
_DECODED = pa.schema([("path", pa.string()), ("size", pa.int64()), ("mtime_ns", pa.int64()), ("hash", pa.string()),
                      ("width", pa.int32()), ("height", pa.int32()), ("format", pa.string()),
                      ("_status", pa.string()), ("_error", pa.string()), ("_img_w", pa.int32()),
                      ("_img_h", pa.int32()), ("_pixels", pa.binary())])


def decode_batch(batch: pa.Table, known: frozenset[str], max_pixels: int, draft: int | None,
                 options: Mapping[str, str]) -> pa.Table:
    """Task: each file read, hashed and decoded; the pixels kept only when the hash is new (else its vector is
    reused), a bad file kept as a skip with its reason."""
    out: dict[str, list] = {f.name: [] for f in _DECODED}
    for row in batch.to_pylist():
        found = _decode_one(row, known, max_pixels, draft, options)
        for name in out:
            out[name].append(found.get(name))
    return pa.table(out, schema=_DECODED)


def _decode_one(row: dict, known: frozenset[str], max_pixels: int, draft: int | None,
                options: Mapping[str, str]) -> dict:
    try:
        data = read_file(row["path"], options)
        digest = hashlib.blake2b(data, digest_size=16).hexdigest()
        decoded = decode_image(data, row["path"], max_pixels, draft)
    except BadMedia as bad:
        return {**row, "_status": SKIPPED, "_error": bad.reason}
    found = {**row, "hash": digest, "width": decoded.width, "height": decoded.height, "format": decoded.format}
    if digest in known:
        return {**found, "_status": REUSE}
    image = decoded.image.convert("RGB")
    return {**found, "_status": EMBEDDED, "_img_w": image.width, "_img_h": image.height, "_pixels": image.tobytes()}


def prepared_of(row: dict) -> Prepared:
    entry = FileEntry(row["path"], row["size"], row["mtime_ns"])
    return Prepared(entry, row["hash"], {k: row[k] for k in ("width", "height", "format")})


class Embedder:
    """Actor: the encoder built and loaded once, through the same path the CLI uses. Every input row comes out,
    in the table's schema plus its status, so the driver can tell embedded rows from reused and skipped ones."""

    def __init__(self, settings: dict, schema: pa.Schema, batch_size: int) -> None:
        from mmsearch.service import encoder_from_settings
        from mmsearch.settings import Settings

        self.encoder = encoder_from_settings(Settings(**settings))
        self.encoder.load()
        self.schema = schema
        self.batch_size = batch_size

    def __call__(self, batch: pa.Table) -> pa.Table:
        from mmsearch.ingest.indexer import file_row
        from mmsearch.store.table import rows_to_arrow

        rows = batch.to_pylist()
        dim = self.encoder.space.dim
        vectors = iter(self._embed([r for r in rows if r["_status"] == EMBEDDED]))
        now = datetime.now(timezone.utc)
        out = [file_row(prepared_of(r), {"vector": next(vectors) if r["_status"] == EMBEDDED
                                         else np.zeros(dim, np.float32)}, now) for r in rows]
        table = rows_to_arrow(out, self.schema, dim)
        return table.append_column("_status", batch.column("_status")).append_column("_error", batch.column("_error"))

    def _embed(self, rows: list[dict]) -> list[np.ndarray]:
        from PIL import Image

        tensors = [self.encoder.preprocess_image(Image.frombytes("RGB", (r["_img_w"], r["_img_h"]), r["_pixels"]))
                   for r in rows]
        return [v for i in range(0, len(tensors), self.batch_size)
                for v in self.encoder.encode_images(tensors[i:i + self.batch_size])]


def embedded_only(batch: pa.Table) -> pa.Table:
    """The rows the Lance writer appends: freshly embedded, in the table's own schema."""
    return batch.filter(pc.equal(batch.column("_status"), EMBEDDED)).drop_columns(["_status", "_error"])


def not_embedded(batch: pa.Table) -> pa.Table:
    """What the driver finishes itself: files whose vector is reused from a copy, and skips."""
    return batch.filter(pc.not_equal(batch.column("_status"), EMBEDDED)).select(
        ["path", "size", "mtime_ns", "hash", "width", "height", "format", "_status", "_error"])
