"""One LanceDB table of one modality in one embedding space."""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import pyarrow as pa

from mmsearch.encoders.base import EmbeddingSpace
from mmsearch.errors import SpaceMismatch
from mmsearch.store.sql import in_clauses, quote

SPACE_KEY = b"mmsearch.space"
VERSION_TTL_S = 0.5
META_COLUMNS = [
    "path", "folder", "name", "hash", "size", "mtime_ns", "format", "width", "height",
    "duration_s", "offset_s", "sample_rate", "channels", "text", "tags",
    "indexed_at",  # filterable (--where indexed_at>=...), so the exact search's in-memory copy holds it too
]


# A video table holds one row per moment of a file: `path` is the moment's key (see store/video_table.py).
VIDEO_FIELDS = [
    pa.field("file", pa.string()),  # the video file the moment is part of
    pa.field("start_s", pa.float64()),  # the moment, in seconds from the start of the file
    pa.field("end_s", pa.float64()),
    pa.field("frame_s", pa.float64()),  # the frame that stands for the moment (its thumbnail)
    pa.field("fps", pa.float32()),
    pa.field("codec", pa.string()),
]


def table_schema(space: EmbeddingSpace, modality: str) -> pa.Schema:
    """One schema for every modality, so results of all tables fuse and filter alike.

    Columns a modality has no use for stay null (an image has no duration, a sound no width).
    """
    meta = {**space.metadata(), "modality": modality, "space_id": space.id}
    return pa.schema(
        [
            pa.field("path", pa.string(), nullable=False),
            pa.field("folder", pa.string()),
            pa.field("name", pa.string()),
            pa.field("hash", pa.string()),
            pa.field("size", pa.int64()),
            pa.field("mtime_ns", pa.int64()),
            pa.field("format", pa.string()),
            pa.field("width", pa.int32()),
            pa.field("height", pa.int32()),
            pa.field("duration_s", pa.float32()),
            pa.field("offset_s", pa.float32()),  # start of the best-matching window (audio)
            pa.field("sample_rate", pa.int32()),
            pa.field("channels", pa.int32()),
            pa.field("text", pa.string()),  # words for keyword search: file and folder names, later captions
            pa.field("tags", pa.list_(pa.string())),
            pa.field("indexed_at", pa.timestamp("us", tz="UTC")),
            *(VIDEO_FIELDS if modality == "video" else []),
            pa.field("vector", pa.list_(pa.float32(), space.dim)),
        ],
        metadata={SPACE_KEY: json.dumps(meta).encode()},
    )


def table_name(modality: str, space: EmbeddingSpace) -> str:
    return f"{modality}__{space.id}"


def space_of(schema: pa.Schema) -> tuple[str, EmbeddingSpace] | None:
    raw = (schema.metadata or {}).get(SPACE_KEY)
    if raw is None:
        return None
    meta = json.loads(raw)
    return meta["modality"], EmbeddingSpace.from_metadata(meta)


