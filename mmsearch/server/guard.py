"""Requests the server refuses before any route sees them: foreign Host headers and cross-site writes.

A server on 127.0.0.1 is reachable from every web page the user opens. Two attacks follow:
- DNS rebinding: evil.example resolves to 127.0.0.1, so the page's requests reach the server with
  `Host: evil.example`. A loopback server accepts only loopback host names (and those the operator adds).
- Cross-site requests: a page on another origin posts to the server (e.g. "index my home folder"). Browsers
  mark such requests with `Origin` and `Sec-Fetch-Site`; a state-changing request (anything but
  GET/HEAD/OPTIONS) from another origin is refused. Programs (curl, gradio_client) send no Origin and pass.
"""

from __future__ import annotations

import ipaddress
import json
from urllib.parse import urlsplit

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def accepted_hosts(bound: str, extra: str = "") -> frozenset[str] | None:
    """Host names a request may carry; None when any name goes (a server bound to every interface with no
    names configured: it is meant to be reached by whatever name the network gives it, behind --auth)."""
    names = {h.strip().lower() for h in extra.split(",") if h.strip()}
    if is_loopback(bound):
        return frozenset(LOOPBACK_NAMES | names)
    if bound in ("0.0.0.0", "::", ""):
        return frozenset(names | LOOPBACK_NAMES) if names else None
    return frozenset({bound.lower(), *LOOPBACK_NAMES, *names})


def _hostname(host_header: str) -> str:
    """'127.0.0.1:7860' -> '127.0.0.1'; '[::1]:7860' -> '::1'."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class RequestGuard:
    """ASGI middleware: refuses a foreign Host (421) and cross-origin state-changing requests (403)."""

    def __init__(self, app, hosts: frozenset[str] | None) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host", "")
        problem = self._problem(scope, headers, host)
        if problem is None:
            return await self.app(scope, receive, send)
        status, message = problem
        if scope["type"] == "websocket":
            return await send({"type": "websocket.close", "code": 1008})
        body = json.dumps({"ok": False, "message": message}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    def _problem(self, scope, headers: dict[str, str], host: str) -> tuple[int, str] | None:
        if self.hosts is not None and _hostname(host) not in self.hosts:
            return 421, (f"this server does not answer for host {host or '(none)'}; use http://127.0.0.1 or add "
                         f"the name with --allowed-host")
        method = scope.get("method", "GET") if scope["type"] == "http" else "WEBSOCKET"
        if method in SAFE_METHODS:
            return None
        origin = headers.get("origin")
        if origin is not None and origin != "null":
            if urlsplit(origin).netloc.lower() != host.strip().lower():
                return 403, f"cross-site request from {origin} refused"
        elif origin == "null" or headers.get("sec-fetch-site") == "cross-site":
            return 403, "cross-site request refused"
        return None
