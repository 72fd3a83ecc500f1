"""Product catalogs in the library: one LanceDB table per catalog and embedding space.

Why a table of its own rather than rows in the image table: a catalog brings its own columns (price,
category, brand ...) and each must be a real typed column for the filters (`price<50`, `category=shoes`)
to work as they do on files, in LanceDB's pre-filter and in the in-memory exact search alike. Adding
them to the shared image table would give every photo a null `price` and let one catalog's columns
clash with another's. A catalog table holds the shared schema, then `product_id`, `image_file`,
`row_hash`, then the catalog's own columns; its schema metadata records the spec (which column is the
id, the image, the title ...) and the space of its vectors, like every table here.

Rows are keyed by `<catalog file>#<product id>`, so two products may share a photo. Re-importing
compares each product's row digest and its image's size and mtime: unchanged products are left alone,
a product whose text changed keeps its image vector, a new image is embedded (or reused by content
hash), and products gone from the file leave the table. A changed set of columns rebuilds the table
from the stored vectors without embedding anything again.

With a text model configured (MMSEARCH_TEXT_MODEL), title + description also get a text vector in a
second table of the catalog, which the query engine fuses with the image table's list.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import pyarrow as pa

from mmsearch.encoders.base import EmbeddingSpace, Encoder
from mmsearch.errors import BadMedia
from mmsearch.ingest.pipelines import read_file
from mmsearch.media.images import decode_image
from mmsearch.query.parts import product_key
from mmsearch.store.library import Library
from mmsearch.store.table import META_COLUMNS, SpaceTable, space_of, table_schema
from mmsearch.workflows.catalog_file import (
    ARROW_TYPES, CatalogError, CatalogRows, CatalogSpec, read_catalog, row_digest,
)

if TYPE_CHECKING:
    from mmsearch.service import MMSearch

CATALOG_KEY = b"mmsearch.catalog"
MODALITY = "product"  # not "image": the library's own image searches pass catalogs by
VECTORS_KEY = b"mmsearch.catalog.vectors"  # what a catalog table's vectors embed: "image" or "text"
PRODUCT_COLUMNS = ["product_id", "image_file", "row_hash"]
PREFIX = "catalog__"
_SPLIT_TAGS = re.compile(r"\s*[,;|]\s*")


def table_name(catalog: str, vectors: str, space: EmbeddingSpace) -> str:
    kind = "text__" if vectors == "text" else ""
    return f"{PREFIX}{catalog}__{kind}{space.id}"


def catalog_schema(spec: CatalogSpec, space: EmbeddingSpace, vectors: str) -> pa.Schema:
    """One modality for both kinds of vectors: the engine rescores each candidate in every table of its
    modality, so a product found by its text vector is also scored by its image vector."""
    base = table_schema(space, MODALITY)
    fields = [f for f in base if f.name != "vector"]
    fields += [pa.field(c, pa.string()) for c in PRODUCT_COLUMNS]
    fields += [pa.field(c, ARROW_TYPES[kind]) for c, kind in spec.columns.items()]
    metadata = {**base.metadata, CATALOG_KEY: spec.to_json().encode(), VECTORS_KEY: vectors.encode()}
    return pa.schema(fields + [base.field("vector")], metadata=metadata)


def spec_of(schema: pa.Schema) -> CatalogSpec | None:
    raw = (schema.metadata or {}).get(CATALOG_KEY)
    return CatalogSpec.from_json(raw) if raw else None


class CatalogTable(SpaceTable):
    """A SpaceTable whose searches also return the catalog's columns, so filters and cards see them."""

    def __init__(self, handle: Any, space: EmbeddingSpace, spec: CatalogSpec) -> None:
        super().__init__(handle, MODALITY, space)
        self.spec = spec
        self.vectors = (handle.schema.metadata or {}).get(VECTORS_KEY, b"image").decode()
        self.meta_columns = META_COLUMNS + ["product_id", "image_file"] + list(spec.columns)

    def product_of(self, row: dict) -> dict | None:
        spec = self.spec
        fields = {c: _plain(row.get(c)) for c in spec.columns
                  if c not in (spec.id_column, spec.image_column, spec.title_column)}
        return {
            "catalog": spec.name,
            "product_id": row.get("product_id"),
            "title": str(row.get(spec.title_column) or "") if spec.title_column else "",
            "price": _plain(row.get(spec.price_column)) if spec.price_column else None,
            "image_file": row.get("image_file"),
            "fields": fields,
        }

    def products(self) -> dict[str, dict]:
        """product id -> what decides whether it changed."""
        cols = ["product_id", "path", "row_hash", "image_file", "size", "mtime_ns", "hash"]
        return {r["product_id"]: r for batch in self._scan(cols) for r in batch.to_pylist()}

    def all_rows(self) -> pa.Table:
        return self.table.search().select(self.meta_columns + ["row_hash"]).limit(None).to_arrow()


