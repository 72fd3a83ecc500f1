"""Mood boards: named collections of pinned results, stored in LanceDB; "more like this board" as one fused
multi-part query of the board's items; export by copying the files or as a contact-sheet PNG.

A video is pinned as one of its moments (`FILE@SECONDS`, a moment key, or the file for its first moment):
its `path` is the moment's key, `FILE#t=S,E`, so two moments of one video are two items, and the board
needs no column of its own for them. In "more like this board" a moment stands for its picture and its
sound (workflows/moments.py); on a contact sheet it is its frame with its range."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

import pyarrow as pa
from PIL import Image, ImageDraw, ImageFont

from mmsearch.errors import MMSearchError
from mmsearch.media.audio import supported_extensions as audio_extensions
from mmsearch.media.images import decode_image
from mmsearch.media.video import frame_at
from mmsearch.ingest.pipelines import read_file
from mmsearch.query.engine import Answer
from mmsearch.query.parts import MAX_PARTS, QueryOptions, QueryPart
from mmsearch.store.library import Library
from mmsearch.store.sql import quote
from mmsearch.store.video_table import moment_fields
from mmsearch.workflows.export import copy_files
from mmsearch.workflows.moments import moment_row, names_video

BOARD_TABLE = "boards"
SCHEMA = pa.schema([pa.field("id", pa.string(), nullable=False), pa.field("board", pa.string()),
                    pa.field("path", pa.string()), pa.field("modality", pa.string()),
                    pa.field("added_at", pa.timestamp("us", tz="UTC")), pa.field("note", pa.string())])
TILE = 220
CAPTION = 22


class BoardError(MMSearchError):
    pass


@dataclass
class Pin:
    board: str
    path: str
    modality: str
    added_at: datetime
    note: str | None

    @property
    def file(self) -> str:
        return moment_fields(self.path, self.modality)["file"]

    def record(self) -> dict:
        return {"board": self.board, "path": self.path, "modality": self.modality,
                "added_at": self.added_at.isoformat(), "note": self.note, **moment_fields(self.path, self.modality)}


def modality_of(path: str) -> str:
    if names_video(path):
        return "video"
    return "audio" if Path(path).suffix.lower() in audio_extensions() else "image"


class Boards:
    def __init__(self, library: Library) -> None:
        self.library = library
        self.table = library.db.create_table(BOARD_TABLE, schema=SCHEMA, exist_ok=True)

    def pin(self, board: str, paths: Sequence[str], note: str | None = None) -> int:
        board = board.strip()
        if not board:
            raise BoardError("name the board, e.g. 'autumn campaign'")
        paths = [self._pinned(p) for p in paths]
        missing = [p for p in paths if not os.path.isfile(moment_fields(p, modality_of(p))["file"])]
        if missing:
            raise BoardError(f"cannot pin {missing[0]}: no such file")
        now = datetime.now(timezone.utc)
        rows = [{"id": f"{board}\x1f{p}", "board": board, "path": p, "modality": modality_of(p), "added_at": now,
                 "note": note} for p in dict.fromkeys(paths)]
        if rows:
            (self.table.merge_insert("id").when_matched_update_all().when_not_matched_insert_all()
             .execute(pa.Table.from_pylist(rows, schema=SCHEMA)))
        return len(rows)

    def _pinned(self, value: str) -> str:
        """What a board holds for a value: a video's moment key (the moment must be indexed), else the path."""
        return moment_row(self.library, value)["path"] if names_video(value) else value

    def unpin(self, board: str, paths: Sequence[str]) -> None:
        for p in (self._pinned(p) for p in paths):
            self.table.delete(f"id = {quote(board + chr(31) + p)}")

    def names(self) -> dict[str, int]:
        rows = self.table.search().select(["board"]).limit(None).to_arrow().column("board").to_pylist()
        return {b: rows.count(b) for b in sorted(set(rows))}

    def items(self, board: str) -> list[Pin]:
        rows = self.table.search().where(f"board = {quote(board)}").limit(None).to_arrow().to_pylist()
        if not rows:
            raise BoardError(f"no board named {board!r} (boards: {', '.join(self.names()) or 'none yet'})")
        rows.sort(key=lambda r: (r["added_at"], r["path"]))
        return [Pin(r["board"], r["path"], r["modality"], r["added_at"], r["note"]) for r in rows]

    def delete(self, board: str) -> None:
        self.table.delete(f"board = {quote(board)}")


