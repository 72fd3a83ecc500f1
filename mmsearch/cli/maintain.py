"""`mmsearch maintain`: build or bring up to date the keyword (FTS) and ANN indexes, as a job of its own.

Search servers never build indexes (a build on a large table takes minutes and a lot of memory); run this after
indexing, here or on a Ray cluster (--ray), where the build runs as one task near the data."""

from __future__ import annotations

import click

from mmsearch.cli.common import friendly, service


@click.command()
@click.option("--ray", "ray_address", metavar="auto|ray://HOST:PORT", help="Run the build as a Ray task (scale extra).")
@click.pass_context
@friendly
def maintain(ctx: click.Context, ray_address: str | None) -> None:
    """Build or update the library's keyword and ANN indexes."""
    svc = service(ctx)
    if ray_address:
        from mmsearch.scale.jobs import maintain_on_ray

        done, where = maintain_on_ray(svc.settings, ray_address)
    else:
        done, where = svc.maintain_index(), None
    for line in done or ["nothing to do: the library is empty"]:
        click.echo(line, err=True)
    if where:
        click.echo(where, err=True)