class Catalogs:
    """The catalogs of one library. Receives the library; builds no encoder."""

    def __init__(self, library: Library) -> None:
        self.library = library

    def _names(self) -> list[str]:
        return sorted(n for n in self.library.db.table_names(limit=10_000) if n.startswith(PREFIX))

    def _open(self, name: str) -> CatalogTable | None:
        handle = self.library.db.open_table(name)
        found, spec = space_of(handle.schema), spec_of(handle.schema)
        if found is None or spec is None or found[0] != MODALITY:
            return None
        return CatalogTable(handle, found[1], spec)

    def tables(self, catalog: str | None = None) -> list[CatalogTable]:
        out = [t for n in self._names() if (t := self._open(n)) is not None]
        return [t for t in out if catalog is None or t.spec.name == catalog]

    def names(self) -> list[str]:
        return sorted({t.spec.name for t in self.tables()})

    def spec(self, catalog: str) -> CatalogSpec:
        for t in self.tables(catalog):
            if t.vectors == "image":
                return t.spec
        have = ", ".join(self.names()) or "none yet"
        raise CatalogError(f"no catalog named {catalog!r} in this library (catalogs: {have}); "
                           f"index one with `mmsearch index products.csv --id-column sku`")

    def image_table(self, catalog: str) -> CatalogTable:
        self.spec(catalog)
        return next(t for t in self.tables(catalog) if t.vectors == "image")

    def table_for(self, spec: CatalogSpec, space: EmbeddingSpace, vectors: str) -> tuple[CatalogTable, bool]:
        """The catalog's table in this space, created when missing; (table, whether it must be rebuilt)."""
        name = table_name(spec.name, vectors, space)
        schema = catalog_schema(spec, space, vectors)
        if name in self.library.db.table_names(limit=10_000):
            handle = self.library.db.open_table(name)
            if _same(handle.schema, schema):
                return CatalogTable(handle, space, spec), False
            return CatalogTable(handle, space, spec_of(handle.schema) or spec), True
        handle = self.library.db.create_table(name, schema=schema, exist_ok=True)
        self.library.forget_names()  # the general search lists catalogs with the library's tables
        return CatalogTable(handle, space, spec), False

    def recreate(self, spec: CatalogSpec, space: EmbeddingSpace, vectors: str) -> CatalogTable:
        name = table_name(spec.name, vectors, space)
        self.library.db.drop_table(name, ignore_missing=True)
        handle = self.library.db.create_table(name, schema=catalog_schema(spec, space, vectors))
        self.library.forget_names()
        return CatalogTable(handle, space, spec)

    def drop(self, catalog: str) -> int:
        tables = self.tables(catalog)
        for t in tables:
            self.library.db.drop_table(t.name)
        self.library.forget_names()
        return len(tables)


def _same(a: pa.Schema, b: pa.Schema) -> bool:
    return a.remove_metadata().equals(b.remove_metadata()) and spec_of(a) == spec_of(b)


