"""`mmsearch serve`: the web app."""

from __future__ import annotations

import click

from mmsearch.cli.common import friendly, settings_of


@click.command()
@click.option("--host", default=None, help="Bind address (default 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port (default 7860, MMSEARCH_PORT).")
@click.option("--share", is_flag=True, help="Open a public Gradio share link (off by default).")
@click.option("--auth", envvar="MMSEARCH_AUTH", help="user:password required for the UI and the API.")
@click.pass_context
@friendly
def serve(ctx: click.Context, host: str | None, port: int | None, share: bool, auth: str | None) -> None:
    """Run the web app."""
    from mmsearch.ui.app import launch

    settings = settings_of(ctx)
    if auth:
        settings.auth = auth
    try:
        settings.auth_pair()
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--auth") from None
    if host:
        settings.host = host
    if port:
        settings.port = port
    if share or settings.host not in ("127.0.0.1", "localhost", "::1"):
        click.echo("warning: the app will be reachable from other machines; anyone who reaches it can "
                   "search and index folders on this computer" + ("" if settings.auth else
                   ". Protect it with --auth user:password"), err=True)
    launch(settings, share=share)
