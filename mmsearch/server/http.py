"""The FastAPI application: the request guard, mmsearch's own routes, and the Gradio UI mounted at /.

We run uvicorn ourselves (instead of Gradio's launch) so the guard wraps every route, Gradio's included, and so
the JSON API can live beside the UI under the same auth. The server records where it listens in the library
folder (server.json) so the CLI can ask it instead of loading a model itself.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from mmsearch.errors import MMSearchError
from mmsearch.server.guard import RequestGuard, accepted_hosts, is_loopback
from mmsearch.server.record import (SERVER_FILE, forget_server, model_fields, models_of,  # noqa: F401
                                    recorded_server, remember_server)
from mmsearch.settings import Settings

class ServerError(MMSearchError):
    """The server cannot start as asked (busy port, unsafe bind)."""


def check_bind(settings: Settings) -> None:
    """A server on another interface than loopback needs --auth, unless the operator insists."""
    if is_loopback(settings.host) or settings.auth or settings.insecure_no_auth:
        return
    raise ServerError(
        f"--host {settings.host} makes the app reachable from other machines, where anyone could search and "
        f"index folders on this computer; protect it with --auth user:password (or MMSEARCH_AUTH), or pass "
        f"--insecure-no-auth if the network is yours alone"
    )


def create_app(settings: Settings, demo: Any, launch_options: dict[str, Any], routes: Any = None):
    """demo: the built Gradio Blocks; routes: a callable adding mmsearch's own routes to the FastAPI app."""
    import gradio as gr
    from fastapi import FastAPI

    app = FastAPI(title="mmsearch", version="1", docs_url="/docs", openapi_url="/openapi.json", redoc_url=None)
    if routes is not None:
        routes(app)
    gr.mount_gradio_app(app, demo, path="", **launch_options)
    demo.has_launched = True  # Gradio checks allowed paths on returned files only once "launched"
    return RequestGuard(app, accepted_hosts(settings.host, settings.allowed_hosts))


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on accepted sockets whose proto says
    # TCP. With proto 0 every answer on a kept-alive connection waited ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno in (98, 48, 10048):  # EADDRINUSE on Linux, macOS, Windows
            raise ServerError(f"port {port} on {host} is already in use (another mmsearch serve, or another "
                              f"program); choose a free one with --port") from None
        raise ServerError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; check --host and --port") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


@dataclass
class Running:
    url: str
    server: Any
    thread: threading.Thread
    demo: Any
    record: Path | None
    warming: threading.Thread | None = None  # loading the models ahead of the first search (warm_up_in_background)

    def close(self) -> None:
        forget_server(self.record)
        try:  # first the queue and its heartbeats, so open event streams end before the server stops
            self.demo.close(verbose=False)
        except Exception:  # noqa: BLE001 - closing a half-started app must not mask the first error
            pass
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def wait(self) -> None:
        """Block until interrupted (Ctrl-C), then shut down."""
        try:
            while self.thread.is_alive():
                self.thread.join(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.close()


def start(settings: Settings, asgi_app: Any, demo: Any, record_in: Path | None = None) -> Running:
    """Listen on settings.host:settings.port in a background thread; returns once it accepts requests."""
    import uvicorn

    check_bind(settings)
    sock = _bind(settings.host, settings.port)
    port = sock.getsockname()[1]
    config = uvicorn.Config(asgi_app, log_level="warning", access_log=False, timeout_graceful_shutdown=2,
                            lifespan="on", limit_concurrency=None)
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # the main thread keeps Ctrl-C
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="mmsearch-http", daemon=True)
    thread.start()
    started = time.monotonic()
    while not server.started:
        if not thread.is_alive() or time.monotonic() - started > 60:
            raise ServerError(f"the web server did not start on {settings.host}:{port}")
        time.sleep(0.01)
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    shown = "127.0.0.1" if settings.host in ("0.0.0.0", "") else "::1" if settings.host == "::" else host
    url = f"http://{shown}:{port}/"
    record = None
    if record_in is not None:
        record = remember_server(record_in, url, fingerprint(settings), model_fields(settings),
                                 model_fields(Settings.model_construct()))
    return Running(url, server, thread, demo, record)


def warm_up_in_background(service: Any, say: Callable[[Any], None] | None = None) -> threading.Thread:
    """service.warm_up() in a daemon thread: the server already answers while the models load, and a search
    arriving meanwhile waits on the same loads instead of starting its own."""

    def run() -> None:
        done = service.warm_up()
        if say is not None:
            say(done)

    thread = threading.Thread(target=run, name="mmsearch-warm-up", daemon=True)
    thread.start()
    return thread


# -- where a server listens, for the CLI (server/record.py) -------------------------------------------
def fingerprint(settings: Settings) -> str:
    """The models a server answers with: a CLI asked for other models searches in-process instead."""
    return models_of(settings)