def board_parts(pins: Sequence[Pin], limit: int = MAX_PARTS,
                moment: Callable[[str, float], list[QueryPart]] | None = None) -> list[QueryPart]:
    """The board as a query: one part per item, two for a video moment (its picture and its sound, by
    `moment`), the most recent items that fit in `limit` parts."""
    parts: list[QueryPart] = []
    for p in reversed(list(pins)):
        if p.modality == "video":
            if moment is None:
                raise BoardError(f"board item {p.path} is a video moment: this search cannot take one")
            mine = moment(p.path, 1.0)
        else:
            mine = [QueryPart("audio" if p.modality == "audio" else "image", p.path, 1.0)]
        if len(parts) + len(mine) > limit:
            break
        parts = mine + parts
    return parts


def more_like_board(search: "object", boards: Boards, board: str, moods: Sequence[tuple[str, float]] = (),
                    options: QueryOptions | None = None) -> Answer:
    """Items that fit the board as a whole (its items fused), optionally nudged by moods; the board's own
    items are left out."""
    pins = boards.items(board)
    options = options or QueryOptions()
    k = options.k
    options.k = min(1000, k + len(pins))
    parts = board_parts(pins, moment=getattr(search, "moment_parts", None))
    answer = search.run(moods, parts, options)  # type: ignore[attr-defined]
    on_board = {p.file for p in pins}  # a video on the board: none of its moments comes back
    answer.hits = [h for h in answer.hits if h.result.path not in on_board][:k]
    return answer


def export_folder(pins: Sequence[Pin], folder: str | Path) -> list[Path]:
    return copy_files(list(dict.fromkeys(p.file for p in pins)), folder)  # a video once, however many moments


def contact_sheet(pins: Sequence[Pin], out: str | Path, columns: int = 5, title: str | None = None) -> Path:
    """A PNG grid: each image as a thumbnail, each sound as a labelled tile, file names beneath."""
    if not pins:
        raise BoardError("the board is empty: nothing to put on a contact sheet")
    cols = max(1, min(columns, len(pins)))
    rows = math.ceil(len(pins) / cols)
    head = 36 if title else 0
    sheet = Image.new("RGB", (cols * TILE, head + rows * (TILE + CAPTION)), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    if title:
        draw.text((8, 10), title, fill="black", font=font)
    for n, pin in enumerate(pins):
        x, y = (n % cols) * TILE, head + (n // cols) * (TILE + CAPTION)
        tile = _tile(pin)
        sheet.paste(tile, (x + (TILE - tile.width) // 2, y + (TILE - tile.height) // 2))
        name = Path(pin.file).name
        name = name if len(name) <= 34 else name[:31] + "…"
        when = moment_fields(pin.path, pin.modality)["moment"]
        draw.text((x + 6, y + TILE + 4), f"{name} {when}" if when else name, fill="black", font=font)
    out = Path(out).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, format="PNG")
    return out


def _tile(pin: Pin) -> Image.Image:
    edge = TILE - 12
    try:
        if pin.modality == "image":
            img = decode_image(read_file(pin.path), pin.path, 178_956_970, draft_size=edge).image
        elif pin.modality == "video":  # the middle of the moment
            found = moment_fields(pin.path, pin.modality)
            img = frame_at(found["file"], (found["start_s"] + found["end_s"]) / 2, size=edge)
        else:
            img = None
        if img is not None:
            img.thumbnail((edge, edge))
            return img
    except MMSearchError:
        pass
    tile = Image.new("RGB", (edge, edge), (235, 235, 240))
    ImageDraw.Draw(tile).text((12, edge // 2 - 6), "sound" if pin.modality == "audio" else "unreadable",
                              fill=(80, 80, 90), font=ImageFont.load_default())
    return tile
