"""Compare the files found on disk with what the table already holds."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from mmsearch.media.files import FileEntry
from mmsearch.store.table import ExistingRow


@dataclass
class Plan:
    root: str
    todo: list[FileEntry] = field(default_factory=list)  # new or changed: hash, then embed or reuse
    unchanged: int = 0
    vanished: list[str] = field(default_factory=list)


def make_plan(root: Path | str, existing: dict[str, ExistingRow], entries: Iterable[FileEntry]) -> Plan:
    """entries: the files of one modality found under root (one walk serves every modality)."""
    plan = Plan(str(root))
    seen: set[str] = set()
    for entry in entries:
        seen.add(entry.path)
        old = existing.get(entry.path)
        if old is not None and old.size == entry.size and old.mtime_ns == entry.mtime_ns:
            plan.unchanged += 1
        else:
            plan.todo.append(entry)
    plan.vanished = [p for p in existing if p not in seen]
    return plan
