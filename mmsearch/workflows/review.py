"""The review queue: flagged items (watch-list concepts, copies of known-bad images) waiting for a person,
and every decision on them (approve / reject / escalate, who, when, a note), both in LanceDB.

`review_queue` holds one row per (item, concept) with its latest score and its current decision; a new
scan refreshes scores but never undoes a decision. `review_log` is append-only: the audit trail.

approve = the item is fine (the flag was wrong); reject = it breaks the rules; escalate = someone more
senior decides. Calibration reads rejections as positives and approvals as negatives.

A video is one item per concept (its id is the file's), and its `path` is the flagged moment's key,
`FILE#t=S,E`: a re-scan that finds the concept at another moment moves the item there and keeps its
decision. The moment needs no column of its own (a queue written before videos loads unchanged).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable, Sequence

import pyarrow as pa

from mmsearch.errors import MMSearchError
from mmsearch.store.library import Library
from mmsearch.store.sql import in_clauses, quote
from mmsearch.store.video_table import moment_fields, parse_moment
from mmsearch.workflows.moderation import Flag

QUEUE_TABLE = "review_queue"
LOG_TABLE = "review_log"
DECISIONS = {"approve": "approved", "reject": "rejected", "escalate": "escalated"}
STATUSES = ("pending", *DECISIONS.values())
_TS = pa.timestamp("us", tz="UTC")
QUEUE_SCHEMA = pa.schema([
    pa.field("id", pa.string(), nullable=False), pa.field("path", pa.string()), pa.field("modality", pa.string()),
    pa.field("concept", pa.string()), pa.field("score", pa.float32()), pa.field("threshold", pa.float32()),
    pa.field("matched", pa.string()), pa.field("source", pa.string()), pa.field("status", pa.string()),
    pa.field("decided_by", pa.string()), pa.field("decided_at", _TS), pa.field("note", pa.string()),
    pa.field("flagged_at", _TS), pa.field("scanned_at", _TS),
])
LOG_SCHEMA = pa.schema([
    pa.field("id", pa.string()), pa.field("path", pa.string()), pa.field("concept", pa.string()),
    pa.field("score", pa.float32()), pa.field("decision", pa.string()), pa.field("decided_by", pa.string()),
    pa.field("decided_at", _TS), pa.field("note", pa.string()),
])


class ReviewError(MMSearchError):
    pass


def item_id(path: str, concept: str) -> str:
    return hashlib.blake2b(f"{concept}\x1f{path}".encode(), digest_size=6).hexdigest()


@dataclass
class QueueItem:
    id: str
    path: str
    modality: str
    concept: str
    score: float
    threshold: float
    matched: str
    source: str
    status: str
    decided_by: str | None
    decided_at: datetime | None
    note: str | None
    flagged_at: datetime | None

    @property
    def moment(self) -> tuple[str, float, float] | None:
        """(file, start, end) of a video's flagged moment; None for photos and sounds."""
        return parse_moment(self.path) if self.modality == "video" else None

    @property
    def file(self) -> str:
        return self.moment[0] if self.moment else self.path

    def record(self) -> dict:
        out = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in self.__dict__.items()}
        return {**out, **moment_fields(self.path, self.modality)}


@dataclass
class Added:
    new: int
    refreshed: int


class ReviewQueue:
    def __init__(self, library: Library) -> None:
        self.library = library
        self.queue = library.db.create_table(QUEUE_TABLE, schema=QUEUE_SCHEMA, exist_ok=True)
        self.log = library.db.create_table(LOG_TABLE, schema=LOG_SCHEMA, exist_ok=True)

    def add(self, flags: Iterable[Flag], source: str = "watch-list") -> Added:
        """New flags join as pending; ones already queued get the new score and keep their decision."""
        flags = list(flags)
        now = datetime.now(timezone.utc)
        ids = [item_id(f.item, f.concept) for f in flags]
        old = {r["id"]: r for r in self._rows(ids)}
        rows = []
        for i, f in zip(ids, flags):
            prev = old.get(i, {})
            rows.append({
                "id": i, "path": f.path, "modality": f.modality, "concept": f.concept, "score": f.score,
                "threshold": f.threshold, "matched": f.matched, "source": prev.get("source") or source,
                "status": prev.get("status") or "pending", "decided_by": prev.get("decided_by"),
                "decided_at": prev.get("decided_at"), "note": prev.get("note"),
                "flagged_at": prev.get("flagged_at") or now, "scanned_at": now,
            })
        if rows:
            (self.queue.merge_insert("id").when_matched_update_all().when_not_matched_insert_all()
             .execute(pa.Table.from_pylist(rows, schema=QUEUE_SCHEMA)))
        return Added(new=len([i for i in ids if i not in old]), refreshed=len([i for i in ids if i in old]))

    def _rows(self, ids: Sequence[str]) -> list[dict]:
        out = []
        for where in in_clauses("id", ids):
            out += self.queue.search().where(where).limit(None).to_arrow().to_pylist()
        return out

    def items(self, status: str | None = None, concept: str | None = None) -> list[QueueItem]:
        if status and status not in STATUSES:
            raise ReviewError(f"unknown status {status!r}; one of {', '.join(STATUSES)}")
        conds = ([f"status = {quote(status)}"] if status else []) + ([f"concept = {quote(concept)}"] if concept else [])
        q = self.queue.search()
        if conds:
            q = q.where(" AND ".join(conds))
        rows = q.limit(None).to_arrow().to_pylist()
        rows.sort(key=lambda r: (r["status"] != "pending", -(r["score"] or 0.0), r["path"]))
        return [QueueItem(**{k: r[k] for k in QueueItem.__dataclass_fields__}) for r in rows]

    def decide(self, ids: Sequence[str], decision: str, who: str, note: str = "") -> list[QueueItem]:
        if decision not in DECISIONS:
            raise ReviewError(f"decide approve, reject or escalate, not {decision!r}")
        if not (who or "").strip():
            raise ReviewError("say who decides (--by NAME): every decision is recorded with its reviewer")
        found = {r["id"]: r for r in self._rows(ids)}
        missing = [i for i in ids if i not in found]
        if missing:
            raise ReviewError(f"no queued item {missing[0]!r}; `mmsearch moderate queue` lists the ids")
        now = datetime.now(timezone.utc)
        rows = [{**found[i], "status": DECISIONS[decision], "decided_by": who.strip(), "decided_at": now,
                 "note": note or None} for i in ids]
        (self.queue.merge_insert("id").when_matched_update_all().when_not_matched_insert_all()
         .execute(pa.Table.from_pylist(rows, schema=QUEUE_SCHEMA)))
        self.log.add(pa.Table.from_pylist([{"id": r["id"], "path": r["path"], "concept": r["concept"],
                                            "score": r["score"], "decision": decision, "decided_by": who.strip(),
                                            "decided_at": now, "note": note or None} for r in rows],
                                          schema=LOG_SCHEMA))
        return [QueueItem(**{k: r[k] for k in QueueItem.__dataclass_fields__}) for r in rows]

    def history(self) -> list[dict]:
        rows = self.log.search().limit(None).to_arrow().to_pylist()
        rows.sort(key=lambda r: r["decided_at"])
        return [{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in r.items()} for r in rows]

    def labels(self, concept: str) -> dict[str, bool]:
        """Decided items of a concept as calibration examples: rejected -> positive, approved -> negative."""
        return {i.path: i.status == "rejected" for i in self.items(concept=concept)
                if i.status in ("rejected", "approved")}
