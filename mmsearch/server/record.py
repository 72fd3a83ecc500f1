"""Where a running server listens: `server.json` in the library folder, written by `mmsearch serve`.

Standard library only: the CLI reads it before it imports pydantic or numpy, so a search answered by a
running server costs a fresh process little more than Python's own start.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

SERVER_FILE = "server.json"


# The settings that decide which models answer a query.
MODEL_FIELDS = ("encoder", "model", "pretrained", "extra_models", "text_model", "audio_model", "audio",
                "truncate_dim")


def models_of(settings: Any) -> str:
    """The models a server answers with, as the record keeps them."""
    return json.dumps([getattr(settings, f) for f in MODEL_FIELDS])


def model_fields(settings: Any) -> dict[str, str]:
    """The same settings as text, for a CLI that compares what it was given before it builds settings."""
    return {f: str(getattr(settings, f)) for f in MODEL_FIELDS}


def remember_server(data_dir: Path, url: str, models: str = "", fields: dict[str, str] | None = None,
                    defaults: dict[str, str] | None = None) -> Path | None:
    """fields / defaults: the server's model settings and their defaults, as text (cli/fast.py reads them)."""
    path = Path(data_dir) / SERVER_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"url": url, "pid": os.getpid(), "started": time.time(), "models": models,
                                   "model_settings": fields, "model_defaults": defaults}))
        os.replace(tmp, path)
        return path
    except OSError:
        return None  # a read-only library still serves; the CLI just won't find the server


def forget_server(record: Path | None) -> None:
    if record is None:
        return
    try:
        if json.loads(record.read_text()).get("pid") == os.getpid():
            record.unlink()
    except (OSError, ValueError):
        pass


def read_record(data_dir: Path) -> dict[str, Any] | None:
    """The record of a live server on this library, or None (no record, or a stale one whose process is gone)."""
    try:
        info = json.loads((Path(data_dir).expanduser() / SERVER_FILE).read_text())
        int(info["pid"]), str(info["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(int(info["pid"]), 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return info


def recorded_server(data_dir: Path, models: str | None = None) -> str | None:
    """The URL of a live server on this library answering with these models, or None (no record, a stale
    one whose process is gone, or a server with other models)."""
    info = read_record(data_dir)
    if info is None or (models is not None and info.get("models") != models):
        return None
    return str(info["url"])
