"""Defaults that the typed settings and the light CLI paths share (no pydantic, no numpy here)."""

from __future__ import annotations

from pathlib import Path

DEFAULT_K = 12  # results per query


def default_data_dir() -> Path:
    from platformdirs import user_data_path

    return user_data_path("mmsearch") / "library"
