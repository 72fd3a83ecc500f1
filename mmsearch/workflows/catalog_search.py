"""Searching one catalog: the query engine over the catalog's tables, product cards, schema-driven filters.

The engine is handed a view of the library that shows only the catalog's tables, so text, image and
keyword (BM25 over title, description, SKU) lists of a catalog fuse exactly as they do for files, and
the catalog's own columns filter through the same `COLUMN OP VALUE` conditions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import pyarrow.compute as pc

from mmsearch.encoders.base import EmbeddingSpace, Encoder
from mmsearch.query.engine import FusedHit, QueryEngine
from mmsearch.query.parts import QueryOptions, QueryPart
from mmsearch.search.vector import VectorSearch
from mmsearch.store.library import Library
from mmsearch.store.table import SpaceTable
from mmsearch.workflows.catalog import MODALITY, PREFIX, Catalogs, CatalogTable, text_encoders
from mmsearch.workflows.catalog_file import CatalogSpec

if TYPE_CHECKING:
    from mmsearch.service import MMSearch

MAX_CHOICES = 40  # a text column with more distinct values is searched by "contains", not a choice list


class CatalogView:
    """Library-shaped: the query engine sees one catalog's tables, and nothing else, as its products."""

    def __init__(self, library: Library, tables: Sequence[CatalogTable]) -> None:
        self.data_dir = library.data_dir
        self._tables = [t for t in tables if t.count() > 0]

    def tables(self, modality: str) -> list[CatalogTable]:
        return list(self._tables) if modality == MODALITY else []


class WithCatalogs:
    """Library-shaped: the library's own tables, and every catalog's tables as the "product" target, so the
    general search (every surface's `service.query`) answers with products too, labelled as products and
    filterable by their own typed columns. Catalog tables are re-listed when the library's table list is
    (at most every couple of seconds), never per query."""

    def __init__(self, library: Library) -> None:
        self._library = library
        self._catalogs = Catalogs(library)
        self._seen: tuple[object, list[CatalogTable]] = (None, [])

    def __getattr__(self, name: str) -> Any:
        return getattr(self._library, name)

    def tables(self, modality: str) -> list[SpaceTable]:
        if modality != MODALITY:
            return self._library.tables(modality)
        names = self._library.table_names()
        if self._seen[0] is not names:  # the library re-read its table list: so do we
            found = self._catalogs.tables() if any(n.startswith(PREFIX) for n in names) else []
            self._seen = (names, found)
        return [t for t in self._seen[1] if t.count() > 0]


@dataclass
class ProductHit:
    rank: int
    product_id: str
    title: str
    price: Any
    image_file: str
    score: float  # fused
    similarity: float  # best cosine of a dense part
    fields: dict[str, Any]
    hit: FusedHit

    def card(self, spec: CatalogSpec) -> str:
        price = _price(self.price) if spec.price_column else ""
        return " · ".join(p for p in (self.title or self.product_id, price) if p)

    def record(self) -> dict[str, Any]:
        """What an export writes for the product."""
        out = self.hit.to_dict()
        out.update({"product_id": self.product_id, "title": self.title, **self.fields})
        out.update(path=self.image_file, item=self.hit.result.path, modality="product", rank=self.rank)
        return out


@dataclass
class ProductAnswer:
    hits: list[ProductHit]
    notes: list[str]
    seconds: float


@dataclass
class Facet:
    """One filter the UI builds from the catalog's schema."""

    column: str
    kind: str  # "range" (numbers), "choice" (few distinct texts), "text" (contains), "date"
    low: Any = None
    high: Any = None
    choices: list[str] = field(default_factory=list)

    def conditions(self, value: Any) -> list[str]:
        """The filter strings for a value picked in the UI: (low, high) for a range, a string otherwise."""
        if value is None or value == "" or value == []:
            return []
        if self.kind in ("range", "date"):
            lo, hi = value
            return ([f"{self.column}>={lo}"] if lo is not None and lo != "" else []) + \
                   ([f"{self.column}<={hi}"] if hi is not None and hi != "" else [])
        if self.kind == "choice":
            return [f"{self.column}={value}"]
        return [f"{self.column}~{value}"]


class CatalogSearch:
    """Receives the library, the encoders and the vector searcher; builds none of them."""

    def __init__(self, library: Library, encoders: Sequence[Encoder], vectors: VectorSearch) -> None:
        self.library = library
        self.catalogs = Catalogs(library)
        self.encoders = list(encoders)
        self.vectors = vectors

    @classmethod
    def for_service(cls, service: "MMSearch") -> "CatalogSearch":
        return cls(service.library(), [service.encoder, *text_encoders(service)], service.searcher.vectors)

    def run(self, catalog: str, parts: Sequence[QueryPart], where: Sequence[str] = (), k: int = 12,
            hybrid: bool = True, mmr: float | None = None) -> ProductAnswer:
        spec = self.catalogs.spec(catalog)
        view = CatalogView(self.library, self.catalogs.tables(catalog))
        engine = QueryEngine(view, self.encoders, self.vectors)  # type: ignore[arg-type]
        options = QueryOptions(k=k, targets=(MODALITY,), hybrid=hybrid, mmr=mmr, where=list(where))
        answer = engine.run(parts, options)
        rows = self.catalogs.image_table(catalog).rows_for_paths([h.result.path for h in answer.hits])
        hits = []
        for rank, h in enumerate(answer.hits, 1):
            row = rows.get(h.result.path)
            if row is None:
                continue
            hits.append(ProductHit(
                rank=rank, product_id=row["product_id"], title=str(row.get(spec.title_column) or "")
                if spec.title_column else "", price=row.get(spec.price_column) if spec.price_column else None,
                image_file=row["image_file"], score=h.score, similarity=h.result.score,
                fields={c: row.get(c) for c in spec.columns}, hit=h))
        return ProductAnswer(hits, answer.notes, answer.seconds)

    def facets(self, catalog: str) -> list[Facet]:
        spec = self.catalogs.spec(catalog)
        table = self.catalogs.image_table(catalog).all_rows()
        skip = {spec.id_column, spec.image_column, spec.title_column, spec.description_column}
        out = []
        for column, kind in spec.columns.items():
            if column in skip:
                continue
            values = table.column(column)
            if kind in ("integer", "number", "date"):
                mm = pc.min_max(values).as_py()
                if mm["min"] is not None:
                    out.append(Facet(column, "date" if kind == "date" else "range", mm["min"], mm["max"]))
                continue
            distinct = sorted({v for v in values.to_pylist() if v is not None and str(v).strip()})
            if 1 < len(distinct) <= MAX_CHOICES and len(distinct) < max(2, table.num_rows):
                out.append(Facet(column, "choice", choices=[str(v) for v in distinct]))
            elif distinct:
                out.append(Facet(column, "text"))
        return out


def _price(value: Any) -> str:
    if isinstance(value, (int, float)):
        return f"{value:,.2f}"
    return str(value) if value is not None else ""
