"""Walking folders: every supported file once, no symlink loops, errors reported not raised."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Collection, Iterator

from mmsearch.media.images import supported_extensions

OnError = Callable[[str, str], None]
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def keyword_text(path: str, folders: int = 3) -> str:
    """Words a person might type to find this file: its name and its nearest folder names."""
    p = Path(path)
    parts = [p.stem, p.suffix.lstrip(".")] + [f.name for f in list(p.parents)[:folders]]
    return " ".join(w for part in parts for w in _WORD.findall(part))


@dataclass(frozen=True)
class FileEntry:
    path: str  # absolute
    size: int
    mtime_ns: int


def iter_media_files(root: Path, on_error: OnError | None = None,
                     extensions: Collection[str] | None = None) -> Iterator[FileEntry]:
    """Yield files with the given extensions (default: images) under root (or root itself), sorted per folder."""
    exts = supported_extensions() if extensions is None else frozenset(extensions)
    report = on_error or (lambda path, reason: None)
    root = Path(os.path.abspath(root))
    if root.is_file():
        st = root.stat()
        if root.suffix.lower() in exts:
            yield FileEntry(str(root), st.st_size, st.st_mtime_ns)
        return
    seen_dirs: set[tuple[int, int]] = set()
    stack = [str(root)]
    while stack:
        folder = stack.pop()
        try:
            st = os.stat(folder)
            if (st.st_dev, st.st_ino) in seen_dirs:
                continue
            seen_dirs.add((st.st_dev, st.st_ino))
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            report(folder, f"cannot read folder ({exc.strerror or exc})")
            continue
        subdirs = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    subdirs.append(entry.path)
                elif os.path.splitext(entry.name)[1].lower() in exts and entry.is_file():
                    if not _utf8(entry.path):
                        report(os.fsencode(entry.path).decode("utf-8", "backslashreplace"),
                               "file name is not valid UTF-8; rename the file to index it")
                        continue
                    st = entry.stat()
                    yield FileEntry(entry.path, st.st_size, st.st_mtime_ns)
            except OSError as exc:
                report(entry.path, f"cannot stat ({exc.strerror or exc})")
        stack.extend(reversed(subdirs))


def _utf8(path: str) -> bool:
    # Undecodable bytes arrive as surrogates; the library stores UTF-8 text, so such names are skipped.
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
