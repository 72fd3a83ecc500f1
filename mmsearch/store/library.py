"""A library: a LanceDB database (in a local folder or under an object-store prefix), its indexed roots and an
indexing lock."""

from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Iterator

from mmsearch import lazy_imports

lazy_imports.defer()
import lancedb  # noqa: E402  (after defer: see lazy_imports.py)

from mmsearch.encoders.base import EmbeddingSpace
from mmsearch.errors import LibraryNotFound
from mmsearch.location import Location, cache_dir_for, is_uri, parse_location
from mmsearch.store.meta import INTERNAL_TABLES, FileMeta, TableMeta
from mmsearch.store.table import SpaceTable, table_schema, space_of, table_name
from mmsearch.store.video_table import VideoTable

NAMES_TTL_S = 2.0


class Library:
    def __init__(self, where: Path | str | Location, create: bool = True, consistency_s: float = 1.0) -> None:
        self.location = where if isinstance(where, Location) else parse_location(where)
        # A remote library keeps what a replica writes for itself (thumbnails, exports) in a local cache folder.
        self.data_dir = self.location.local or cache_dir_for(self.location)
        if self.location.remote:
            self._connect(consistency_s)
            self._check_remote(create)
        else:
            self._make_local(create)
            self._connect(consistency_s)
        self._metadata = TableMeta(self.db) if self.location.remote else FileMeta(self.data_dir)
        self._lock = threading.Lock()
        self._names: tuple[float, list[str]] | None = None
        self._spaces: dict[str, tuple[str, EmbeddingSpace] | None] = {}
        self._open: dict[str, SpaceTable] = {}

    def _connect(self, consistency_s: float) -> None:
        # Re-check the manifest at most once per interval, so a server sees another process's commits.
        self.db = lancedb.connect(self.location.join("lancedb"), storage_options=dict(self.location.storage_options),
                                  read_consistency_interval=timedelta(seconds=consistency_s))

    def _missing(self) -> LibraryNotFound:
        return LibraryNotFound(
            f"no library at {self.location}; index a folder first "
            f"(`mmsearch index PATH`) or point --data-dir / MMSEARCH_DATA_DIR at an existing one"
        )

    def _make_local(self, create: bool) -> None:
        if not (self.data_dir / "lancedb").is_dir():
            if not create:
                raise self._missing()
            (self.data_dir / "lancedb").mkdir(parents=True, exist_ok=True)

    def _check_remote(self, create: bool) -> None:
        # An object store has no folders: a library exists once its first table (metadata included) does.
        if not create and not self.db.table_names(limit=10_000):
            raise self._missing()

    # -- tables ---------------------------------------------------------------------------------
    # Listing and opening tables costs a round trip each; queries ask for them every time, so the
    # handles are kept (they see new commits by themselves) and the name list is re-read every 2 s.
    def table_names(self) -> list[str]:
        now = time.monotonic()
        with self._lock:
            if self._names is None or now - self._names[0] > NAMES_TTL_S:
                names = self.db.table_names(limit=10_000)
                self._names = (now, sorted(n for n in names if n not in INTERNAL_TABLES))
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
        if self.location.remote:
            return 0  # not listed: walking a bucket prefix costs a request per thousand objects
        total = 0
        for dirpath, _, files in os.walk(self.data_dir):
            total += sum((Path(dirpath) / f).stat().st_size for f in files)
        return total

    # -- roots ----------------------------------------------------------------------------------
    def _meta(self) -> dict:
        return self._metadata.read()

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
        self._metadata.write({"version": 1, "roots": [], **self._meta(), **changes})

    def contains(self, path: str | Path) -> bool:
        """True if path lies inside an indexed root (symlinks resolved; object URIs compared as text)."""
        if is_uri(str(path)):
            return any(str(path) == r or str(path).startswith(r.rstrip("/") + "/") for r in self.roots)
        real = os.path.realpath(path)
        for root in self.roots:
            if is_uri(root):
                continue
            base = os.path.realpath(root)
            if real == base or real.startswith(base.rstrip(os.sep) + os.sep):
                return True
        return False

    # -- writers --------------------------------------------------------------------------------
    @contextmanager
    def writer_lock(self) -> Iterator[None]:
        """One indexer per library; a second one is refused with a clear message."""
        with self._metadata.lock(str(self.location)):
            yield
