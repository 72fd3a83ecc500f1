"""The CLI's way to a running server: when `mmsearch serve` runs on the library, ask it.

The server holds the model warm, so a search answers in milliseconds instead of seconds of loading. This
module imports nothing heavy (no torch, no lancedb): only the standard library. A missing, stale or
unreachable server returns None and the caller searches in-process, so the CLI never depends on it.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

TIMEOUT_S = 30.0


def _auth_header(auth: str | None) -> dict[str, str]:
    if not auth:
        return {}
    return {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()}


def part_json(kind: str, value: str, weight: float) -> dict[str, Any]:
    """A CLI part as the API takes it: files travel as bytes (the server reads no path it is given)."""
    if kind in ("text", "like"):
        return {"kind": kind, "value": value, "weight": weight}
    if kind == "composed":
        image, instruction = value
        return {"kind": kind, "data": base64.b64encode(Path(image).read_bytes()).decode(),
                "name": Path(image).name, "instruction": instruction, "weight": weight}
    return {"kind": kind, "data": base64.b64encode(Path(value).read_bytes()).decode(), "name": Path(value).name,
            "weight": weight}


def ask(url: str, body: dict[str, Any], auth: str | None = None) -> dict[str, Any] | None:
    """POST /api/v1/search; None when the server cannot be reached (the caller falls back)."""
    req = urllib.request.Request(url.rstrip("/") + "/api/v1/search", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json", **_auth_header(auth)})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
            return json.loads(resp.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError, ValueError):
        return None


def server_for(settings: Any) -> str | None:
    """A live server on this library with the same models, unless MMSEARCH_NO_SERVER is set."""
    if os.environ.get("MMSEARCH_NO_SERVER", "") not in ("", "0", "false", "False"):
        return None
    from mmsearch.server.http import fingerprint, recorded_server

    return recorded_server(settings.data_dir, fingerprint(settings))


def local_record(result: dict[str, Any]) -> dict[str, Any]:
    """The API's result as the CLI prints it locally ("file" back to "path")."""
    return {("path" if k == "file" else k): v for k, v in result.items() if k != "thumb"}
