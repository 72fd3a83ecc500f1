"""A library's small metadata (roots, the vectors setting) and its one-indexer lock.

A local library keeps them in library.json (replaced atomically) and index.lock (fcntl). An object store has
neither rename nor flock, so a remote library keeps them in two small Lance tables and relies on what Lance
commits guarantee: each commit is atomic and commits are totally ordered (version N+1 is written with
put-if-absent). The lock is a claim appended to a table; the earliest live claim holds it.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa

from mmsearch.errors import LibraryBusy

ROOTS_FILE = "library.json"
META_TABLE = "mmsearch_meta"
LOCK_TABLE = "mmsearch_lock"
CLAIM_TTL_S = 6 * 3600.0  # a claim from another machine older than this is taken as abandoned
INTERNAL_TABLES = frozenset({META_TABLE, LOCK_TABLE})


class FileMeta:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def read(self) -> dict:
        f = self.folder / ROOTS_FILE
        return json.loads(f.read_text()) if f.is_file() else {}

    def write(self, meta: dict) -> None:
        tmp = self.folder / (ROOTS_FILE + ".tmp")
        tmp.write_text(json.dumps(meta, indent=2))
        os.replace(tmp, self.folder / ROOTS_FILE)  # atomic: a crash leaves the old or the new list

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        with open(self.folder / "index.lock", "a+") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                holder = fh.read().strip() or "another process"
                raise LibraryBusy(f"library {name} is being indexed by {holder}; wait for it to finish") from None
            fh.seek(0)
            fh.truncate()
            fh.write(f"pid {os.getpid()}")
            fh.flush()
            try:
                yield
            finally:
                fh.truncate(0)
                fcntl.flock(fh, fcntl.LOCK_UN)


_META_SCHEMA = pa.schema([("key", pa.string()), ("value", pa.string())])
_LOCK_SCHEMA = pa.schema([("token", pa.string()), ("host", pa.string()), ("pid", pa.int64()),
                          ("claimed_at", pa.float64())])


class TableMeta:
    """Metadata as key -> JSON rows of a Lance table; the lock as claims in another."""

    def __init__(self, db: Any) -> None:
        self.db = db

    def _table(self, name: str, schema: pa.Schema) -> Any:
        return self.db.create_table(name, schema=schema, exist_ok=True)

    def read(self) -> dict:
        if META_TABLE not in self.db.table_names(limit=10_000):
            return {}
        rows = self.db.open_table(META_TABLE).to_arrow().to_pylist()
        return {r["key"]: json.loads(r["value"]) for r in rows}

    def write(self, meta: dict) -> None:
        rows = pa.table({"key": list(meta), "value": [json.dumps(v) for v in meta.values()]}, schema=_META_SCHEMA)
        table = self._table(META_TABLE, _META_SCHEMA)
        table.merge_insert("key").when_matched_update_all().when_not_matched_insert_all().execute(rows)

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        table = self._table(LOCK_TABLE, _LOCK_SCHEMA)
        token = uuid.uuid4().hex
        host = socket.gethostname()
        table.add(pa.table({"token": [token], "host": [host], "pid": [os.getpid()],
                            "claimed_at": [time.time()]}, schema=_LOCK_SCHEMA))
        try:
            holder = _first_live_claim(table, host)
            if holder is not None and holder["token"] != token:
                raise LibraryBusy(f"library {name} is being indexed by pid {holder['pid']} on {holder['host']}; "
                                  "wait for it to finish")
            yield
        finally:
            table.delete(f"token = '{token}'")


def _first_live_claim(table: Any, host: str) -> dict | None:
    """Claims in commit order (row ids grow with each append); abandoned ones are dropped on the way."""
    claims = table.search().with_row_id(True).limit(None).to_arrow().sort_by("_rowid").to_pylist()
    for claim in claims:
        if _abandoned(claim, host):
            table.delete(f"token = '{claim['token']}'")
            continue
        return claim
    return None


def _abandoned(claim: dict, host: str) -> bool:
    if claim["host"] == host and claim["pid"] != os.getpid():
        try:
            os.kill(int(claim["pid"]), 0)
        except ProcessLookupError:
            return True  # killed (kill -9) on this machine: its claim must not block the rerun
        except PermissionError:
            return False
    return time.time() - claim["claimed_at"] > CLAIM_TTL_S
