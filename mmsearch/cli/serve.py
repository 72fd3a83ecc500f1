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
    _check_port(settings.host, settings.port)  # before gradio and the models load: a busy port answers at once
    from mmsearch.ui.app import launch

    try:
        launch(settings, share=share)
    except OSError as exc:
        if "port" not in str(exc).lower():
            raise
        raise click.ClickException(_busy(settings.host, settings.port)) from None  # taken meanwhile


def _busy(host: str, port: int) -> str:
    return (f"port {port} on {host} is already in use (another mmsearch serve?); "
            f"choose a free one with --port N (or MMSEARCH_PORT)")


def _check_port(host: str, port: int) -> None:
    """Bind the address once, the way the web server will (SO_REUSEADDR, so a closing socket is no obstacle)."""
    import errno
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise click.BadParameter(f"cannot use host {host!r}: {exc.strerror}", param_hint="--host") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except PermissionError:
            raise click.ClickException(f"port {port} needs administrator rights here; choose one above 1023 "
                                       f"with --port N") from None
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise click.ClickException(_busy(host, port)) from None
            raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}; check --host and --port") from None