@dataclass
class CatalogReport:
    catalog: str
    products: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    embedded: int = 0
    reused: int = 0
    rebuilt: bool = False
    text_model: str | None = None  # the text model that embedded title + description, if any
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        text = (f"; title+description embedded by {self.text_model}" if self.text_model
                else "; no text model (MMSEARCH_TEXT_MODEL): title, description and SKU are keyword-searchable")
        rebuilt = " (columns changed: table rebuilt from stored vectors)" if self.rebuilt else ""
        return (f"catalog {self.catalog}: {self.products} products, {self.added} added, {self.updated} updated, "
                f"{self.unchanged} unchanged, {self.removed} removed, {len(self.skipped)} skipped; "
                f"{self.embedded} images embedded, {self.reused} reused in {self.seconds:.1f}s{rebuilt}{text}")


@dataclass
class _Item:
    record: dict
    pid: str
    image: str
    size: int
    mtime_ns: int
    digest: str
    old: dict | None
    hash: str | None = None
    columns: dict = field(default_factory=dict)  # width, height, format, vector
    payload: Any = None


class CatalogIndexer:
    """Imports a catalog file. Receives the library and the encoders; builds none of them."""

    def __init__(self, library: Library, image_encoder: Encoder, text_encoders: Sequence[Encoder] = (),
                 batch_size: int = 32, workers: int = 2, max_pixels: int = 178_956_970,
                 ann_threshold: int = 150_000) -> None:
        self.library = library
        self.catalogs = Catalogs(library)
        self.encoder = image_encoder
        self.text_encoders = list(text_encoders)
        self.batch_size = batch_size
        self.workers = workers
        self.max_pixels = max_pixels
        self.ann_threshold = ann_threshold

    @classmethod
    def for_service(cls, service: "MMSearch") -> "CatalogIndexer":
        s = service.settings
        return cls(service.library(create=True), service.encoder, text_encoders(service), s.batch_size, s.workers,
                   s.max_image_pixels, s.ann_threshold)

    def index(self, path: str | Path, id_column: str | None = None, name: str | None = None,
              image_column: str | None = None, title_column: str | None = None,
              description_column: str | None = None) -> CatalogReport:
        started = time.perf_counter()
        rows = read_catalog(path, id_column, name, image_column, title_column, description_column)
        self.encoder.load()
        report = CatalogReport(rows.spec.name, products=rows.table.num_rows)
        with self.library.writer_lock():
            table = self._import_images(rows, report)
            for enc in self.text_encoders:
                self._import_text(rows.spec, table, enc)
                report.text_model = enc.space.describe()
            table.maintain(self.ann_threshold)  # the keyword index over title, description, SKU
        report.seconds = time.perf_counter() - started
        return report

    # -- image vectors --------------------------------------------------------------------------
    def _import_images(self, rows: CatalogRows, report: CatalogReport) -> CatalogTable:
        spec = rows.spec
        table, rebuild = self.catalogs.table_for(spec, self.encoder.space, "image")
        existing = table.products()
        reusable: dict[str, dict] = {}
        if rebuild:
            reusable = _by_hash(table)  # read before the old table goes
            table = self.catalogs.recreate(spec, self.encoder.space, "image")
            report.rebuilt = True
        items, seen = self._plan(rows, existing, report, force=rebuild)
        self._resolve(items, table, reusable, report)
        now = datetime.now(timezone.utc)
        out = [self._row(i, spec, now) for i in items if i.columns.get("vector") is not None]
        for start in range(0, len(out), 1024):
            table.upsert_rows(out[start:start + 1024])
        gone = [r["path"] for pid, r in existing.items() if pid not in seen]
        if gone and not rebuild:
            table.delete_paths(gone)
        report.removed = len(gone)
        for i in items:
            if i.columns.get("vector") is not None:
                report.added += i.old is None
                report.updated += i.old is not None
        return table

    def _plan(self, rows: CatalogRows, existing: dict[str, dict], report: CatalogReport,
              force: bool) -> tuple[list[_Item], set[str]]:
        spec = rows.spec
        base = Path(spec.source).parent
        items, seen = [], set()
        for n, record in enumerate(rows.records(), start=2):  # line 1 is the header
            pid = str(record[spec.id_column]).strip()
            image = _image_path(record.get(spec.image_column), base)
            try:
                st = os.stat(image)
            except (OSError, TypeError, ValueError):
                why = _missing_reason(record.get(spec.image_column), image)
                report.skipped.append((f"{Path(spec.source).name} row {n} ({pid})", why))
                continue
            seen.add(pid)
            old = existing.get(pid)
            item = _Item(record, pid, image, st.st_size, st.st_mtime_ns, row_digest(record, spec), old)
            if not force and old is not None and old["row_hash"] == item.digest and \
                    (old["image_file"], old["size"], old["mtime_ns"]) == (image, st.st_size, st.st_mtime_ns):
                report.unchanged += 1
                continue
            items.append(item)
        return items, seen

    def _resolve(self, items: list[_Item], table: CatalogTable, reusable: dict[str, dict],
                 report: CatalogReport) -> None:
        """Fill each item's vector: from its own stored row, an identical image, or the model."""
        same_image = [i for i in items if i.old is not None and
                      (i.old["image_file"], i.old["size"], i.old["mtime_ns"]) == (i.image, i.size, i.mtime_ns)]
        for i in same_image:
            i.hash = i.old["hash"]
        with ThreadPoolExecutor(self.workers, thread_name_prefix="mmsearch-catalog") as pool:
            for i, digest in zip([i for i in items if i.hash is None],
                                 pool.map(_hash_image, [i.image for i in items if i.hash is None])):
                i.hash = digest
            wanted = {i.hash for i in items if i.hash and i.hash not in reusable}
            reusable.update(table.rows_for_hashes(wanted, ["vector", "width", "height", "format"]))
            fresh = [i for i in items if i.hash and i.hash not in reusable]
            for i in items:
                if i.hash in reusable:
                    i.columns = dict(reusable[i.hash])
                    report.reused += i.old is None or i.old["hash"] != i.hash
            self._embed(fresh, pool, report)

    def _embed(self, items: list[_Item], pool: ThreadPoolExecutor, report: CatalogReport) -> None:
        by_hash: dict[str, list[_Item]] = {}
        for i in items:
            by_hash.setdefault(i.hash or "", []).append(i)
        firsts = [group[0] for group in by_hash.values()]
        for start in range(0, len(firsts), self.batch_size):
            batch = firsts[start:start + self.batch_size]
            ok = []
            for item, prepared in zip(batch, pool.map(self._prepare, batch)):
                if isinstance(prepared, BadMedia):
                    report.skipped.append((item.image, prepared.reason))
                else:
                    ok.append(item)
            if not ok:
                continue
            vectors = self.encoder.encode_images([i.payload for i in ok])
            for item, vec in zip(ok, vectors):
                item.columns["vector"] = vec
                item.payload = None
                report.embedded += 1
                for twin in by_hash[item.hash or ""][1:]:
                    twin.columns = dict(item.columns)

    def _prepare(self, item: _Item) -> None | BadMedia:
        try:
            decoded = decode_image(read_file(item.image), item.image, self.max_pixels,
                                   self.encoder.image_draft_size())
        except BadMedia as bad:
            return bad
        item.columns = {"width": decoded.width, "height": decoded.height, "format": decoded.format}
        item.payload = self.encoder.preprocess_image(decoded.image)
        return None

    @staticmethod
    def _row(item: _Item, spec: CatalogSpec, now: datetime) -> dict:
        record = item.record
        title = str(record.get(spec.title_column) or "") if spec.title_column else ""
        words = " ".join(str(record[c]) for c in spec.keyword_columns() if record.get(c) is not None)
        tags = [t for t in _SPLIT_TAGS.split(str(record.get(spec.tags_column) or "").strip()) if t] \
            if spec.tags_column else []
        return {
            **{c: record.get(c) for c in spec.columns},
            "path": product_key(spec.source, item.pid),
            "folder": os.path.dirname(item.image),
            "name": title or os.path.basename(item.image),
            "hash": item.hash,
            "size": item.size,
            "mtime_ns": item.mtime_ns,
            "text": " ".join([words, *tags]).strip(),  # tags are keyword-searchable too, not only filters
            "tags": tags,
            "indexed_at": now,
            "product_id": item.pid,
            "image_file": item.image,
            "row_hash": item.digest,
            **item.columns,
        }

    # -- text vectors ---------------------------------------------------------------------------
    def _import_text(self, spec: CatalogSpec, images: CatalogTable, encoder: Encoder) -> None:
        """The image table's rows again, with a text vector of title + description (by text digest)."""
        table, rebuild = self.catalogs.table_for(spec, encoder.space, "text")
        if rebuild:
            table = self.catalogs.recreate(spec, encoder.space, "text")
        mine = table.products()
        rows = images.all_rows().to_pylist()
        todo = [r for r in rows if mine.get(r["product_id"], {}).get("row_hash") != r["row_hash"]
                or mine[r["product_id"]]["hash"] != _text_digest(r, spec)]
        if todo:
            encode = getattr(encoder, "encode_documents", encoder.encode_text)
            for start in range(0, len(todo), 256):
                chunk = todo[start:start + 256]
                vectors = encode([_description(r, spec) for r in chunk])
                for r, v in zip(chunk, vectors):
                    r.update(vector=v, hash=_text_digest(r, spec), row_hash=r["row_hash"])
                table.upsert_rows(chunk)
        keep = {r["product_id"] for r in rows}
        gone = [r["path"] for pid, r in mine.items() if pid not in keep]
        table.delete_paths(gone)


