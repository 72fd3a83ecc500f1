"""`mmsearch vectors`: how searches hold the library's vectors in memory, and what each choice keeps."""

from __future__ import annotations

import json

import click

from mmsearch.cli.common import friendly, service


@click.command()
@click.argument("setting", required=False, type=click.Choice(["auto", "float32", "float16", "int8", "binary"]))
@click.option("--dims", type=click.IntRange(min=0), default=None,
              help="Matryoshka-trained models only (jina-v4: 128, 256, 512, 1024): keep the first DIMS dimensions "
                   "in memory (0: all of them again). Refused, naming the table, for any other model.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--no-measure", is_flag=True, help="Skip the recall measurement (it reads up to 50,000 rows).")
@click.pass_context
@friendly
def vectors(ctx: click.Context, setting: str | None, dims: int | None, as_json: bool, no_measure: bool) -> None:
    """Show or set the resident vector format (SETTING: auto, float32, float16, int8 or binary).

    float32 is exact; the others keep a compressed copy in memory and rescore a shortlist with the float32
    vectors on disk. --dims cuts the copy to a Matryoshka length (int8 --dims 256). Changing either re-encodes
    the stored vectors (a running server within seconds); nothing is embedded again. Each table's recall@10
    against float32 exact is measured on its own rows."""
    svc = service(ctx)
    if setting or dims is not None:
        svc.set_vectors(vector_setting(svc, setting, dims))
    report = svc.vector_status(measure=not no_measure)
    if as_json:
        click.echo(json.dumps({"setting": svc.vector_setting(), "tables": report}, indent=2))
        return
    click.echo(f"vectors: {svc.vector_setting()}")
    for t in report:
        click.echo("  " + describe(t))


def vector_setting(svc, setting: str | None, dims: int | None) -> str:  # noqa: ANN001 - a Service
    """The setting string for a --vectors / --dims pair: a missing half keeps the library's current one
    (dims 0 drops the truncation)."""
    from mmsearch.errors import LibraryNotFound
    from mmsearch.search.codecs import parse_setting, with_dims

    try:
        current = svc.vector_setting()
    except LibraryNotFound:  # `index --dims` on a new library
        current = "auto"
    kept = parse_setting(current)[1]
    base = (f"{setting}@{kept}" if kept else setting) if setting else current
    return with_dims(base, dims)


def describe(t: dict) -> str:
    chosen = f"{t['vectors']} (auto)" if t["setting"].startswith("auto") else t["vectors"]
    if t.get("dims") and t.get("full_dims") and t["dims"] < t["full_dims"]:
        chosen += f", first {t['dims']} of {t['full_dims']} dims"
    elif t.get("dims_note"):
        chosen += f" ({t['dims_note']})"
    line = f"{t['table']}: {chosen}, {t['bytes_per_item']:g} bytes per item in memory"
    if "retention" in t:
        from mmsearch.search.retention import Retention

        line += "; " + Retention(**t["retention"]).describe()
    return line
