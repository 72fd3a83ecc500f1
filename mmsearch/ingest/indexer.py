"""The indexing pipeline.

Worker threads read, hash, decode and preprocess files while the calling thread runs the model, so
the model never waits on I/O. At most `prefetch` files are in flight, which keeps memory flat in the
library size. Rows are committed every `commit_every` files: an interrupted run loses at most one
uncommitted batch, and the next run picks up from what was committed.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from mmsearch.encoders.base import Encoder
from mmsearch.errors import BadMedia, MMSearchError
from mmsearch.ingest.plan import Plan, make_plan
from mmsearch.media.files import FileEntry, keyword_text
from mmsearch.media.images import decode_image
from mmsearch.store.library import Library
from mmsearch.store.table import SpaceTable


@dataclass
class Progress:
    done: int
    total: int
    skipped: int
    message: str = ""


@dataclass
class IndexReport:
    roots: list[str] = field(default_factory=list)
    seen: int = 0
    embedded: int = 0
    reused: int = 0
    unchanged: int = 0
    removed: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.embedded or self.reused or self.removed)

    def summary(self) -> str:
        if not self.changed and not self.skipped:
            return f"nothing to do: {self.unchanged} files unchanged, nothing embedded"
        rate = self.embedded / self.seconds if self.seconds > 0 else 0.0
        return (
            f"embedded {self.embedded}, reused {self.reused} by content hash, unchanged {self.unchanged}, "
            f"removed {self.removed}, skipped {len(self.skipped)} in {self.seconds:.1f}s ({rate:.1f} images/s)"
        )


@dataclass
class _Prepared:
    entry: FileEntry
    hash: str
    tensor: Any = None  # None when the vector is reused from an identical file
    width: int = 0
    height: int = 0
    format: str = ""


ProgressFn = Callable[[Progress], None]
SkipFn = Callable[[str, str], None]


class Indexer:
    def __init__(
        self,
        library: Library,
        encoder: Encoder,
        batch_size: int = 32,
        workers: int = 4,
        commit_every: int = 512,
        max_pixels: int = 178_956_970,
    ) -> None:
        self.library = library
        self.encoder = encoder
        self.batch_size = batch_size
        self.workers = workers
        self.commit_every = max(commit_every, batch_size)
        self.max_pixels = max_pixels

    def index(
        self,
        roots: Iterable[str | Path],
        on_progress: ProgressFn | None = None,
        on_skip: SkipFn | None = None,
    ) -> IndexReport:
        report = IndexReport()
        started = time.perf_counter()
        progress = on_progress or (lambda p: None)

        def skip(path: str, reason: str) -> None:
            report.skipped.append((path, reason))
            if on_skip:
                on_skip(path, reason)

        root_paths = [_check_root(r) for r in roots]
        self.encoder.load()  # fail on missing weights before touching the library
        with self.library.writer_lock():
            table = self.library.table("image", self.encoder.space, create=True)
            assert table is not None
            for root in root_paths:
                self.library.add_root(str(root))
                plan = make_plan(root, table.existing_under(str(root)), skip)
                report.roots.append(str(root))
                report.seen += plan.unchanged + len(plan.todo)
                report.unchanged += plan.unchanged
                self._run(plan, table, report, progress, skip)
                # Vanished files leave only after the new rows are committed: a crash in between
                # leaves stale rows that the next run removes, never a hole.
                report.removed += table.delete_paths(plan.vanished)
        report.seconds = time.perf_counter() - started
        return report

    def _run(self, plan: Plan, table: SpaceTable, report: IndexReport, progress: ProgressFn, skip: SkipFn) -> None:
        total = len(plan.todo)
        progress(Progress(0, total, 0, f"{plan.root}: {total} new or changed, {plan.unchanged} unchanged"))
        if not total:
            return
        known = table.known_hashes()
        pending: list[_Prepared] = []
        rows: list[dict] = []
        done = 0
        for item in self._prepared(plan.todo, known, skip):
            done += 1
            if item is not None:
                pending.append(item)
            if len(pending) >= self.batch_size or (done == total and pending):
                rows.extend(self._embed(pending, table, report))
                pending = []
            if len(rows) >= self.commit_every or (done == total and rows):
                table.upsert_rows(rows)
                known.update(r["hash"] for r in rows)
                rows = []
            progress(Progress(done, total, len(report.skipped)))

    def _prepared(self, todo: list[FileEntry], known: set[str], skip: SkipFn) -> Iterator[_Prepared | None]:
        prefetch = max(self.batch_size * 3, self.workers * 2)
        draft = self.encoder.image_draft_size()
        with ThreadPoolExecutor(self.workers, thread_name_prefix="mmsearch-decode") as pool:
            queue: deque[Future] = deque()
            files = iter(todo)
            for entry in files:
                queue.append(pool.submit(self._prepare, entry, known, draft))
                if len(queue) >= prefetch:
                    break
            try:
                while queue:
                    fut = queue.popleft()
                    nxt = next(files, None)
                    if nxt is not None:
                        queue.append(pool.submit(self._prepare, nxt, known, draft))
                    try:
                        item = fut.result()
                    except BadMedia as bad:
                        skip(bad.path, bad.reason)
                        yield None
                        continue
                    yield item
            finally:  # interrupted: don't decode what will never be embedded
                for fut in queue:
                    fut.cancel()

    def _prepare(self, entry: FileEntry, known: set[str], draft: int | None) -> _Prepared:
        try:
            with open(entry.path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise BadMedia(entry.path, f"cannot read ({exc.strerror or exc})") from None
        digest = hashlib.blake2b(data, digest_size=16).hexdigest()
        item = _Prepared(entry, digest)
        decoded = decode_image(data, entry.path, self.max_pixels, draft)
        item.width, item.height, item.format = decoded.width, decoded.height, decoded.format
        if digest not in known:
            item.tensor = self.encoder.preprocess_image(decoded.image)
        return item

    def _embed(self, items: list[_Prepared], table: SpaceTable, report: IndexReport) -> list[dict]:
        vectors: dict[int, np.ndarray] = {}
        reuse = [i for i in items if i.tensor is None]
        if reuse:
            by_hash = table.vectors_for_hashes({i.hash for i in reuse})
            for i in reuse:
                if i.hash in by_hash:
                    vectors[id(i)] = by_hash[i.hash]
                    report.reused += 1
                else:  # its twin left the table meanwhile: embed it after all
                    i.tensor = self._prepare(i.entry, set(), self.encoder.image_draft_size()).tensor
        fresh = [i for i in items if id(i) not in vectors]
        if fresh:
            embedded = self.encoder.encode_images([i.tensor for i in fresh])
            vectors.update({id(i): v for i, v in zip(fresh, embedded)})
            report.embedded += len(fresh)
        now = datetime.now(timezone.utc)
        return [_row(i, vectors[id(i)], now) for i in items]


def _row(item: _Prepared, vector: np.ndarray, now: datetime) -> dict:
    path = item.entry.path
    return {
        "path": path,
        "folder": os.path.dirname(path),
        "name": os.path.basename(path),
        "hash": item.hash,
        "size": item.entry.size,
        "mtime_ns": item.entry.mtime_ns,
        "width": item.width,
        "height": item.height,
        "format": item.format,
        "text": keyword_text(path),
        "indexed_at": now,
        "vector": vector.astype(np.float32),
    }


def _check_root(root: str | Path) -> Path:
    path = Path(os.path.abspath(Path(root).expanduser()))
    if not path.exists():
        raise MMSearchError(f"cannot index {path}: no such file or folder")
    return path
