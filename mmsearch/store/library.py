"""A library: a data folder holding a LanceDB database, its indexed roots and an indexing lock."""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Iterator

from mmsearch.store import lazy_client

lazy_client.defer()
import lancedb  # noqa: E402  (after defer: see store/lazy_client.py)

from mmsearch.encoders.base import EmbeddingSpace
from mmsearch.errors import LibraryBusy, LibraryNotFound
from mmsearch.store.table import SpaceTable, table_schema, space_of, table_name
from mmsearch.store.video_table import VideoTable

ROOTS_FILE = "library.json"
NAMES_TTL_S = 2.0


class Library:
    def __init__(self, data_dir: Path, create: bool = True) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        if not (self.data_dir / "lancedb").is_dir():
            if not create:
                raise LibraryNotFound(
                    f"no library at {self.data_dir}; index a folder first "
                    f"(`mmsearch index PATH`) or point --data-dir / MMSEARCH_DATA_DIR at an existing one"
                )
            (self.data_dir / "lancedb").mkdir(parents=True, exist_ok=True)
        # Re-check the manifest at most once a second, so a server sees another process's commits.
        self.db = lancedb.connect(self.data_dir / "lancedb", read_consistency_interval=timedelta(seconds=1))
        self._lock = threading.Lock()
        self._names: tuple[float, list[str]] | None = None
        self._spaces: dict[str, tuple[str, EmbeddingSpace] | None] = {}
        self._open: dict[str, SpaceTable] = {}

    # -- tables ---------------------------------------------------------------------------------
    # Listing and opening tables costs a round trip each; queries ask for them every time, so the
    # handles are kept (they see new commits by themselves) and the name list is re-read every 2 s.
    def table_names(self) -> list[str]:
        now = time.monotonic()
        with self._lock:
            if self._names is None or now - self._names[0] > NAMES_TTL_S:
                self._names = (now, sorted(self.db.table_names(limit=10_000)))
            return self._names[1]

    def _described(self, name: str) -> tuple[str, EmbeddingSpace] | None:
        if name not in self._spaces:
            self._spaces[name] = space_of(self.db.open_table(name).schema)
        return self._spaces[name]

    def spaces(self, modality: str = "image") -> list[EmbeddingSpace]:
        return [found[1] for name in self.table_names()
                if (found := self._described(name)) is not None and found[0] == modality]

    def forget_names(self) -> None:
        """Another part of mmsearch created or dropped a table: list them afresh on the next ask."""
        with self._lock:
            self._names = None

    def tables(self, modality: str) -> list[SpaceTable]:
        """Every table of one modality that holds rows: what a query targeting it searches."""
        found = (self.table(modality, space) for space in self.spaces(modality))
        return [t for t in found if t is not None and t.count() > 0]

    def table(self, modality: str, space: EmbeddingSpace, create: bool = False) -> SpaceTable | None:
        name = table_name(modality, space)
        if name in self._open:
            return self._open[name]
        if name in self.table_names():
            handle = self.db.open_table(name)
        elif create:
            handle = self.db.create_table(name, schema=table_schema(space, modality), exist_ok=True)
            self._names = None
        else:
            return None
        table = (VideoTable if modality == "video" else SpaceTable)(handle, modality, space)
        self._open[name] = table
        return table

    def size_on_disk(self) -> int:
        total = 0
        for dirpath, _, files in os.walk(self.data_dir):
            total += sum((Path(dirpath) / f).stat().st_size for f in files)
        return total

    # -- roots ----------------------------------------------------------------------------------
    def _meta(self) -> dict:
        f = self.data_dir / ROOTS_FILE
        return json.loads(f.read_text()) if f.is_file() else {}

    @property
    def roots(self) -> list[str]:
        return self._meta().get("roots", [])

    @property
    def vector_setting(self) -> str:
        """How searches hold this library's vectors in memory: auto, float32, float16, int8 or binary."""
        return self._meta().get("vectors", "auto")

    def set_vector_setting(self, value: str) -> None:
        from mmsearch.search.codecs import check_setting

        self._write_meta(vectors=check_setting(value))

    def add_root(self, root: str) -> None:
        roots = self.roots
        if root not in roots:
            self._write_roots(roots + [root])

    def remove_root(self, root: str) -> None:
        self._write_roots([r for r in self.roots if r != root])

    def _write_roots(self, roots: list[str]) -> None:
        self._write_meta(roots=sorted(roots))

    def _write_meta(self, **changes: object) -> None:
        meta = {"version": 1, "roots": [], **self._meta(), **changes}
        tmp = self.data_dir / (ROOTS_FILE + ".tmp")
        tmp.write_text(json.dumps(meta, indent=2))
        os.replace(tmp, self.data_dir / ROOTS_FILE)  # atomic: a crash leaves the old or the new list

    def contains(self, path: str | Path) -> bool:
        """True if path lies inside an indexed root (symlinks resolved)."""
        real = os.path.realpath(path)
        for root in self.roots:
            base = os.path.realpath(root)
            if real == base or real.startswith(base.rstrip(os.sep) + os.sep):
                return True
        return False

    # -- writers --------------------------------------------------------------------------------
    @contextmanager
    def writer_lock(self) -> Iterator[None]:
        """One indexer per library; a second one is refused with a clear message."""
        path = self.data_dir / "index.lock"
        with open(path, "a+") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                holder = fh.read().strip() or "another process"
                raise LibraryBusy(
                    f"library {self.data_dir} is being indexed by {holder}; wait for it to finish"
                ) from None
            fh.seek(0)
            fh.truncate()
            fh.write(f"pid {os.getpid()}")
            fh.flush()
            try:
                yield
            finally:
                fh.truncate(0)
                fcntl.flock(fh, fcntl.LOCK_UN)