def text_encoders(service: "MMSearch") -> list[Encoder]:
    """The configured text models (MMSEARCH_TEXT_MODEL): they embed title + description."""
    return [e for e in service.extra_encoders if hasattr(e, "encode_documents") and not e.supports("image")]


def _description(row: dict, spec: CatalogSpec) -> str:
    parts = [row.get(c) for c in (spec.title_column, spec.description_column) if c]
    return ". ".join(str(p) for p in parts if p) or str(row.get("name") or row["product_id"])


def _text_digest(row: dict, spec: CatalogSpec) -> str:
    return "text:" + hashlib.blake2b(_description(row, spec).encode(), digest_size=16).hexdigest()


def _by_hash(table: CatalogTable) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for batch, vectors in table.iter_vectors():
        meta = batch.select(["hash", "width", "height", "format"]).to_pylist()
        for row, vec in zip(meta, vectors):
            out[row.pop("hash")] = {**row, "vector": vec}
    return out


def _hash_image(path: str) -> str | None:
    try:
        return hashlib.blake2b(read_file(path), digest_size=16).hexdigest()
    except BadMedia:
        return None


def _image_path(value: Any, base: Path) -> str | None:
    if value is None or not str(value).strip() or re.match(r"^[a-z][a-z0-9+.-]*://", str(value).strip(), re.I):
        return None
    p = Path(str(value).strip()).expanduser()
    return os.path.abspath(p if p.is_absolute() else base / p)


def _missing_reason(value: Any, image: str | None) -> str:
    if value is None or not str(value).strip():
        return "no image"
    if image is None:
        return f"image {value} is a URL; mmsearch reads local files only: download the images and give their paths"
    return f"image {image} not found"


def _plain(value: Any) -> Any:
    """A column value as JSON carries it (dates as ISO text, decimals as numbers)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "isoformat"):  # a date
        return value.isoformat()
    if value is not None and not isinstance(value, (str, int, float, bool, list)):
        try:
            return float(value)
        except (TypeError, ValueError):
            return str(value)
    return value
