"""Reading a product catalog (CSV, TSV, JSON lines, Parquet) into typed, filterable columns.

Column names become SQL-safe identifiers (`Unit Price` -> `unit_price`) so `--where unit_price<20` works;
a name the library already uses for files (`name`, `size`, `path`, `date` ...) gets a `product_` prefix.
Types come from the file (Parquet) or are inferred (CSV, JSON lines); prices written as text ("$1,299.00")
become numbers, so a price range filter works on the catalog as exported by a shop.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.compute as pc

from mmsearch.errors import MMSearchError
from mmsearch.store.table import META_COLUMNS

CATALOG_SUFFIXES = frozenset({".csv", ".tsv", ".jsonl", ".ndjson", ".parquet"})
# Columns a catalog row may not take under its own name: the file columns, and words filters reserve.
RESERVED = frozenset(META_COLUMNS) | {"vector", "date", "indexed_at", "product_id", "image_file", "row_hash",
                                     "_distance", "_score", "_rowid"}
ROLE_GUESSES = {
    "id": ("id", "product_id", "sku", "item_id", "handle"),
    "image": ("image", "image_path", "image_file", "img", "photo", "picture", "file", "path"),
    "title": ("title", "name", "product_name", "product_title"),
    "description": ("description", "desc", "body", "details", "body_html"),
    "sku": ("sku", "mpn", "gtin", "ean", "upc"),
    "tags": ("tags", "keywords", "labels"),
    "price": ("price", "sale_price", "unit_price", "amount", "cost"),
}
_MONEY = re.compile(r"^\s*[-+]?[$€£¥]?\s*[-+]?(\d{1,3}(,\d{3})+|\d+)?(\.\d+)?\s*[$€£¥]?\s*$")
Kind = str  # "integer" | "number" | "text" | "date"


class CatalogError(MMSearchError):
    pass


def is_catalog_file(path: str | Path) -> bool:
    p = Path(path)
    return p.suffix.lower() in CATALOG_SUFFIXES and p.is_file()


def column_name(raw: str) -> str:
    name = re.sub(r"\W+", "_", str(raw).strip().lower()).strip("_") or "column"
    if name[0].isdigit():
        name = "c_" + name
    return "product_" + name if name in RESERVED else name


@dataclass
class CatalogSpec:
    """How a catalog's columns map onto library items; kept in its table's schema metadata."""

    name: str
    source: str  # absolute path of the catalog file
    id_column: str  # stored (renamed) names from here on
    image_column: str
    title_column: str | None
    description_column: str | None
    sku_column: str | None
    tags_column: str | None
    price_column: str | None = None
    columns: dict[str, Kind] = field(default_factory=dict)  # every stored catalog column and its kind
    renamed: dict[str, str] = field(default_factory=dict)  # original -> stored, where they differ

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str | bytes) -> "CatalogSpec":
        return cls(**json.loads(raw))

    def keyword_columns(self) -> list[str]:
        """The full-text index covers the title, the description and the SKU."""
        return [c for c in (self.title_column, self.description_column, self.sku_column) if c]


@dataclass
class CatalogRows:
    spec: CatalogSpec
    table: pa.Table  # typed, stored column names

    def records(self) -> Iterator[dict[str, Any]]:
        yield from self.table.to_pylist()


def catalog_name(path: str | Path) -> str:
    return re.sub(r"[^a-z0-9]+", "_", Path(path).stem.lower()).strip("_") or "catalog"


def read_catalog(path: str | Path, id_column: str | None = None, name: str | None = None,
                 image_column: str | None = None, title_column: str | None = None,
                 description_column: str | None = None) -> CatalogRows:
    """The file as a typed table plus the roles of its columns; every mistake names the fix."""
    src = Path(path).expanduser().resolve()
    raw = _read(src)
    if raw.num_rows == 0:
        raise CatalogError(f"catalog {src} has no rows")
    renamed: dict[str, str] = {}
    columns: dict[str, pa.Array] = {}
    for original in raw.column_names:
        stored = column_name(original)
        while stored in columns:
            stored += "_"
        if stored != original:
            renamed[original] = stored
        columns[stored] = _typed(raw.column(original))
    table = pa.table(columns)
    role = _Roles(raw.column_names, renamed)
    spec = CatalogSpec(
        name=re.sub(r"[^a-z0-9]+", "_", (name or catalog_name(src)).lower()).strip("_") or "catalog",
        source=str(src),
        id_column=role.pick("id", id_column, "--id-column", required=True),
        image_column=role.pick("image", image_column, "--image-column", required=True),
        title_column=role.pick("title", title_column, "--title-column"),
        description_column=role.pick("description", description_column, "--description-column"),
        sku_column=role.pick("sku", None, ""),
        tags_column=role.pick("tags", None, ""),
        price_column=role.pick("price", None, ""),
        columns={c: _kind(table.schema.field(c).type) for c in table.column_names},
        renamed=renamed,
    )
    _check_ids(table, spec, src)
    return CatalogRows(spec, table)


class _Roles:
    def __init__(self, originals: list[str], renamed: dict[str, str]) -> None:
        self.stored = {o: renamed.get(o, o) for o in originals}
        self.by_lower = {o.strip().lower(): o for o in originals}

    def pick(self, role: str, given: str | None, flag: str, required: bool = False) -> str | None:
        if given:
            original = self.by_lower.get(given.strip().lower())
            if original is None:
                stored = {v: k for k, v in self.stored.items()}.get(given)
                if stored is None:
                    raise CatalogError(f"{flag} {given!r} is not a column of the catalog; columns: "
                                       f"{', '.join(self.stored)}")
                original = stored
            return self.stored[original]
        for guess in ROLE_GUESSES[role]:
            if guess in self.by_lower:
                return self.stored[self.by_lower[guess]]
        if required:
            raise CatalogError(f"cannot tell which column holds the product {role}: name it with {flag} "
                               f"(columns: {', '.join(self.stored)})")
        return None


def _read(src: Path) -> pa.Table:
    if not src.is_file():
        raise CatalogError(f"catalog file {src} does not exist")
    suffix = src.suffix.lower()
    try:
        if suffix in (".csv", ".tsv"):
            from pyarrow import csv

            return csv.read_csv(src, parse_options=csv.ParseOptions(delimiter="\t" if suffix == ".tsv" else ","),
                                convert_options=csv.ConvertOptions(strings_can_be_null=True))
        if suffix in (".jsonl", ".ndjson"):
            from pyarrow import json as pajson

            return pajson.read_json(src)
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.read_table(src)
    except (pa.ArrowInvalid, OSError) as exc:
        raise CatalogError(f"cannot read catalog {src}: {exc}") from None
    raise CatalogError(f"{src.name}: a catalog is a .csv, .tsv, .jsonl or .parquet file")


def _typed(column: pa.ChunkedArray) -> pa.Array:
    """One of four kinds, each of which the filters know: int64, float64, UTC timestamp, string."""
    arr = column.combine_chunks()
    t = arr.type
    if pa.types.is_integer(t):
        return pc.cast(arr, pa.int64())
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return pc.cast(arr, pa.float64())
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        values = [_utc(v) for v in arr.to_pylist()]
        return pa.array(values, pa.timestamp("us", tz="UTC"))
    if pa.types.is_boolean(t):
        return pa.array([None if v is None else ("true" if v else "false") for v in arr.to_pylist()], pa.string())
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        money = _as_money(arr.to_pylist())
        return money if money is not None else pc.cast(arr, pa.string())
    if pa.types.is_null(t):
        return pa.array([None] * len(arr), pa.string())
    # lists and structs: kept as JSON text, searchable with COLUMN~VALUE
    return pa.array([None if v is None else json.dumps(v, default=str) for v in arr.to_pylist()], pa.string())


def _utc(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    return None


def _as_money(values: list[Any]) -> pa.Array | None:
    present = [v for v in values if v is not None and str(v).strip()]
    if not present or not all(_MONEY.match(str(v)) and re.search(r"\d", str(v)) for v in present):
        return None
    if not any(re.search(r"[$€£¥,.]", str(v)) for v in present):
        return None  # plain digit strings (zip codes, SKUs) stay text
    return pa.array([float(re.sub(r"[^\d.+-]", "", str(v))) if v is not None and str(v).strip() else None
                     for v in values], pa.float64())


def _kind(t: pa.DataType) -> Kind:
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_floating(t):
        return "number"
    if pa.types.is_timestamp(t):
        return "date"
    return "text"


ARROW_TYPES = {"integer": pa.int64(), "number": pa.float64(), "date": pa.timestamp("us", tz="UTC"),
               "text": pa.string()}


def _check_ids(table: pa.Table, spec: CatalogSpec, src: Path) -> None:
    ids = table.column(spec.id_column).to_pylist()
    missing = [i + 2 for i, v in enumerate(ids) if v is None or str(v).strip() == ""]
    if missing:
        raise CatalogError(f"{src.name}: rows {', '.join(map(str, missing[:5]))} have no product id "
                           f"in column {spec.id_column!r}")
    seen: set[str] = set()
    dupes = sorted({str(v) for v in ids if str(v) in seen or seen.add(str(v))})
    if dupes:
        raise CatalogError(f"{src.name}: product ids repeat in column {spec.id_column!r} "
                           f"({', '.join(dupes[:5])}); name a unique column with --id-column")


def row_digest(record: dict[str, Any], spec: CatalogSpec) -> str:
    """Changes when any catalog value of the product changes."""
    values = {c: record.get(c) for c in spec.columns}
    raw = json.dumps(values, sort_keys=True, default=str).encode()
    return hashlib.blake2b(raw, digest_size=16).hexdigest()
