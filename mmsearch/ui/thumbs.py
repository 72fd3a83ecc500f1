"""Browser-friendly renditions of library images, cached on disk next to the library.

The gallery never sends originals: a 40 MB TIFF or a HEIC file would not display in a browser, and
a page of full-size photos is slow. Each rendition is keyed by (path, mtime, size, edge, rendering), so
an edited file gets a fresh one and the cache never serves a stale picture.

Transparent images are shown as a browser shows them, over white (`decode_image` flattens them).
RENDERING names how renditions are drawn: changing it (version 2: transparency over white instead of
black) re-renders the cached ones rather than serving the old drawing.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

from mmsearch.errors import BadMedia
from mmsearch.media.images import decode_image
from mmsearch.settings import Settings

THUMB_EDGE = 384
PREVIEW_EDGE = 1280
RENDERING = "2"


def thumbs_dir(settings: Settings) -> Path:
    """Absolute, because the web server's allowed_paths must be."""
    return Path(settings.data_dir).expanduser().resolve() / "thumbs"


class Renditions:
    def __init__(self, folder: Path, max_pixels: int) -> None:
        self.folder = Path(folder)
        self.max_pixels = max_pixels

    def get(self, path: str, edge: int = THUMB_EDGE) -> str | None:
        """A WebP no larger than edge x edge for path, or None if the file is gone or unreadable."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        key = hashlib.sha1(f"{path}\0{st.st_mtime_ns}\0{st.st_size}\0{edge}\0{RENDERING}".encode()).hexdigest()
        out = self.folder / key[:2] / f"{key}.webp"
        if out.is_file():
            return str(out)
        try:
            with open(path, "rb") as fh:
                decoded = decode_image(fh.read(), path, self.max_pixels, draft_size=edge)
        except (OSError, BadMedia):
            return None
        image = decoded.image
        image.thumbnail((edge, edge))
        return write_atomically(out, lambda fh: image.save(fh, format="WEBP", quality=82))


def write_atomically(out: Path, write: Callable[[BinaryIO], object]) -> str:
    """Write then rename: two requests rendering the same file never expose a half-written one."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, out)
    except BaseException:
        os.unlink(tmp)
        raise
    return str(out)
