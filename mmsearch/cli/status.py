"""`mmsearch status`: what the library holds."""

from __future__ import annotations

import json

import click

from mmsearch.cli.common import friendly, service


@click.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@friendly
def status(ctx: click.Context, as_json: bool) -> None:
    """Rows per table, model, and size on disk."""
    st = service(ctx).status()
    if as_json:
        click.echo(json.dumps(st, indent=2))
        return
    click.echo(f"library: {st['data_dir']} ({st['size_bytes'] / 1e6:.1f} MB on disk)")
    click.echo(f"roots:   {', '.join(st['roots']) or '(none)'}")
    for t in st["tables"]:
        click.echo(f"  {t['modality']:<6} {t['rows']:>8} rows  {t['encoder']} {t['model']} ({t['weights']}, {t['dim']}-d)")
