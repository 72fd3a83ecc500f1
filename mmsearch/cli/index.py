"""`mmsearch index` (folders, files and product catalogs) and `mmsearch ocr`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Sequence

import click

from mmsearch.cli.common import friendly, service
from mmsearch.cli.vectors import vector_setting


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--ray", "ray_address", metavar="auto|ray://HOST:PORT",
              help="Embed in a Ray Data pipeline: auto starts Ray on this machine (or joins RAY_ADDRESS); "
                   "ray://host:10001 joins a cluster. Images only; needs the scale extra.")
@click.option("--ray-actors", type=click.IntRange(1, 4096), default=None,
              help="With --ray: model actors per encoder (default: one per GPU, else 2).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no per-folder notes; the summary stays.")
@click.option("--verbose", "-v", is_flag=True, help="Also list every skipped file with its reason as it happens.")
@click.option("--ocr/--no-ocr", default=None, help="Read text inside images into the keyword index (slow; needs the ocr extra).")
@click.option("--vectors", type=click.Choice(["auto", "float32", "float16", "int8", "binary"]), default=None,
              help="How searches hold this library's vectors in memory (stored with the library; default auto: "
                   "float32, int8 or binary by size). Also MMSEARCH_VECTORS and `mmsearch vectors`.")
@click.option("--dims", type=click.IntRange(min=1), default=None,
              help="With a Matryoshka-trained model (jina-v4: 128, 256, 512, 1024): keep only the first DIMS "
                   "dimensions in memory; the full vectors on disk rescore. Refused for other models.")
@click.option("--id-column", help="Product catalogs: the column that identifies a product (re-indexing updates by it).")
@click.option("--catalog-name", help="Product catalogs: the catalog's name (default: the file name).")
@click.option("--image-column", help="Product catalogs: the column with each product's image path.")
@click.option("--title-column", help="Product catalogs: the product title column.")
@click.option("--description-column", help="Product catalogs: the product description column.")
@click.pass_context
@friendly
def index(ctx: click.Context, paths: tuple[str, ...], ray_address: str | None, ray_actors: int | None, quiet: bool,
          verbose: bool, ocr: bool | None, vectors: str | None, dims: int | None, **catalog: str | None) -> None:
    """Index (or update) the images and sounds under PATHS, or product catalogs (.csv, .jsonl, .parquet).

    Skipped files are summed up one line per cause, with what to do; the full list goes to
    skipped.tsv in the library folder (-v prints it too). Library warnings go to index.log there.
    """
    from mmsearch.cli.moderate import scan_if_watching
    from mmsearch.cli.quiet import library_noise
    from mmsearch.location import is_uri

    given = tuple(p if is_uri(p) else Path(p) for p in paths)
    svc = service(ctx)
    if ocr is not None:
        svc.settings.ocr = ocr
    if vectors or dims or svc.settings.vectors:  # the flags, or MMSEARCH_VECTORS: stored for every search
        svc.set_vectors(vector_setting(svc, vectors, dims), create=True, indexing=True)
    with library_noise() as noise:
        todo = index_catalogs(svc, given, catalog, verbose)
        if not todo:
            return
        if ray_address:
            from mmsearch.scale.ray_index import index_with_ray

            report = index_with_ray(svc, todo, ray_address, ray_actors)
        else:
            report = _index_with_bar(svc, todo, quiet, verbose)
        click.echo(report.summary(), err=True)
        for note in report.notes:  # the OCR pass, when on
            click.echo(note, err=True)
        _say_skips(report.skip_groups(), _library_file(svc, "skipped.tsv"), report.skipped)
        for done in svc.maintain_index():
            click.echo(done, err=True)
        scanned = scan_if_watching(svc)  # new files meet the moderation watch-list, if there is one
        if scanned:
            click.echo(scanned, err=True)
    log = noise.write(_library_file(svc, "index.log"))
    if log and verbose:
        click.echo(f"{noise.total} library warning{'s' if noise.total != 1 else ''}: {log}", err=True)


def _index_with_bar(svc: Any, paths: Sequence[Path], quiet: bool, verbose: bool) -> Any:
    """The indexer under a progress bar; notes and -v lines are written above the bar, never into it."""
    from tqdm import tqdm

    bar = tqdm(total=0, unit="file", disable=quiet, file=sys.stderr, dynamic_ncols=True)

    def on_progress(p: Any) -> None:
        if p.message:
            if not quiet:
                tqdm.write(p.message, file=sys.stderr)
            bar.reset(total=p.total)
        bar.n = p.done
        bar.set_postfix(skipped=p.skipped, refresh=False)
        bar.refresh()

    def on_skip(path: str, reason: str) -> None:
        if verbose:
            tqdm.write(f"skipped {path}: {reason}", file=sys.stderr)

    try:
        return svc.index(paths, on_progress, on_skip)
    finally:
        bar.close()


def _library_file(svc: Any, name: str) -> Path:
    folder = Path(svc.settings.data_dir).expanduser()  # for a library on S3: this replica's local cache folder
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def _say_skips(groups: Sequence[Any], report_file: Path | None, skipped: Sequence[tuple[str, str]]) -> None:
    """One line per cause; the whole list in report_file (rewritten each run, gone when nothing was skipped)."""
    for group in groups:
        click.echo(group.line(), err=True)
    if report_file is None:
        return
    if not skipped:
        report_file.unlink(missing_ok=True)
        return
    report_file.write_text("path\treason\n" + "".join(f"{p}\t{why}\n" for p, why in skipped))
    click.echo(f"the skipped files and their reasons: {report_file}", err=True)


def index_catalogs(svc: Any, paths: Sequence[Path], options: dict[str, str | None],
                   verbose: bool = False) -> tuple[Path, ...]:
    """Import the catalog files among paths; return the other paths (folders and media files)."""
    from mmsearch.ingest.indexer import group_skips
    from mmsearch.workflows.catalog import CatalogIndexer
    from mmsearch.workflows.catalog_file import is_catalog_file

    catalogs = [p for p in paths if isinstance(p, Path) and is_catalog_file(p)]
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
        for where, why in report.skipped if verbose else ():
            click.echo(f"skipped {where}: {why}", err=True)
        click.echo(report.summary(), err=True)
        _say_skips(group_skips(report.skipped), None, report.skipped)
    return tuple(p for p in paths if p not in catalogs)


@click.command()
@click.pass_context
@friendly
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

    from mmsearch.ingest.indexer import group_skips

    report = OcrPass.for_service(service(ctx)).run(progress)
    bar.close()
    click.echo(report.summary(), err=True)
    _say_skips(group_skips(report.skipped), None, report.skipped)
