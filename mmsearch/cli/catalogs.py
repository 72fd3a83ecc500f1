"""`mmsearch catalog`: product catalogs (list, filters, search, drop).

Not to be confused with the model list (mmsearch/model_list.py): a catalog here is a product table.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from mmsearch.cli.common import emit_records, friendly, hand_off, service
from mmsearch.cli.parts import PartsCommand, old_form_notes, weight_option, weighted_parts


@click.group()
def catalog() -> None:
    """Product catalogs: list them, show their filters, search them."""


@catalog.command("list")
@click.pass_context
@friendly
def catalog_list(ctx: click.Context) -> None:
    """The catalogs in this library, with their product counts and columns."""
    from mmsearch.workflows.catalog import Catalogs

    for t in Catalogs(service(ctx).library()).tables():
        if t.vectors == "image":
            click.echo(json.dumps({"catalog": t.spec.name, "products": t.count(), "source": t.spec.source,
                                   "id_column": t.spec.id_column, "columns": t.spec.columns}))


@catalog.command("filters")
@click.argument("name")
@click.pass_context
@friendly
def catalog_filters(ctx: click.Context, name: str) -> None:
    """The filters the catalog's columns allow: ranges for numbers, choices for categories."""
    from mmsearch.workflows.catalog_search import CatalogSearch

    for f in CatalogSearch.for_service(service(ctx)).facets(name):
        click.echo(json.dumps({"column": f.column, "kind": f.kind, "low": f.low, "high": f.high,
                               "choices": f.choices}, default=str))


@catalog.command("search", cls=PartsCommand)
@click.argument("name")
@click.argument("query", required=False)
@click.option("--text", "texts", multiple=True, help="A text part, taken as written. Repeatable.")
@click.option("--image", "images", multiple=True, help="An image part (a file). Repeatable.")
@weight_option
@click.option("--where", multiple=True, help="Filter on the catalog's columns, e.g. price<50, category=shoes.")
@click.option("-k", "--top", "k", type=click.IntRange(1, 1000), default=12, show_default=True)
@click.option("--hybrid/--no-hybrid", default=True, show_default=True, help="Fuse keyword (BM25) matches.")
@click.option("--plain", is_flag=True, help="A readable table instead of JSON lines.")
@click.option("--export", "export_to", type=click.Path(path_type=Path), help="Also write a .csv or .jsonl file.")
@click.option("--copy-to", type=click.Path(path_type=Path), help="Also copy the product images into this folder.")
@click.pass_context
@friendly
def catalog_search(ctx: click.Context, name: str, query: str | None, texts: tuple[str, ...],
                   images: tuple[str, ...], weights: tuple[float, ...], where: tuple[str, ...], k: int,
                   hybrid: bool, plain: bool, export_to: Path | None, copy_to: Path | None) -> None:
    """Search catalog NAME by text and/or images, filtered by its own columns.

    \b
    mmsearch catalog search products "red running shoe" --where price<80 --where category=shoes
    mmsearch catalog search products --text sneaker --text leather --weight -1
    """
    from mmsearch.query.parts import part_from_cli
    from mmsearch.workflows.catalog_search import CatalogSearch

    given = weighted_parts(ctx, {"texts": "text", "images": "image"}, weights, dict(texts=texts, images=images))
    for note in old_form_notes(given):
        click.echo(note, err=True)
    raw = ([("text", query, 1.0)] if query else []) + given
    if not raw:
        raise click.UsageError("give a text QUERY or at least one --text or --image")
    parts = [part_from_cli(kind, value, weight) for kind, value, weight in raw]  # type: ignore[arg-type]
    answer = CatalogSearch.for_service(service(ctx)).run(name, parts, where, k, hybrid)
    for note in answer.notes:
        click.echo(note, err=True)
    emit_records([h.record() for h in answer.hits], plain, ["rank", "fused_score", "product_id", "title", "path"])
    hand_off(answer.hits, export_to, copy_to)


@catalog.command("drop")
@click.argument("name")
@click.pass_context
@friendly
def catalog_drop(ctx: click.Context, name: str) -> None:
    """Remove catalog NAME from the library (its files stay where they are)."""
    from mmsearch.workflows.catalog import Catalogs

    n = Catalogs(service(ctx).library()).drop(name)
    click.echo(f"dropped {n} table{'s' if n != 1 else ''} of catalog {name}", err=True)
    if not n:
        sys.exit(1)
