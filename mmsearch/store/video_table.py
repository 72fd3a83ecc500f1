"""A table of video moments: one row per moment, keyed by the moment, kept and replaced file by file.

`path` is the moment's key, `<file>#t=<start>,<end>` (the form of an HTML media fragment), so everything
that works row by row (exact and ANN search, rescoring, fusion) works on moments unchanged, and the picture
table (image space) and the sound table (audio space) of the same moments share keys: fusion adds a
moment's picture and sound evidence. What works file by file (incremental indexing, deletion, reuse of
an identical file's vectors) goes through the `file` column instead, here.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mmsearch.store.sql import in_clauses, quote
from mmsearch.store.table import META_COLUMNS, ExistingRow, SpaceTable, _vectors

VIDEO_META = ["file", "start_s", "end_s", "frame_s", "fps", "codec"]
MOMENT_COLUMNS = ("start_s", "end_s", "frame_s", "offset_s")  # what differs between the moments of a file


def moment_key(file: str, start_s: float, end_s: float) -> str:
    return f"{file}#t={_num(start_s)},{_num(end_s)}"


def parse_moment(key: str) -> tuple[str, float, float] | None:
    """'clip.mp4#t=4,8' -> ('clip.mp4', 4.0, 8.0); None for anything that is not a moment key."""
    file, sep, span = key.rpartition("#t=")
    start, comma, end = span.partition(",")
    if not sep or not file or not comma:
        return None
    try:
        return file, float(start), float(end)
    except ValueError:
        return None


def moment_fields(key: str, modality: str) -> dict:
    """The moment a record's path names, as columns: file, start_s, end_s and a readable `moment`
    ('0:04–0:08'); the path itself as file (and None for the rest) for photos and sounds."""
    from mmsearch.media.timecode import span

    found = parse_moment(key) if modality == "video" else None
    if found is None:
        return {"file": key, "start_s": None, "end_s": None, "moment": None}
    return {"file": found[0], "start_s": found[1], "end_s": found[2], "moment": span(found[1], found[2])}


def _num(x: float) -> str:
    return f"{x:.3f}".rstrip("0").rstrip(".") or "0"


class VideoTable(SpaceTable):
    meta_columns = META_COLUMNS + VIDEO_META

    def existing_under(self, root: str) -> dict[str, ExistingRow]:
        prefix = root.rstrip("/") + "/"
        where = f"starts_with(file, {quote(prefix)}) OR file = {quote(root)}"
        rows: dict[str, ExistingRow] = {}
        for batch in self._scan(["file", "size", "mtime_ns"], where):
            cols = batch.to_pydict()
            for f, s, m in zip(cols["file"], cols["size"], cols["mtime_ns"]):
                rows[f] = ExistingRow(s, m)
        return rows

    def delete_paths(self, paths: Iterable[str]) -> int:
        """Every moment of these files."""
        return self._delete_in("file", paths)

    def upsert_rows(self, rows: list[dict]) -> None:
        """The moments of each file given replace all its moments, in one commit: a file whose cuts moved
        keeps no stale moment, and a crash leaves either the old moments or the new ones."""
        if not rows:
            return
        from mmsearch.store.table import rows_to_arrow

        files = sorted({r["file"] for r in rows})
        arrow = rows_to_arrow(rows, self.table.schema, self.space.dim)
        for chunk in _chunks(files, 500):
            mine = arrow.filter(pc.is_in(arrow.column("file"), value_set=pa.array(chunk, pa.string())))
            (self.table.merge_insert("path").when_matched_update_all().when_not_matched_insert_all()
             .when_not_matched_by_source_delete(next(in_clauses("file", chunk, len(chunk) + 1)))
             .execute(mine))
            self._wrote()

    def rows_for_hashes(self, hashes: Iterable[str], columns: Iterable[str]) -> dict[str, dict]:
        """hash -> {"moments": [...]}: what an identical file (a copy, a rename) reuses, all its moments."""
        found: dict[str, dict] = {}
        for where in in_clauses("hash", hashes):
            for batch in self._scan(["hash", "file", *MOMENT_COLUMNS, "vector"], where):
                vecs = _vectors(batch.column("vector"))
                for n, row in enumerate(batch.drop_columns(["vector"]).to_pylist()):
                    first = found.setdefault(row["hash"], {"file": row["file"], "moments": []})
                    if row["file"] == first["file"]:  # one file's moments, though several copies are indexed
                        first["moments"].append({**{c: row[c] for c in MOMENT_COLUMNS}, "vector": vecs[n]})
        for twin in found.values():
            twin.pop("file")
            twin["moments"].sort(key=lambda m: m["start_s"])
        return found

    def moments_of(self, file: str) -> list[tuple[float, float]]:
        """(start, end) of a file's moments, in time order."""
        spans = [(r["start_s"], r["end_s"]) for b in self._scan(["start_s", "end_s"], f"file = {quote(file)}")
                 for r in b.to_pylist()]
        return sorted(spans)

    def vectors_of_files(self, files: Iterable[str]) -> dict[str, list[np.ndarray]]:
        """file -> the vectors of its moments."""
        out: dict[str, list[np.ndarray]] = {}
        for where in in_clauses("file", files):
            for batch in self._scan(["file", "vector"], where):
                for file, vec in zip(batch.column("file").to_pylist(), _vectors(batch.column("vector"))):
                    out.setdefault(file, []).append(vec)
        return out

    def files_with_sound(self) -> set[str]:
        """Files whose container has a soundtrack (`channels` > 0): the sound side indexes only these."""
        return {f for b in self._scan(["file"], "channels > 0") for f in b.column(0).to_pylist()}

    def like_row(self, value: str) -> dict | None:
        """The moment meant by `FILE@SECONDS` (the one that holds that second), or by a moment key, or a
        file's first moment; with its vector."""
        file, at = split_at(value)
        where = f"path = {quote(value)} OR file = {quote(value)}" if at is None else f"file = {quote(file)}"
        rows = [r for b in self._scan(self.meta_columns + ["vector"], where) for r in b.to_pylist()]
        if not rows:
            return None
        exact = [r for r in rows if r["path"] == value]
        if exact:
            return exact[0]
        rows.sort(key=lambda r: r["start_s"])
        if at is None:
            return rows[0]
        inside = [r for r in rows if r["start_s"] <= at < r["end_s"]]
        return inside[0] if inside else rows[-1] if at >= rows[-1]["start_s"] else rows[0]


def split_at(value: str) -> tuple[str, float | None]:
    """'clip.mp4@12.5' -> ('clip.mp4', 12.5); anything else -> (value, None)."""
    file, sep, tail = value.rpartition("@")
    if not sep or not file:
        return value, None
    try:
        at = float(tail)
    except ValueError:
        return value, None
    return (file, at) if at >= 0 and np.isfinite(at) else (value, None)


def _chunks(items: list[str], n: int) -> Iterable[list[str]]:
    for i in range(0, len(items), n):
        yield items[i:i + n]
