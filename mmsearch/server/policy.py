"""What the web server may touch on this machine: which folders it may index, where it may copy files.

The CLI runs as the user and may index anything the user can read; a web request may come from anyone who
reaches the port (or from a page open in the user's own browser), so the server indexes only inside folders the
operator allowed and writes only inside one export folder. Serving files is decided elsewhere: the server never
serves originals by path, only renditions it made (see mmsearch/ui/thumbs.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mmsearch.errors import MMSearchError
from mmsearch.settings import SAMPLE_LIBRARY, Settings


class NotAllowed(MMSearchError):
    """A web request asked for a folder outside what the operator allowed."""


def _real(path: str | Path) -> str:
    return os.path.realpath(os.path.abspath(os.path.expanduser(str(path))))


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


@dataclass
class WebPolicy:
    index_roots: list[str]  # real paths; indexing from the web is allowed in these and below
    export_root: str  # real path; board copies from the web land in here
    configured: bool  # True when the operator named the index roots (MMSEARCH_INDEX_ROOTS / --index-root)

    @classmethod
    def from_settings(cls, settings: Settings, library_roots: list[str] = (), sample_dir: Path | None = None
                      ) -> "WebPolicy":
        named = settings.index_root_list()
        roots = named if named else [*library_roots, str(sample_dir or SAMPLE_LIBRARY)]
        return cls([_real(r) for r in roots], _real(settings.export_dir()), bool(named))

    def with_library_roots(self, library_roots: list[str]) -> "WebPolicy":
        """The default policy follows the library: roots indexed since (from the CLI) become allowed too."""
        if self.configured:
            return self
        extra = [r for r in map(_real, library_roots) if r not in self.index_roots]
        return WebPolicy(self.index_roots + extra, self.export_root, False) if extra else self

    def check_index(self, folder: str | Path) -> str:
        """The real path of folder if the web may index it; NotAllowed with what to do otherwise."""
        real = _real(folder)
        if any(_inside(real, root) for root in self.index_roots):
            return real
        where = ", ".join(self.index_roots) or "nothing yet"
        raise NotAllowed(
            f"{folder} is outside the folders this server may index ({where}). To allow it, restart the server "
            f"with --index-root {real} (or MMSEARCH_INDEX_ROOTS), or index it from a terminal with "
            f"`mmsearch index {real}`"
        )

    def export_folder(self, folder: str) -> Path:
        """Where a board copy named folder goes: always inside the export root (relative names land in it)."""
        text = (folder or "").strip()
        if not text:
            raise NotAllowed("type the name of a folder to copy into")
        candidate = text if os.path.isabs(os.path.expanduser(text)) else os.path.join(self.export_root, text)
        real = _real(candidate)
        if not _inside(real, self.export_root):
            raise NotAllowed(
                f"{text} is outside the export folder {self.export_root}; the web app copies files only in there. "
                f"Type a folder name (it is created inside), or restart the server with --export-root"
            )
        return Path(real)
