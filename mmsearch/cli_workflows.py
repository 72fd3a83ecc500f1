"""CLI commands of the workflows: product catalogs, moderation, mood search and boards, OCR, export.

Registered on the main `mmsearch` group by cli.py; the same edge rules apply (domain errors become
one-line messages, JSON lines on stdout for pipes, --plain for people).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Sequence

import click

from mmsearch.cli import _friendly, _service
from mmsearch.cli_parts import PartsCommand, old_form_notes, weight_option, weighted_parts


def register(cli: click.Group) -> None:
    from mmsearch.cli_mood import board, mood
    from mmsearch.cli_review import moderate

    for command in (catalog, moderate, mood, board, ocr):
        cli.add_command(command)


def emit_records(rows: Sequence[dict], plain: bool, columns: Sequence[str]) -> None:
    if not plain:
        for r in rows:
            click.echo(json.dumps(r, default=str))
        return
    if not rows:
        click.echo("nothing")
        return
    click.echo("  ".join(columns))
    for r in rows:
        click.echo("  ".join(_short(r.get(c)) for c in columns))


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value if value is not None else "-")


def hand_off(hits: Sequence[Any], export_to: Path | None, copy_to: Path | None) -> None:
    """--export FILE and --copy-to FOLDER, shared by every command that lists results."""
    from mmsearch.workflows.export import copy_files, export, file_of

    if export_to:
        click.echo(f"wrote {len(hits)} results to {export(hits, export_to)}", err=True)
    if copy_to:
        copied = copy_files([file_of(h) for h in hits], copy_to)
        click.echo(f"copied {len(copied)} files to {copy_to}", err=True)


def index_catalogs(svc: Any, paths: Sequence[Path], options: dict[str, str | None]) -> tuple[Path, ...]:
    """Import the catalog files among paths; return the other paths (folders and media files)."""
    from mmsearch.workflows.catalog import CatalogIndexer
    from mmsearch.workflows.catalog_file import is_catalog_file

    catalogs = [p for p in paths if is_catalog_file(p)]
    given = [flag for flag, v in options.items() if v]
    if given and not catalogs:
        flags = ", ".join("--" + f.replace("_", "-") for f in given)
        raise click.UsageError(f"{flags} only apply to product catalogs (.csv, .tsv, .jsonl, .parquet files)")
    if catalogs and len(catalogs) > 1 and options.get("catalog_name"):
        raise click.UsageError("--catalog-name names one catalog; index the files one at a time")
    for path in catalogs:
        report = CatalogIndexer.for_service(svc).index(
            path, id_column=options.get("id_column"), name=options.get("catalog_name"),
            image_column=options.get("image_column"), title_column=options.get("title_column"),
            description_column=options.get("description_column"))
        for where, why in report.skipped:
            click.echo(f"skipped {where}: {why}", err=True)
        click.echo(report.summary(), err=True)
    return tuple(p for p in paths if p not in catalogs)


# -- catalogs ------------------------------------------------------------------------------------
@click.group()
def catalog() -> None:
    """Product catalogs: list them, show their filters, search them."""


@catalog.command("list")
@click.pass_context
@_friendly
def catalog_list(ctx: click.Context) -> None:
    """The catalogs in this library, with their product counts and columns."""
    from mmsearch.workflows.catalog import Catalogs

    for t in Catalogs(_service(ctx).library()).tables():
        if t.vectors == "image":
            click.echo(json.dumps({"catalog": t.spec.name, "products": t.count(), "source": t.spec.source,
                                   "id_column": t.spec.id_column, "columns": t.spec.columns}))


@catalog.command("filters")
@click.argument("name")
@click.pass_context
@_friendly
def catalog_filters(ctx: click.Context, name: str) -> None:
    """The filters the catalog's columns allow: ranges for numbers, choices for categories."""
    from mmsearch.workflows.catalog_search import CatalogSearch

    for f in CatalogSearch.for_service(_service(ctx)).facets(name):
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
@_friendly
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
    answer = CatalogSearch.for_service(_service(ctx)).run(name, parts, where, k, hybrid)
    for note in answer.notes:
        click.echo(note, err=True)
    emit_records([h.record() for h in answer.hits], plain, ["rank", "fused_score", "product_id", "title", "path"])
    hand_off(answer.hits, export_to, copy_to)


@catalog.command("drop")
@click.argument("name")
@click.pass_context
@_friendly
def catalog_drop(ctx: click.Context, name: str) -> None:
    """Remove catalog NAME from the library (its files stay where they are)."""
    from mmsearch.workflows.catalog import Catalogs

    n = Catalogs(_service(ctx).library()).drop(name)
    click.echo(f"dropped {n} table{'s' if n != 1 else ''} of catalog {name}", err=True)
    if not n:
        sys.exit(1)


@click.command()
@click.pass_context
@_friendly
def ocr(ctx: click.Context) -> None:
    """Read the text inside the library's images into the keyword index (needs the ocr extra; slow:
    about a second per image on a CPU; files already read are skipped)."""
    from tqdm import tqdm

    from mmsearch.workflows.ocr import OcrPass

    bar = tqdm(total=0, unit="image", file=sys.stderr, dynamic_ncols=True)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    report = OcrPass.for_service(_service(ctx)).run(progress)
    bar.close()
    for path, why in report.skipped:
        click.echo(f"skipped {path}: {why}", err=True)
    click.echo(report.summary(), err=True)
