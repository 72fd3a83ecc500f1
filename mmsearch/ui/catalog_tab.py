"""The Catalog tab: search a product catalog by text and/or an image, as product cards (image, title,
price), with filters built from the catalog's own columns (a range for each number column, a choice list
for each category-like column) and an export of the results.

CatalogActions holds the logic without Gradio; catalog_tab lays out the tab.
"""

from __future__ import annotations

import tempfile
from html import escape
from urllib.parse import quote
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import gradio as gr

from mmsearch.query.parts import QueryPart
from mmsearch.service import MMSearch
from mmsearch.ui.present import friendly
from mmsearch.ui.thumbs import Renditions
from mmsearch.ui.uploads import ImageUpload
from mmsearch.workflows.catalog import Catalogs
from mmsearch.workflows.catalog_search import CatalogSearch, Facet, ProductHit
from mmsearch.workflows.export import export

RANGE_SLOTS, CHOICE_SLOTS = 3, 3
CSS = """
.mms-cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 12px; }
.mms-card { border: 1px solid var(--border-color-primary); border-radius: var(--radius-lg); padding: 8px;
            background: var(--background-fill-primary); }
.mms-card img, .mms-noimg { width: 100%; height: 150px; object-fit: contain; display: block; }
.mms-title { font-weight: 600; margin-top: 6px; }
.mms-price { color: var(--color-accent); font-weight: 600; }
.mms-id { color: var(--body-text-color-subdued); font-size: 0.85em; }
"""
ANY = "(any)"
TABLE_HEADERS = ["#", "product", "title", "price", "fused", "matched by"]


@dataclass
class Products:
    hits: list[ProductHit] = field(default_factory=list)
    thumbs: list[str | None] = field(default_factory=list)
    cards: list[str] = field(default_factory=list)
    message: str = ""
    ok: bool = True

    def html(self) -> str:
        """Product cards: the picture, the title, the price. Thumbnails are served from the rendition cache."""
        cards = []
        for h, thumb, card in zip(self.hits, self.thumbs, self.cards):
            title, _, price = card.partition(" · ")
            img = f'<img src="gradio_api/file={quote(thumb)}" alt="">' if thumb else '<div class="mms-noimg"></div>'
            cards.append(f'<div class="mms-card">{img}<div class="mms-title">{escape(title)}</div>'
                         f'<div class="mms-price">{escape(price)}</div><div class="mms-id">{escape(h.product_id)}'
                         f'</div></div>')
        return f'<div class="mms-cards">{"".join(cards)}</div>' if cards else ""

    def table(self) -> list[list[Any]]:
        return [[h.rank, h.product_id, h.title, h.price, round(h.score, 4), h.hit.explain()] for h in self.hits]


@dataclass
class FilterSlots:
    """Which facet each filter slot of the tab shows."""

    ranges: list[Facet | None]
    choices: list[Facet | None]


class CatalogActions:
    def __init__(self, service: MMSearch, renditions: Renditions, expose: Callable[[list[str]], None]) -> None:
        self.service = service
        self.renditions = renditions
        self._expose = expose

    def catalogs(self) -> list[str]:
        try:
            return Catalogs(self.service.library()).names()
        except Exception:  # noqa: BLE001 - no library yet: no catalogs
            return []

    def slots(self, catalog: str | None) -> FilterSlots:
        facets = CatalogSearch.for_service(self.service).facets(catalog) if catalog else []
        ranges = [f for f in facets if f.kind == "range"][:RANGE_SLOTS]
        choices = [f for f in facets if f.kind == "choice"][:CHOICE_SLOTS]
        return FilterSlots(ranges + [None] * (RANGE_SLOTS - len(ranges)),
                           choices + [None] * (CHOICE_SLOTS - len(choices)))

    def search(self, catalog: str | None, text: str, image: Any, k: int, lows: list, highs: list,
               picks: list, more: str) -> Products:
        if not catalog:
            return Products(message="Index a product catalog first (`mmsearch index products.csv --id-column sku`).",
                            ok=False)
        try:
            parts = ([QueryPart("text", text.strip())] if text and text.strip() else [])
            parts += [QueryPart("image", image)] if image is not None else []
            if not parts:
                return Products(message="Type what you are looking for, or upload a product photo.", ok=False)
            slots = self.slots(catalog)
            where = [c for f, lo, hi in zip(slots.ranges, lows, highs) if f for c in f.conditions((lo, hi))]
            where += [c for f, v in zip(slots.choices, picks) if f and v and v != ANY for c in f.conditions(v)]
            where += [w.strip() for w in (more or "").split(",") if w.strip()]
            search = CatalogSearch.for_service(self.service)
            answer = search.run(catalog, parts, where, int(k))
            spec = search.catalogs.spec(catalog)
        except Exception as exc:  # noqa: BLE001 - the edge: every error becomes a message
            return Products(message=friendly(exc), ok=False)
        self._expose([str(self.renditions.folder)])
        out = Products(hits=answer.hits)
        out.thumbs = [self.renditions.get(h.image_file) for h in answer.hits]
        out.cards = [h.card(spec) for h in answer.hits]
        n = len(answer.hits)
        out.message = f"{n} product{'s' if n != 1 else ''} in {answer.seconds * 1000:.0f} ms"
        if where:
            out.message += " · filters: " + ", ".join(where)
        if answer.notes:
            out.message += " · " + " · ".join(answer.notes)
        return out

    @staticmethod
    def export(hits: list[ProductHit], fmt: str) -> str | None:
        if not hits:
            return None
        folder = Path(tempfile.mkdtemp(prefix="mmsearch-export-"))
        return str(export(hits, folder / f"products.{fmt}"))


