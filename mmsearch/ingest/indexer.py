"""The indexing pipeline.

Worker threads read, hash, decode and preprocess files while the calling thread runs the model, so
the model never waits on I/O. At most `prefetch` files are in flight, which keeps memory flat in the
library size. Rows are committed every `commit_every` files: an interrupted run loses at most one
uncommitted batch, and the next run picks up from what was committed.

One walk of each root serves every modality; each modality (a MediaPipeline: images, audio) then runs
the same plan -> prepare -> embed -> commit loop into its own table.
"""

from __future__ import annotations

import os
import re
import time
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from mmsearch.encoders.base import Encoder
from mmsearch.errors import BadMedia, MMSearchError
from mmsearch.ingest.memory import release_free_memory, tune_allocator
from mmsearch.ingest.pipelines import ImagePipeline, MediaPipeline, Prepared
from mmsearch.ingest.plan import Plan, make_plan
from mmsearch.ingest.prefetch import prefetched
from mmsearch.ingest.sources import check_source, list_media
from mmsearch.location import is_uri, parse_location, scheme_of
from mmsearch.media.files import FileEntry, keyword_text
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
    audio_seconds: float = 0.0  # length of the recordings embedded (not reused) in this run
    notes: list[str] = field(default_factory=list)  # what later passes of the run did (OCR), one line each
    video_seconds: float = 0.0  # length of the videos whose picture was embedded (not reused) in this run

    @property
    def changed(self) -> bool:
        return bool(self.embedded or self.reused or self.removed)

    def summary(self) -> str:
        if not self.changed and not self.skipped:
            return f"nothing to do: {self.unchanged} files unchanged, nothing embedded"
        rate = self.embedded / self.seconds if self.seconds > 0 else 0.0
        audio = f", {self.audio_seconds:.0f} s of audio" if self.audio_seconds else ""
        audio += f", {self.video_seconds:.0f} s of video" if self.video_seconds else ""
        return (
            f"embedded {self.embedded}{audio}, reused {self.reused} by content hash, unchanged {self.unchanged}, "
            f"removed {self.removed}, skipped {len(self.skipped)} in {self.seconds:.1f}s ({rate:.1f} files/s)"
        )


    def skip_groups(self) -> list["SkipGroup"]:
        return group_skips(self.skipped)


@dataclass
class SkipGroup:
    """Files skipped for one cause: one line for people, the paths for a list."""

    cause: str
    reasons: list[str]
    paths: list[str]
    advice: str = ""

    def line(self) -> str:
        n = len(self.paths)
        if n == 1:
            files = self.paths[0]
        elif n <= NAMED:
            files = f"{n} files ({', '.join(Path(p).name for p in self.paths)})"
        else:
            files = f"{n} files" + (f", e.g. {Path(self.paths[0]).name}" if len(set(self.reasons)) > 1 else "")
        return f"skipped {files}: {self.reasons[0]}" + (f" - {self.advice}" if self.advice else "")


NAMED = 3  # a group this small names its files on its line

# What to do about each cause; causes whose message already says it (missing models, codecs) have none.
_ADVICE = [
    (r"^empty file", "remove or copy again"),
    (r"^not a readable image", "re-save as JPEG, PNG or WebP, or remove"),
    (r"^corrupt or truncated image", "copy or export again from the original"),
    (r"pixel limit|decompression bomb|too large to decode", "raise MMSEARCH_MAX_IMAGE_PIXELS if you trust the files"),
    (r"^cannot read", "check the permissions, and that the drive is connected"),
    (r"model|install|unsupported codec", ""),
    (r"video", "re-encode as H.264 MP4 or WebM, or remove"),
    (r"audio|header|samples", "re-encode as WAV or FLAC, or remove"),
]
_DETAIL = re.compile(r"\s*\(.*\)\s*$")  # "(...)": the library's own words about one file


def skip_cause(reason: str) -> str:
    """The part of a skip reason that is the same for every file with that problem:
    'no audio model: <message>' -> 'no audio model'; 'corrupt image (bytes 3-9)' -> 'corrupt image';
    '20000x9000 exceeds the 178956970-pixel limit' -> 'NxN exceeds the N-pixel limit'."""
    head = _DETAIL.sub("", reason.split(": ", 1)[0]).strip() or reason
    return re.sub(r"\d+(?:\.\d+)?", "N", head)


