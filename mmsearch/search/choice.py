"""Which codec a table's resident vectors use: a setting given to this process, else the library's own."""

from __future__ import annotations

import threading
import time

from mmsearch.search.codecs import check_setting
from mmsearch.store.library import Library
from mmsearch.store.table import SpaceTable

REREAD_S = 2.0  # a running server sees `mmsearch vectors int8` from another process within this


class LibraryVectors:
    """override (a --vectors flag or MMSEARCH_VECTORS) wins; otherwise library.json's "vectors", else auto."""

    def __init__(self, library: Library | None, override: str | None = None) -> None:
        self.library = library
        self.override = check_setting(override) if override else None
        self._read: tuple[float, str] | None = None
        self._lock = threading.Lock()

    def __call__(self, table: SpaceTable) -> str:
        if self.override or self.library is None:
            return self.override or "auto"
        now = time.monotonic()
        with self._lock:
            if self._read is None or now - self._read[0] > REREAD_S:
                try:
                    value = check_setting(self.library.vector_setting)
                except Exception:  # noqa: BLE001 - a hand-edited library.json must not stop searches
                    value = "auto"
                self._read = (now, value)
            return self._read[1]


RESIDENT_OVERHEAD = 8 + 8 + 4 + 1  # per row besides its code: row id, path hash, its sort position, liveness


def table_report(table: SpaceTable, setting: str, snapshot: object | None = None, rerank: int | None = None,
                 measure: bool = False, max_rows: int = 50_000) -> dict:
    """What `mmsearch status` / `mmsearch vectors` say of one table: the codec, its bytes per item and, when
    measure, its recall@10 against float32 exact on the table's own rows (search/retention.py)."""
    from mmsearch.search.codecs import Codec, parse_setting
    from mmsearch.search.resident import META_ROWS, ResidentIndex
    from mmsearch.search.retention import table_retention

    rows = table.count()
    kind, keep = ResidentIndex._codec_of(table, setting, rows)
    codec = Codec(kind, table.space.dim, keep=keep)
    asked = parse_setting(setting)[1]
    out = {"table": table.name, "setting": setting, "vectors": kind, "rows": rows,
           "dims": codec.kept_dim, "full_dims": table.space.dim,
           "vector_bytes_per_item": codec.bytes_per_vector,
           "bytes_per_item": codec.bytes_per_vector + RESIDENT_OVERHEAD, "measured_in_memory": False,
           "metadata_resident": rows <= META_ROWS}
    if asked and keep is None and asked < table.space.dim:
        out["dims_note"] = "every dimension: this model was not trained for Matryoshka truncation"
    stats = snapshot.stats() if snapshot is not None else None  # type: ignore[attr-defined]
    if stats and stats["vectors"] == kind and stats.get("dims") == codec.kept_dim:
        out.update(bytes_per_item=stats["bytes_per_item"], metadata_resident=stats["metadata_resident"],
                   measured_in_memory=True)
    if measure:
        out["retention"] = table_retention(table, kind, rerank, max_rows=max_rows, keep=keep).to_dict()
    return out
