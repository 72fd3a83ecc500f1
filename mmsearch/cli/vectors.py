"""`mmsearch vectors`: how searches hold the library's vectors in memory, and what each choice keeps."""

from __future__ import annotations

import json

import click

from mmsearch.cli.common import friendly, service


@click.command()
@click.argument("setting", required=False, type=click.Choice(["auto", "float32", "float16", "int8", "binary"]))
@click.option("--json", "as_json", is_flag=True)
@click.option("--no-measure", is_flag=True, help="Skip the recall measurement (it reads up to 50,000 rows).")
@click.pass_context
@friendly
def vectors(ctx: click.Context, setting: str | None, as_json: bool, no_measure: bool) -> None:
    """Show or set the resident vector format (SETTING: auto, float32, float16, int8 or binary).

    float32 is exact; the others keep a compressed copy in memory and rescore a shortlist with the float32
    vectors on disk. Changing it re-encodes the stored vectors (a running server within seconds); nothing is
    embedded again. Each table's recall@10 against float32 exact is measured on its own rows."""
    svc = service(ctx)
    if setting:
        svc.set_vectors(setting)
    report = svc.vector_status(measure=not no_measure)
    if as_json:
        click.echo(json.dumps({"setting": svc.vector_setting(), "tables": report}, indent=2))
        return
    click.echo(f"vectors: {svc.vector_setting()}")
    for t in report:
        click.echo("  " + describe(t))


def describe(t: dict) -> str:
    chosen = f"{t['vectors']} (auto)" if t["setting"] == "auto" else t["vectors"]
    line = f"{t['table']}: {chosen}, {t['bytes_per_item']:g} bytes per item in memory"
    if "retention" in t:
        from mmsearch.search.retention import Retention

        line += "; " + Retention(**t["retention"]).describe()
    return line