def group_skips(skipped: Sequence[tuple[str, str]]) -> list[SkipGroup]:
    """One group per cause, largest first; each path once, in the order it was skipped."""
    groups: dict[str, SkipGroup] = {}
    for path, reason in skipped:
        cause = skip_cause(reason)
        group = groups.get(cause)
        if group is None:
            advice = next((a for pattern, a in _ADVICE if re.search(pattern, cause)), "see each file's reason in the list")
            group = groups[cause] = SkipGroup(cause, [], [], advice)
        group.reasons.append(reason)
        group.paths.append(path)
    return sorted(groups.values(), key=lambda g: -len(g.paths))


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
        extra_pipelines: Sequence[MediaPipeline] = (),
        source_options: Mapping[str, str] | None = None,
    ) -> None:
        self.library = library
        self.encoder = encoder
        self.batch_size = batch_size
        self.workers = workers
        self.commit_every = max(commit_every, batch_size)
        self.pipelines: list[MediaPipeline] = [ImagePipeline(encoder, max_pixels), *extra_pipelines]
        self.source_options = dict(source_options or {})
        for pipeline in self.pipelines:
            pipeline.source_options = self.source_options

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

        root_paths = [check_root(r, self.source_options) for r in roots]
        # Missing weights fail here, before the library is touched; the model itself loads only when a
        # file needs it (_ready), so an unchanged re-run of a big folder never pays for loading it.
        _ = self.encoder.space
        extensions = frozenset().union(*(p.extensions() for p in self.pipelines))
        with self.library.writer_lock():
            for root in root_paths:
                self.library.add_root(str(root))
                report.roots.append(str(root))
                entries = list(list_media(root, skip, extensions, self.source_options))
                for pipeline in pipelines_for(self.pipelines, root, entries, skip):
                    mine = [e for e in entries if pipeline.accepts(e.path)]
                    self._index_root(pipeline, root, mine, report, progress, skip)
        report.seconds = time.perf_counter() - started
        return report

    def _index_root(self, pipeline: MediaPipeline, root: Path | str, entries: list[FileEntry], report: IndexReport,
                    progress: ProgressFn, skip: SkipFn) -> None:
        table = self._table(pipeline, entries, skip)
        if table is None:
            return
        plan = make_plan(root, table.existing_under(str(root)), entries)
        report.seen += plan.unchanged + len(plan.todo)
        report.unchanged += plan.unchanged
        note = f"{plan.root}: {len(plan.todo)} new or changed {pipeline.modality} files, {plan.unchanged} unchanged"
        progress(Progress(0, len(plan.todo), len(report.skipped), note))
        if self._ready(pipeline, plan, skip):
            self._run(plan, table, pipeline, report, progress, skip)
        # Vanished files leave only after the new rows are committed: a crash in between
        # leaves stale rows that the next run removes, never a hole.
        report.removed += table.delete_paths(plan.vanished)

    def _table(self, pipeline: MediaPipeline, entries: list[FileEntry], skip: SkipFn) -> SpaceTable | None:
        try:
            space = pipeline.encoder.space  # resolves the weights without loading them
        except MMSearchError as exc:
            if not pipeline.optional:
                raise
            for entry in entries:
                skip(entry.path, f"{pipeline.missing or f'no {pipeline.modality} model'}: {exc}")
            return None
        if not entries and self.library.table(pipeline.modality, space) is None:
            return None  # never create an empty table for a modality this library has not seen
        return self.library.table(pipeline.modality, space, create=True)

    @staticmethod
    def _ready(pipeline: MediaPipeline, plan: Plan, skip: SkipFn) -> bool:
        """Load the model only when there is something to embed; an optional one may skip its files."""
        if not plan.todo:
            return False
        try:
            pipeline.encoder.load()
        except MMSearchError as exc:
            if not pipeline.optional:
                raise
            for entry in plan.todo:
                skip(entry.path, f"{pipeline.modality} model failed to load: {exc}")
            return False
        return True

    def _run(self, plan: Plan, table: SpaceTable, pipeline: MediaPipeline, report: IndexReport,
             progress: ProgressFn, skip: SkipFn) -> None:
        total = len(plan.todo)
        known = table.known_hashes()
        pending: list[Prepared] = []
        rows: list[dict] = []
        done = 0
        # Batches and commits are sized in model inputs, not files: one image is one, an hour of sound is
        # ~480 windows, so an interrupt never loses more than one commit's worth of model time.
        pending_work = rows_work = 0.0
        tune_allocator()  # before the decode threads exist: they would each keep an arena of freed pictures
        with ThreadPoolExecutor(self.workers, thread_name_prefix="mmsearch-decode") as pool, \
                closing(self._prepared(pool, pipeline, plan.todo, known, skip)) as prepared:
            for item in prepared:
                done += 1
                if item is not None:
                    pending.append(item)
                    pending_work += pipeline.work(item)
                if pending_work >= self.batch_size or (done == total and pending):
                    rows.extend(self._embed(pending, table, pipeline, pool, report, skip))
                    pending, pending_work, rows_work = [], 0.0, rows_work + pending_work
                if rows and (rows_work >= self.commit_every or done == total):
                    table.upsert_rows(rows)
                    known.update(r["hash"] for r in rows)
                    rows, rows_work = [], 0.0
                    release_free_memory()
                progress(Progress(done, total, len(report.skipped)))

    def _prepared(self, pool: Executor, pipeline: MediaPipeline, todo: list[FileEntry], known: set[str],
                  skip: SkipFn) -> Iterator[Prepared | None]:
        depth = pipeline.prefetch(self.batch_size, self.workers)
        with closing(prefetched(pool, lambda e: self._prepare(e, known, pipeline), todo, depth)) as futures:
            for fut in futures:  # closing: an interrupt cancels the queued decodes, it never runs them
                try:
                    yield fut.result()
                except BadMedia as bad:
                    skip(bad.path, bad.reason)
                    yield None

    def _prepare(self, entry: FileEntry, known: set[str], pipeline: MediaPipeline) -> Prepared:
        return pipeline.prepare(entry, known)

    def _embed(self, items: list[Prepared], table: SpaceTable, pipeline: MediaPipeline, pool: Executor,
               report: IndexReport, skip: SkipFn) -> list[dict]:
        columns: dict[int, dict] = {}
        reuse = [i for i in items if i.payload is None]
        twins = table.rows_for_hashes({i.hash for i in reuse}, pipeline.reused_columns) if reuse else {}
        for i in reuse:
            if i.hash in twins:
                columns[id(i)] = twins[i.hash]
                report.reused += 1
            else:  # its twin left the table meanwhile: embed it after all
                try:
                    i.payload = self._prepare(i.entry, set(), pipeline).payload
                except BadMedia as bad:
                    skip(bad.path, bad.reason)
                    columns[id(i)] = {}
        fresh = [i for i in items if id(i) not in columns]
        for item, out in zip(fresh, pipeline.embed(fresh, pool) if fresh else []):
            if isinstance(out, BadMedia):
                skip(out.path, out.reason)
                continue
            columns[id(item)] = out
            report.embedded += 1
            seconds = item.fields.get("duration_s") or 0.0
            if pipeline.modality == "video":
                report.video_seconds += seconds if not pipeline.optional else 0.0  # counted once, by its picture
            else:
                report.audio_seconds += seconds
        now = datetime.now(timezone.utc)
        return [r for i in items if columns.get(id(i)) for r in pipeline.rows(file_row(i, columns[id(i)], now))]


