"""Metadata filters: parsed and validated once, then compiled two ways.

The same filter becomes a SQL predicate for LanceDB (pre-filter inside the vector, ANN and keyword
searches) and a boolean mask over the in-memory copy used by the exact search, so a non-matching row
never reaches the ranked lists whichever path answers.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mmsearch.errors import BadQuery, UnknownColumn

OPS = ("!=", ">=", "<=", "=", ">", "<", "~", "^")
_COND = re.compile(r"^\s*([A-Za-z_][\w .-]*?)\s*(!=|>=|<=|=|>|<|~|\^)\s*(.*?)\s*$")
_EXT_FORMATS = {"jpg": "JPEG", "jpeg": "JPEG", "jpe": "JPEG", "tif": "TIFF", "heic": "HEIF", "oga": "OGG"}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
DATE_COLUMN = "mtime_ns"  # "date" in filters means the file's modification time


@dataclass(frozen=True)
class Condition:
    column: str
    op: str  # one of OPS; "~" contains (case-insensitive; element of a list column), "^" starts with
    value: Any


@dataclass
class Filters:
    conditions: list[Condition] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.conditions)

    def sql(self) -> str | None:
        return " AND ".join(_sql(c) for c in self.conditions) or None

    def mask(self, table: pa.Table) -> np.ndarray:
        keep = np.ones(table.num_rows, dtype=bool)
        for c in self.conditions:
            keep &= _mask(table.column(c.column), c)
        return keep


def normalise_folder(folder: str) -> str:
    """A folder as the library stores paths: absolute, with ~ expanded, symlinks kept (the indexer
    stores os.path.abspath of what it walked, so resolving links here would miss those rows).

    The one place --folder (CLI), the Folder box (UI) and QueryOptions.folder (engine) are read."""
    return os.path.abspath(os.path.expanduser(folder.strip()))


def parse_condition(text: str) -> tuple[str, str, str]:
    m = _COND.match(text)
    if not m:
        raise BadQuery(
            f"cannot read filter {text!r}: write COLUMN OP VALUE with OP one of {' '.join(OPS)}, "
            f"e.g. width>=1000, format=JPEG, tags~beach, folder^/home/me/Pictures"
        )
    return m.group(1).strip(), m.group(2), m.group(3)


def build_filters(
    schema: pa.Schema,
    where: Iterable[str] = (),
    folder: str | None = None,
    types: Iterable[str] = (),
    after: str | None = None,
    before: str | None = None,
) -> Filters:
    """Validate user filters against a table schema; every mistake names the value and the fix."""
    raw = [parse_condition(w) for w in where]
    if folder and folder.strip():  # a folder and everything below it, never its namesake siblings (Pictures2)
        raw.append(("path", "^", normalise_folder(folder).rstrip(os.sep) + os.sep))
    if after:
        raw.append(("date", ">=", after))
    if before:
        raw.append(("date", "<", before))
    conditions = [_typed(schema, col, op, val) for col, op, val in raw]
    fmts = [_EXT_FORMATS.get(t.lower().lstrip("."), t.upper().lstrip(".")) for t in types if t.strip()]
    if fmts:
        conditions.append(Condition("format", "in", tuple(dict.fromkeys(fmts))))
    _check_contradictions(conditions)
    return Filters(conditions)


def _typed(schema: pa.Schema, column: str, op: str, value: str) -> Condition:
    if column == "date":
        return Condition(DATE_COLUMN, op, _date_ns(value, column))
    if schema.get_field_index(column) < 0 or column == "vector":
        names = ", ".join(["date"] + [f.name for f in schema if f.name != "vector"])
        raise UnknownColumn(f"unknown filter column {column!r}; filterable columns: {names}")
    typ = schema.field(column).type
    if pa.types.is_list(typ):
        if op not in ("~", "="):
            raise BadQuery(f"{column} holds a list: filter it with {column}~VALUE (contains)")
        return Condition(column, "~", value)
    if op in ("~", "^"):
        if not pa.types.is_string(typ):
            raise BadQuery(f"{column} is not text: use = != > >= < <= with a number")
        return Condition(column, op, value)
    if pa.types.is_timestamp(typ):  # compared as a moment in time, never as a bare integer
        return Condition(column, op, _moment(value, column))
    if pa.types.is_integer(typ) or pa.types.is_floating(typ):
        try:
            num: Any = int(value) if pa.types.is_integer(typ) else float(value)
        except ValueError:
            kind = "a whole number" if pa.types.is_integer(typ) else "a number"
            raise BadQuery(f"filter {column}{op}{value!r}: {column} needs {kind}") from None
        return Condition(column, op, num)
    return Condition(column, op, value)


def _moment(value: str, column: str) -> datetime:
    """A date or date-time; without a zone it is UTC, as stored."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadQuery(f"cannot read date {value!r} for {column}: use YYYY-MM-DD or YYYY-MM-DDTHH:MM") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def _date_ns(value: str, column: str) -> int:
    return (_moment(value, column) - _EPOCH) // timedelta(microseconds=1) * 1000  # exact, no float rounding