@dataclass(frozen=True)
class AnnConfig:
    """How the ANN index is built and searched. The default was chosen by measurement (bench/ann_bench.py,
    bench/results/ann.md): build time, p95 and recall@10 at 200k and 1M rows on the 2-core machine."""

    # IVF over 8-bit scalar-quantised vectors: at 200k rows it built in 17.6 s (HNSW_SQ 24.5 s, PQ 205 s) and
    # answered at p50 17 ms / p95 26 ms with recall@10 1.0 (PQ 0.72, RQ 0.88 at the same nprobes/refine).
    index_type: str = "IVF_SQ"
    rows_per_partition: int = 1024  # num_partitions = rows / this (at least 1)
    num_sub_vectors: int | None = None  # PQ: sub-vectors per vector (None: LanceDB's choice)
    sample_rate: int = 256  # k-means training rows per partition
    max_iterations: int = 50
    m: int = 20  # HNSW graph degree
    ef_construction: int = 300
    nprobes: int = 20  # partitions a query visits
    refine_factor: int = 10  # candidates rescored with the full vectors, as a multiple of k
    # Above this many rows the partitions grow with the square root of the rows, and the k-means training
    # sample stays at what this size trains on: at 10M, 1024 rows a partition would train ~9,800 centres on
    # 2.5M rows (~100x the 1M build's k-means work); this way 3,088 centres on 250k rows (bench/ann_10m.py).
    linear_up_to: int = 1_000_000

    def partitions(self, rows: int) -> int:
        if rows <= self.linear_up_to:
            return max(1, round(rows / self.rows_per_partition))
        return max(1, round(self.linear_up_to / self.rows_per_partition * math.sqrt(rows / self.linear_up_to)))

    def training_rate(self, rows: int) -> int:
        """k-means training rows per partition: `sample_rate`, less above `linear_up_to` rows so the sample
        stays at the size the linear range trains on."""
        cap = self.partitions(self.linear_up_to) * self.sample_rate
        return max(16, min(self.sample_rate, cap // self.partitions(rows)))

    def index(self, rows: int, accelerator: str | None = None) -> Any:
        """The LanceDB index config for a table of `rows` rows (cosine, on the GPU when one is given)."""
        from lancedb import index as ix

        common = dict(distance_type="cosine", num_partitions=self.partitions(rows), sample_rate=self.training_rate(rows),
                      max_iterations=self.max_iterations)
        if accelerator:
            common["accelerator"] = accelerator
        pq = dict(num_sub_vectors=self.num_sub_vectors)
        hnsw = dict(m=self.m, ef_construction=self.ef_construction)
        kinds = {"IVF_PQ": (ix.IvfPq, pq), "IVF_SQ": (ix.IvfSq, {}), "IVF_RQ": (ix.IvfRq, {}),
                 "IVF_FLAT": (ix.IvfFlat, {}), "IVF_HNSW_SQ": (ix.HnswSq, hnsw),
                 "IVF_HNSW_PQ": (ix.HnswPq, {**pq, **hnsw})}
        cls, extra = kinds[self.index_type]
        return cls(**common, **extra)


DEFAULT_ANN = AnnConfig()


def ann_accelerator() -> str | None:
    """'cuda' when torch is installed and sees a GPU: LanceDB then trains the index there."""
    try:
        import torch
    except ImportError:
        return None
    return "cuda" if torch.cuda.is_available() else None


@dataclass(frozen=True, slots=True)
class ExistingRow:
    size: int
    mtime_ns: int


class SpaceTable:
    """Rows of one modality and one space. Never accepts vectors of another space."""

    # The columns searches return; a subclass with more columns (a product catalog) widens it.
    meta_columns: list[str] = META_COLUMNS

    def __init__(self, table: Any, modality: str, space: EmbeddingSpace) -> None:
        found = space_of(table.schema)
        if found != (modality, space):
            have = found[1].describe() if found else "no recorded model"
            raise SpaceMismatch(
                f"table {table.name} was built by {have}, not {space.describe()}; "
                f"refusing to mix embedding spaces"
            )
        self.table = table
        self.modality = modality
        self.space = space
        self._by_version: dict[str, tuple[int, Any]] = {}
        self._version_read: tuple[float, int] | None = None
        self._identity_read: tuple[float, tuple[int, str | None]] | None = None
        self._layout: tuple[str, bool] | None = None
        self._writes = 0  # our own commits so far: a read that began before one is not cached after it

    def product_of(self, row: dict) -> dict | None:
        """What a result row is beyond a file: a catalog table says which product; a file table, nothing."""
        return None

    @property
    def name(self) -> str:
        return self.table.name

    @property
    def version(self) -> int:
        """The table's version, read at most every VERSION_TTL_S: each read is a round trip to LanceDB's
        event loop, and a query asks several times. Our own writes reset it at once; another process's
        commits show within the library's 1 s consistency interval anyway."""
        now, writes = time.monotonic(), self._writes
        read = self._version_read
        if read is None or now - read[0] > VERSION_TTL_S:
            read = (now, self.table.version)
            if writes == self._writes:  # a search thread must not cache the version from before our commit
                self._version_read = read
        return read[1]

    @property
    def identity(self) -> tuple[int, str | None]:
        """(version, digest of that version's manifest), read at most every VERSION_TTL_S.

        The version number alone does not name the rows: a table dropped and created again under the
        same name (a catalog rebuilt with new columns) counts its versions from 1 again, so a cache keyed
        by name and version would serve the old table's vectors. The manifest lists the version's data
        files, whose names are new on every write, so its digest differs whenever the rows may. None
        where the table's files are not on a local disk (then only the version is known)."""
        now, writes = time.monotonic(), self._writes
        read = self._identity_read
        if read is None or now - read[0] > VERSION_TTL_S:
            version = self.table.version
            read = (now, (version, self._manifest_digest(version)))
            if writes == self._writes:  # as in version: never cache a read that a commit overtook
                self._version_read = (now, version)
                self._identity_read = read
        return read[1]

    def manifest_digest(self, version: int) -> str | None:
        """Digest of one version's manifest (None when unknown): a resident index checks that the version it
        holds is still this table's before it applies a newer version as a diff."""
        return self._manifest_digest(version)

    def _manifest_digest(self, version: int) -> str | None:
        try:
            if self._layout is None:  # fixed for a handle's life: ask once
                self._layout = (str(self.table.uri), bool(self.table.uses_v2_manifest_paths()))
            uri, v2 = self._layout
        except Exception:  # noqa: BLE001 - a remote or future table kind: fall back to the version
            return None
        if "://" in uri and not uri.startswith("file://"):
            return None
        name = f"{2**64 - 1 - version}.manifest" if v2 else f"{version}.manifest"  # Lance's two layouts
        try:
            data = (Path(uri.removeprefix("file://")) / "_versions" / name).read_bytes()
        except OSError:
            return None
        return hashlib.blake2b(data, digest_size=16).hexdigest()

    def _wrote(self) -> None:
        self._writes += 1
        self._version_read = None
        self._identity_read = None

    def _per_version(self, key: str, compute: Any) -> Any:
        """Facts that only change with a new version (a commit or an index build) are read once per version."""
        version = self.version
        hit = self._by_version.get(key)
        if hit is None or hit[0] != version:
            hit = (version, compute())
            self._by_version[key] = hit
        return hit[1]

    @property
    def schema(self) -> pa.Schema:
        return self._per_version("schema", lambda: self.table.schema)

    def count(self) -> int:
        return self._per_version("count", self.table.count_rows)

    def _indexed_columns(self) -> set[str]:
        return self._per_version("indices", lambda: {c for ix in self.table.list_indices()
                                                     for c in (getattr(ix, "columns", None) or [])})

    def _scan(self, columns: list[str], where: str | None = None) -> Iterator[pa.RecordBatch]:
        query = self.table.search().select(columns)
        if where:
            query = query.where(where)
        yield from query.limit(None).to_batches()

    def existing_under(self, root: str) -> dict[str, ExistingRow]:
        """path -> (size, mtime) of every row under root, in one columnar scan: what a re-run compares its
        stat walk with. No hashes: an unchanged file is never read, and a changed one is hashed anyway."""
        prefix = root.rstrip("/") + "/"
        where = f"starts_with(path, {quote(prefix)}) OR path = {quote(root)}"
        rows: dict[str, ExistingRow] = {}
        for batch in self._scan(["path", "size", "mtime_ns"], where):
            paths, sizes, mtimes = (batch.column(c).to_pylist() for c in ("path", "size", "mtime_ns"))
            rows.update(zip(paths, map(ExistingRow, sizes, mtimes)))
        return rows

    def known_hashes(self) -> set[str]:
        return {h for b in self._scan(["hash"]) for h in b.column(0).to_pylist()}

    def vectors_for_hashes(self, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        return {h: row["vector"] for h, row in self.rows_for_hashes(hashes, ["vector"]).items()}

    def rows_for_hashes(self, hashes: Iterable[str], columns: Iterable[str]) -> dict[str, dict]:
        """Columns of one row per content hash: what an identical file (a copy, a rename) can reuse."""
        cols = [c for c in columns if c != "hash"]
        found: dict[str, dict] = {}
        for where in in_clauses("hash", hashes):
            for batch in self._scan(["hash", *cols], where):
                vecs = _vectors(batch.column("vector")) if "vector" in cols else None
                meta = batch.drop_columns(["vector"]) if vecs is not None else batch
                for n, row in enumerate(meta.to_pylist()):
                    if vecs is not None:
                        row["vector"] = vecs[n]
                    found[row.pop("hash")] = row
        return found

    def rows_for_paths(self, paths: Iterable[str], with_vector: bool = False) -> dict[str, dict]:
        cols = self.meta_columns + (["vector"] if with_vector else [])
        out: dict[str, dict] = {}
        for where in in_clauses("path", paths):
            for batch in self._scan(cols, where):
                for row in batch.to_pylist():
                    out[row["path"]] = row
        return out

    def like_row(self, value: str) -> dict | None:
        """The row a "more like this" part names (a path here; a video table also takes FILE@SECONDS)."""
        return self.rows_for_paths([value], with_vector=True).get(value)

    def upsert(self, rows: pa.Table) -> None:
        if rows.num_rows == 0:
            return
        (
            self.table.merge_insert("path")
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .execute(rows.cast(self.table.schema))
        )
        self._wrote()

    def upsert_rows(self, rows: list[dict]) -> None:
        """Rows as dicts with a numpy `vector`; missing columns are stored as null."""
        if rows:
            self.upsert(rows_to_arrow(rows, self.table.schema, self.space.dim))

    def delete_paths(self, paths: Iterable[str]) -> int:
        return self._delete_in("path", paths)

    def _delete_in(self, column: str, values: Iterable[str]) -> int:
        """Delete the rows whose column is one of values (in batches); how many values were given."""
        n = 0
        for where in in_clauses(column, values):
            n += where.count("', '") + 1
            self.table.delete(where)
            self._wrote()
        return n

    def delete_exact(self, rows: dict[str, ExistingRow]) -> None:
        """Delete the rows with exactly these (path, size, mtime): the older copy of a file a writer appended anew."""
        items = list(rows.items())
        for i in range(0, len(items), 200):
            where = " OR ".join(f"(path = {quote(p)} AND size = {r.size} AND mtime_ns = {r.mtime_ns})"
                                for p, r in items[i:i + 200])
            self.table.delete(where)
            self._wrote()

    def superseded_under(self, root: str) -> dict[str, ExistingRow]:
        """Paths under root held by two rows (an append landed, the old row's delete did not): the older ones."""
        newest: dict[str, tuple[Any, ExistingRow]] = {}
        older: dict[str, ExistingRow] = {}
        prefix = root.rstrip("/") + "/"
        where = f"starts_with(path, {quote(prefix)}) OR path = {quote(root)}"
        for batch in self._scan(["path", "size", "mtime_ns", "indexed_at"], where):
            for r in batch.to_pylist():
                row = ExistingRow(r["size"], r["mtime_ns"])
                seen = newest.get(r["path"])
                if seen is None:
                    newest[r["path"]] = (r["indexed_at"], row)
                elif seen[0] < r["indexed_at"]:
                    older[r["path"]], newest[r["path"]] = seen[1], (r["indexed_at"], row)
                else:
                    older[r["path"]] = row
        return older

    def refresh(self) -> None:
        """Another writer (lance-ray's fragments, another process) committed: read the latest version now."""
        self.table.checkout_latest()
        self._wrote()

    def iter_vectors(self, batch_rows: int = 65536) -> Iterator[tuple[pa.RecordBatch, np.ndarray]]:
        for batch in self._scan(self.meta_columns + ["vector"]):
            yield batch, _vectors(batch.column(batch.schema.get_field_index("vector")))

    def has_ann_index(self) -> bool:
        return "vector" in self._indexed_columns()

    def build_ann_index(self, config: AnnConfig | None = None) -> None:
        """Build (or replace) the vector index; appends later join it through optimize(), not a rebuild."""
        config = config or DEFAULT_ANN
        self.table.create_index("vector", config=config.index(self.count(), ann_accelerator()), replace=True)
        self._wrote()

    def optimize(self) -> None:
        self.table.optimize()
        self._wrote()

    def maintain(self, ann_threshold: int) -> list[str]:
        """Bring the indexes up to date: keyword index always, ANN index above the threshold."""
        done = []
        if self.count() == 0:
            return done
        if not self.has_keyword_index():
            self.build_keyword_index()
            done.append("keyword index built")
        if self.count() >= ann_threshold and not self.has_ann_index():
            self.build_ann_index()
            done.append("ANN index built")
        elif self.has_ann_index() or done == []:
            # Folds new rows into the existing indexes (the ANN index included: no rebuild), even when the
            # keyword index was just built: before, that case left every appended row out of the ANN index.
            self.optimize()
            done.append("indexes refreshed")
        return done

    def ann_search(self, query: np.ndarray, k: int, where: str | None = None,
                   refine: int | None = DEFAULT_ANN.refine_factor, nprobes: int = DEFAULT_ANN.nprobes,
                   exact: bool = False) -> pa.Table:
        """refine=None keeps the index's quantised distances (cheap); a factor rescores that many
        times k candidates with full vectors inside LanceDB."""
        q = self.table.search(query.astype(np.float32), vector_column_name="vector").distance_type("cosine")
        if exact:
            q = q.bypass_vector_index()
        else:
            q = q.nprobes(nprobes)
            q = q.refine_factor(refine) if refine else q
        if where:
            q = q.where(where, prefilter=True)  # post-filtering returned 1 of 10 rows in a test here
        return q.select([*self.meta_columns, "_distance"]).limit(k).to_arrow()  # named: lance warns otherwise

    def keyword_search(self, text: str, k: int, where: str | None = None) -> pa.Table:
        """BM25 over the `text` column (file and folder names, captions): exact terms and SKUs."""
        q = self.table.search(text, query_type="fts", fts_columns="text")
        if where:
            q = q.where(where, prefilter=True)
        return q.select([*self.meta_columns, "_score"]).limit(k).to_arrow()

    def has_keyword_index(self) -> bool:
        return "text" in self._indexed_columns()

    def build_keyword_index(self) -> None:
        from lancedb.index import FTS

        # No stemming or stop words: names, numbers and SKUs must match as typed.
        self.table.create_index("text", config=FTS(stem=False, remove_stop_words=False), replace=True)
        self._wrote()


def _vectors(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    dim = column.type.list_size
    return column.values.to_numpy(zero_copy_only=False).reshape(-1, dim).astype(np.float32, copy=False)


def rows_to_arrow(rows: list[dict], schema: pa.Schema, dim: int) -> pa.Table:
    cols = {f.name: [r.get(f.name) for r in rows] for f in schema if f.name != "vector"}
    flat = pa.array(np.stack([np.asarray(r["vector"], np.float32) for r in rows]).reshape(-1), pa.float32())
    cols["vector"] = pa.FixedSizeListArray.from_arrays(flat, dim)
    return pa.table(cols, schema=schema)