def file_row(item: Prepared, columns: dict, now: datetime) -> dict:
    """The table row of one prepared file: its path, stat, hash, metadata, keyword text and model columns."""
    path = item.entry.path
    return {
        "path": path,
        "folder": os.path.dirname(path),
        "name": os.path.basename(path),
        "hash": item.hash,
        "size": item.entry.size,
        "mtime_ns": item.entry.mtime_ns,
        **item.fields,
        "text": keyword_text(path),
        "indexed_at": now,
        **columns,
        **({"vector": np.asarray(columns["vector"], np.float32)} if "vector" in columns else {}),
    }


def check_root(root: str | Path, options: Mapping[str, str] | None = None) -> Path | str:
    """A local root as an absolute path, an object-store prefix as its URI; either must exist."""
    if is_uri(str(root)):
        if scheme_of(str(root)) == "file":
            return check_root(parse_location(str(root)).uri)
        return check_source(str(root), options)
    path = Path(os.path.abspath(Path(root).expanduser()))
    if not path.exists():
        raise MMSearchError(f"cannot index {path}: no such file or folder")
    return path


def pipelines_for(pipelines: Sequence[MediaPipeline], root: Path | str, entries: list[FileEntry],
                  skip: SkipFn) -> list[MediaPipeline]:
    """Every pipeline for a local root; on object storage those that read objects, the others' files skipped."""
    if not is_uri(str(root)):
        return list(pipelines)
    readers = [p for p in pipelines if p.reads_objects]
    for entry in entries:
        if not any(p.accepts(entry.path) for p in readers):
            skip(entry.path, "sounds and videos on object storage are not indexed yet; copy them to a local folder")
    return readers
