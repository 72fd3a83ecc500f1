"""`mmsearch serve`: the web app (see mmsearch/server for what it exposes)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from mmsearch.cli.common import friendly, settings_of


@click.command()
@click.option("--host", default=None, help="Bind address (default 127.0.0.1). Another address makes the app "
              "reachable from other machines and needs --auth (or --insecure-no-auth).")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Port (default 7860, MMSEARCH_PORT).")
@click.option("--auth", envvar="MMSEARCH_AUTH", help="user:password required for the UI and the API.")
@click.option("--index-root", "index_roots", multiple=True, type=click.Path(path_type=Path),
              help="A folder the web app may index (with its subfolders); repeat for more. Default: the "
                   "library's own folders and the sample library.")
@click.option("--export-root", type=click.Path(path_type=Path),
              help="The folder the web app may copy boards into (default: <data dir>/exports).")
@click.option("--allowed-host", "allowed_hosts", multiple=True,
              help="Another Host name to answer for (a DNS name in front of the server); repeat for more.")
@click.option("--insecure-no-auth", is_flag=True, default=None,
              help="Serve a non-loopback --host without --auth (anyone who reaches the port can use the app).")
@click.pass_context
@friendly
def serve(ctx: click.Context, host: str | None, port: int | None, auth: str | None, index_roots: tuple[Path, ...],
          export_root: Path | None, allowed_hosts: tuple[str, ...], insecure_no_auth: bool | None) -> None:
    """Run the web app."""
    from mmsearch.server.guard import is_loopback
    from mmsearch.server.http import check_bind

    settings = settings_of(ctx)
    if auth:
        settings.auth = auth
    try:
        settings.auth_pair()
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--auth") from None
    if host:
        settings.host = host
    if port is not None:
        settings.port = port
    if index_roots:
        settings.index_roots = os.pathsep.join(str(p.expanduser().resolve()) for p in index_roots)
    if export_root:
        settings.export_root = export_root.expanduser().resolve()
    if allowed_hosts:
        settings.allowed_hosts = ",".join(filter(None, [settings.allowed_hosts, *allowed_hosts]))
    if insecure_no_auth:
        settings.insecure_no_auth = True
    if not is_loopback(settings.host):
        click.echo("warning: the app will be reachable from other machines; anyone who reaches it and knows "
                   "the password can search and index the allowed folders" + ("" if settings.auth else
                   " (no password: --insecure-no-auth)"), err=True)
    check_bind(settings)  # a non-loopback bind needs --auth: said before anything loads
    _check_port(settings.host, settings.port)  # before gradio and the models load: a busy port answers at once
    # Before torch loads OpenMP: its threads otherwise spin-wait between calls, and with many users on a busy
    # machine that spinning took half the server's CPU (bench/bench_serving.py: 99 ms of CPU per text query
    # against 45 ms, 8.7 answers/s against 21.8 for 20 clients). An OMP_WAIT_POLICY already set is kept.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from mmsearch.ui.app import launch

    launch(settings)


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