def _check_contradictions(conditions: list[Condition]) -> None:
    by_col: dict[str, list[Condition]] = {}
    for c in conditions:
        by_col.setdefault(c.column, []).append(c)
    for col, conds in by_col.items():
        eqs = {c.value for c in conds if c.op == "="}
        if len(eqs) > 1:
            raise BadQuery(f"contradictory filters: {col} cannot equal {' and '.join(map(str, sorted(eqs, key=str)))}")
        lows = [(c.value, c.op) for c in conds if c.op in (">", ">=")]
        highs = [(c.value, c.op) for c in conds if c.op in ("<", "<=")]
        if lows and highs:
            lo, lo_op = max(lows, key=lambda v: v[0])
            hi, hi_op = min(highs, key=lambda v: v[0])
            if lo > hi or (lo == hi and (lo_op, hi_op) != (">=", "<=")):
                shown = "date" if col == DATE_COLUMN else col
                raise BadQuery(f"contradictory filters: {shown} {lo_op} {_show(lo, col)} and {shown} {hi_op} {_show(hi, col)} match nothing")


def _show(value: Any, column: str) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if column == DATE_COLUMN:
        return datetime.fromtimestamp(value / 1e9, timezone.utc).isoformat()
    return str(value)


def _ident(column: str) -> str:
    return column if re.fullmatch(r"[A-Za-z_]\w*", column) else f"`{column}`"


def _lit(value: Any) -> str:
    if isinstance(value, datetime):  # a typed literal; DataFusion converts the zone to the column's
        return f"timestamp '{value.isoformat()}'"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


def _sql(c: Condition) -> str:
    col = _ident(c.column)
    if c.op == "in":
        return f"{col} IN ({', '.join(_lit(v) for v in c.value)})"
    if c.op == "^":
        return f"starts_with({col}, {_lit(c.value)})"
    if c.op == "~":
        if c.column == "tags":
            return f"array_has({col}, {_lit(c.value)})"
        escaped = c.value.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return f"lower({col}) LIKE {_lit('%' + escaped + '%')}"
    return f"{col} {'<>' if c.op == '!=' else c.op} {_lit(c.value)}"


_CMP = {"=": pc.equal, "!=": pc.not_equal, ">": pc.greater, ">=": pc.greater_equal, "<": pc.less, "<=": pc.less_equal}


def _mask(column: pa.ChunkedArray, c: Condition) -> np.ndarray:
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if c.op == "~" and pa.types.is_list(arr.type):
        flat = pc.list_flatten(arr)
        parents = pc.list_parent_indices(arr).to_numpy()
        hits = pc.fill_null(pc.equal(flat, c.value), False).to_numpy(zero_copy_only=False)
        out = np.zeros(len(arr), dtype=bool)
        out[parents[hits]] = True
        return out
    if c.op == "in":
        result = pc.is_in(arr, value_set=pa.array(list(c.value), arr.type))
    elif c.op == "^":
        result = pc.starts_with(arr, c.value)
    elif c.op == "~":
        result = pc.match_substring(arr, c.value, ignore_case=True)
    else:
        result = _CMP[c.op](arr, pa.scalar(c.value, arr.type))
    return pc.fill_null(result, False).to_numpy(zero_copy_only=False)