def _slot_updates(slots: FilterSlots) -> list[Any]:
    out: list[Any] = []
    for f in slots.ranges:
        shown = f is not None
        info = f"{f.low:,} – {f.high:,}" if f else None
        out.append(gr.update(visible=shown, label=f"{f.column} from" if f else "", info=info, value=None))
        out.append(gr.update(visible=shown, label=f"{f.column} to" if f else "", value=None))
    for f in slots.choices:
        out.append(gr.update(visible=f is not None, label=f.column if f else "",
                             choices=[ANY] + (f.choices if f else []), value=ANY))
    return out


def catalog_tab(actions: CatalogActions, default_k: int, private: dict) -> None:
    gr.HTML(f"<style>{CSS}</style>")
    gr.Markdown("Search a product catalog by words or a photo. Filters come from the catalog's own columns.",
                elem_classes="mms-note")
    with gr.Row(equal_height=True):
        names = actions.catalogs()
        catalog = gr.Dropdown(names, value=names[0] if names else None, label="Catalog", scale=1,
                              elem_id="mms-p-catalog")
        query = gr.Textbox(label="Looking for", placeholder="red running shoe", scale=4, elem_id="mms-p-query")
        run_btn = gr.Button("Search", variant="primary", scale=1, min_width=120, elem_id="mms-p-run")
    with gr.Row():
        with gr.Column(scale=1, min_width=260):
            image = ImageUpload(label="…or a product photo", height=160, sources=["upload", "clipboard"],
                             elem_id="mms-p-image")
            k = gr.Slider(1, 100, value=default_k, step=1, label="Results (k)")
            lows, highs, picks = [], [], []
            for i in range(RANGE_SLOTS):
                with gr.Row():
                    lows.append(gr.Number(visible=False, elem_id=f"mms-p-lo{i}", min_width=80))
                    highs.append(gr.Number(visible=False, elem_id=f"mms-p-hi{i}", min_width=80))
            for i in range(CHOICE_SLOTS):
                picks.append(gr.Dropdown([ANY], value=ANY, visible=False, elem_id=f"mms-p-choice{i}"))
            more = gr.Textbox(label="More conditions", placeholder="stock>=1, brand~acme", elem_id="mms-p-where")
            refresh = gr.Button("Reload catalogs", size="sm")
        with gr.Column(scale=4):
            message = gr.Markdown("", elem_id="mms-p-message")
            gallery = gr.HTML("", elem_id="mms-p-cards")
            table = gr.Dataframe(headers=TABLE_HEADERS, value=[], interactive=False, wrap=True, elem_id="mms-p-table")
            with gr.Row():
                fmt = gr.Radio(["csv", "jsonl"], value="csv", label="Export as", scale=1)
                export_btn = gr.Button("Export results", scale=1, elem_id="mms-p-export")
                download = gr.File(label="Download", interactive=False, scale=2, elem_id="mms-p-download")
    results = gr.State([])
    slot_outputs = [c for pair in zip(lows, highs) for c in pair] + picks

    def pick_catalog(name: str | None) -> list[Any]:
        return _slot_updates(actions.slots(name))

    def reload() -> list[Any]:
        names = actions.catalogs()
        value = names[0] if names else None
        return [gr.update(choices=names, value=value)] + pick_catalog(value)

    def run(name: str | None, text: str, img: Any, n: int, *values: Any) -> tuple:
        lo = list(values[:RANGE_SLOTS])
        hi = list(values[RANGE_SLOTS:2 * RANGE_SLOTS])
        chosen = list(values[2 * RANGE_SLOTS:2 * RANGE_SLOTS + CHOICE_SLOTS])
        found = actions.search(name, text, img, n, lo, hi, chosen, values[-1])
        note = found.message if found.ok else f"⚠️ {found.message}"
        return note, found.html(), found.table(), found.hits

    inputs = [catalog, query, image, k, *lows, *highs, *picks, more]
    outputs = [message, gallery, table, results]
    catalog.change(pick_catalog, catalog, slot_outputs, **private)
    refresh.click(reload, None, [catalog] + slot_outputs, **private)
    run_btn.click(run, inputs, outputs, **private)
    query.submit(run, inputs, outputs, **private)
    export_btn.click(actions.export, [results, fmt], download, **private)
    gr.on(None, reload, None, [catalog] + slot_outputs, **private)  # no trigger, no inputs: on page load
