"""A running server found before the CLI builds its settings.

Typed settings cost pydantic (~0.35 s of CPU to import) and the engine's modules numpy (~0.25 s); a search
that a running `mmsearch serve` answers needs neither. When the server answers, the CLI's settings decide
only which models must answer (the server must run the same ones, or the CLI searches in-process), how
many results to ask for, and how to sign in. The server records its model settings and their defaults as
text (server/record.py); the CLI compares what its flags and MMSEARCH_* variables say, field by field, and
asks at once when all agree. Anything it cannot tell for sure takes the full path (settings, then
server_for), which decides as before.
"""

from __future__ import annotations

import os
from typing import Any


def _no_server() -> bool:
    return os.environ.get("MMSEARCH_NO_SERVER", "") not in ("", "0", "false", "False")


def fast_server(root_obj: dict[str, Any]) -> str | None:
    """The URL of a live server on the library that answers with the models this command line names."""
    if _no_server():
        return None
    from mmsearch.defaults import default_data_dir
    from mmsearch.server.record import MODEL_FIELDS, read_record

    given = root_obj.get("overrides", {})  # root flags, and their MMSEARCH_* variables (click reads both)
    info = read_record(given.get("data_dir") or default_data_dir())
    if info is None or not isinstance(info.get("model_settings"), dict) or not isinstance(info.get("model_defaults"), dict):
        return None
    for field in MODEL_FIELDS:
        value = given.get(field)
        if value is None:
            value = os.environ.get("MMSEARCH_" + field.upper())
        if value is None:
            value = info["model_defaults"].get(field)
        if str(value) != info["model_settings"].get(field):
            return None
    return str(info["url"])


def default_k() -> int | None:
    """MMSEARCH_DEFAULT_K as the settings would read it, or None when it is not a clean value (the full path
    then reports it)."""
    from mmsearch.defaults import DEFAULT_K

    raw = os.environ.get("MMSEARCH_DEFAULT_K")
    if raw is None:
        return DEFAULT_K
    try:
        k = int(raw.strip())
    except ValueError:
        return None
    return k if 1 <= k <= 1000 else None
