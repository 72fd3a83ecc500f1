"""What every decoder checks before it opens a file: that it can be read and is not empty."""

from __future__ import annotations

import os

from mmsearch.errors import BadMedia


def readable_size(path: str) -> int:
    """The file's size; BadMedia naming the file when it cannot be read or holds nothing."""
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise BadMedia(path, f"cannot read ({exc.strerror or exc})") from None
    if size == 0:
        raise BadMedia(path, "empty file (0 bytes)")
    return size
