"""Exporting result lists: CSV or JSON lines with rank, score, matched query parts and metadata; and
copying the files to a folder for hand-off (prefixed with their rank, so the order survives).

Works on any list of hits: fused answers (FusedHit), plain results (SearchResult), products, review
queues; anything that becomes a flat record through `records()`.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from mmsearch.errors import MMSearchError
from mmsearch.query.engine import FusedHit
from mmsearch.search.results import SearchResult

FORMATS = ("csv", "jsonl")
FIRST = ["rank", "path", "modality", "score", "fused_score", "matched"]  # CSV columns lead with these


class ExportError(MMSearchError):
    pass


def hit_record(hit: Any, rank: int) -> dict[str, Any]:
    """One flat record: rank, path, modality, score, fused score, matched parts, then metadata."""
    if hasattr(hit, "record"):  # products, queue entries: they know their own columns
        rec = hit.record()
        rec.setdefault("rank", rank)
        return rec
    if isinstance(hit, FusedHit):
        rec = hit.to_dict()
    elif isinstance(hit, SearchResult):
        rec = hit.to_dict() | {"fused_score": None, "matched": []}
    elif isinstance(hit, Mapping):
        rec = dict(hit)
    else:
        raise ExportError(f"cannot export a {type(hit).__name__}")
    return {"rank": rank, **rec}


def records(hits: Iterable[Any]) -> list[dict[str, Any]]:
    return [hit_record(h, rank) for rank, h in enumerate(hits, 1)]


def format_for(path: str | Path, fmt: str | None = None) -> str:
    fmt = (fmt or Path(path).suffix.lstrip(".")).lower()
    fmt = {"json": "jsonl", "ndjson": "jsonl"}.get(fmt, fmt)
    if fmt not in FORMATS:
        raise ExportError(f"cannot tell the export format of {Path(path).name}: name the file .csv or .jsonl")
    return fmt


def export(hits: Iterable[Any], path: str | Path, fmt: str | None = None) -> Path:
    """Write the hits to path (.csv or .jsonl); returns the path."""
    rows = records(hits)
    out = Path(path).expanduser()
    fmt = format_for(out, fmt)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        if fmt == "jsonl":
            for r in rows:
                fh.write(json.dumps(r, default=_json_default, ensure_ascii=False) + "\n")
        else:
            write_csv(rows, fh)
    os.replace(tmp, out)
    return out


def write_csv(rows: Sequence[Mapping[str, Any]], fh: Any) -> None:
    columns = [c for c in FIRST if any(c in r for r in rows)]
    for r in rows:
        columns += [c for c in r if c not in columns]
    writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        writer.writerow({c: _cell(r.get(c)) for c in columns})


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, list):
        return "; ".join(_matched(v) if isinstance(v, Mapping) else str(v) for v in value)
    if isinstance(value, Mapping):
        return json.dumps(value, default=_json_default)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _matched(c: Mapping[str, Any]) -> str:
    if "part" in c:
        return f"{c['part']} via {c.get('table', '')} ({c.get('kind', '')} #{c.get('rank', '')}, {c.get('score', '')})"
    return json.dumps(c, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def copy_files(paths: Sequence[str], folder: str | Path) -> list[Path]:
    """Copy each file to folder as NNN-name (its rank), skipping none silently: a missing file raises."""
    dest = Path(folder).expanduser()
    dest.mkdir(parents=True, exist_ok=True)
    width = max(3, len(str(len(paths))))
    out = []
    for rank, src in enumerate(paths, 1):
        if not os.path.isfile(src):
            raise ExportError(f"cannot copy {src}: the file is gone; index its folder again")
        target = dest / f"{rank:0{width}d}-{Path(src).name}"
        shutil.copy2(src, target)
        out.append(target)
    return out


def file_of(hit: Any) -> str:
    """The file behind a hit (a product's image, not its catalog row)."""
    if hasattr(hit, "image_file"):
        return hit.image_file
    if isinstance(hit, FusedHit):
        return hit.result.picture
    if isinstance(hit, SearchResult):
        return hit.picture
    if isinstance(hit, Mapping):
        product = hit.get("product") or {}
        return str(product.get("image_file") or hit["path"])
    return str(getattr(hit, "path"))
