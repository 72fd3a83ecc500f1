"""`mmsearch index --ray`: the driver plans, Ray Data embeds, lance-ray writes, one commit per table per chunk.

The driver lists the files (a local folder or an object-store prefix), compares them with the table by the
same rules as the single-process indexer (ingest/plan.make_plan: size and mtime, then the content hash for
copies and renames) and sends only the new and changed ones through

    from_items(paths) -> decode tasks (read, hash, decode) -> a model actor pool (preprocess, embed)
    -> lance_ray.write_lance(mode="append"): fragments written by the workers, committed once

in chunks of `ray_chunk_files`. A chunk is committed whole or not at all: a killed job loses only the chunk in
flight, and the rerun plans again from what was committed, so nothing committed is embedded twice. Changed files
are appended first and their old rows deleted after (a crash in between leaves two rows for a path, which the
next run's superseded_under check removes): a search never sees a file missing.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from mmsearch.ingest.indexer import IndexReport, check_root, file_row
from mmsearch.ingest.plan import make_plan
from mmsearch.ingest.sources import list_media
from mmsearch.media.files import FileEntry
from mmsearch.media.images import supported_extensions
from mmsearch.scale.cluster import connect
from mmsearch.scale.stages import REUSE, SKIPPED, Embedder, decode_batch, embedded_only, not_embedded, prepared_of
from mmsearch.store.table import SpaceTable


def index_with_ray(svc: Any, roots: Sequence[str | Path], address: str, actors: int | None = None,
                   embedder: type = Embedder) -> IndexReport:
    """embedder: the model actor's class (a test passes one whose process dies once, to prove Ray's retry)."""
    s = svc.settings
    started = time.perf_counter()
    report = IndexReport()
    checked = [check_root(r, s.storage_options) for r in roots]
    space = svc.encoder.space  # missing weights fail here, before anything starts
    library = svc.library(create=True)
    run = _RayRun(svc, address, actors, embedder)
    with library.writer_lock():
        table = library.table("image", space, create=True)
        for root in checked:
            library.add_root(str(root))
            report.roots.append(str(root))
            run.index_root(str(root), table, report)
    report.seconds = time.perf_counter() - started
    return report


class _RayRun:
    def __init__(self, svc: Any, address: str, actors: int | None, embedder: type = Embedder) -> None:
        self.svc, self.address, self.actors, self.embedder = svc, address, actors, embedder
        self.settings = svc.settings
        self.connected = False

    def index_root(self, root: str, table: SpaceTable, report: IndexReport) -> None:
        s = self.settings
        skip = lambda path, reason: report.skipped.append((path, reason))  # noqa: E731
        entries = list(list_media(root, skip, supported_extensions(), s.storage_options))
        leftover = table.superseded_under(root)
        if leftover:
            table.delete_exact(leftover)
        existing = table.existing_under(root)
        plan = make_plan(root, existing, entries)
        report.seen += plan.unchanged + len(plan.todo)
        report.unchanged += plan.unchanged
        known = table.known_hashes() if plan.todo else set()
        for i in range(0, len(plan.todo), s.ray_chunk_files):
            chunk = plan.todo[i:i + s.ray_chunk_files]
            self._chunk(chunk, table, known, report)
            table.delete_exact({e.path: existing[e.path] for e in chunk if e.path in existing})
        report.removed += table.delete_paths(plan.vanished)

    def _chunk(self, chunk: list[FileEntry], table: SpaceTable, known: set[str], report: IndexReport) -> None:
        import lance_ray

        done = self._pipeline(chunk, table, known).materialize()
        others = done.map_batches(not_embedded, batch_format="pyarrow").take_all()
        fresh = len(chunk) - len(others)
        if fresh:
            location = self.svc.library().location
            lance_ray.write_lance(done.map_batches(embedded_only, batch_format="pyarrow"),
                                  location.join("lancedb", f"{table.name}.lance"), mode="append",
                                  schema=table.schema, storage_options=dict(location.storage_options))
            table.refresh()
            report.embedded += fresh
        for row in others:
            if row["_status"] == SKIPPED:
                report.skipped.append((row["path"], row["_error"]))
        self._reuse([r for r in others if r["_status"] == REUSE], table, report)
        known.update(h for h in (r["hash"] for r in others) if h)

    def _pipeline(self, chunk: list[FileEntry], table: SpaceTable, known: set[str]) -> Any:
        import ray

        if not self.connected:
            connect(self.address, self._actor_count())
            self.connected = True
        s = self.settings
        items = [{"path": e.path, "size": e.size, "mtime_ns": e.mtime_ns} for e in chunk]
        # at least a few blocks per actor (one block feeds one actor at a time), never more blocks than files
        blocks = min(len(items), max(4 * self._actor_count(), len(items) // s.batch_size))
        decode_args = {"known": frozenset(known), "max_pixels": s.max_image_pixels,
                       "draft": self.svc.encoder.image_draft_size(), "options": dict(s.storage_options)}
        # The actors need the model settings only: the object-store options (credentials) stay on the driver
        # and in the decode tasks that read the objects.
        model_settings = s.model_dump(exclude={"storage_options", "library_uri"})
        return (ray.data.from_items(items, override_num_blocks=blocks)
                .map_batches(decode_batch, batch_format="pyarrow", batch_size=s.batch_size, fn_kwargs=decode_args)
                .map_batches(self.embedder, batch_format="pyarrow", batch_size=s.batch_size,
                             fn_constructor_kwargs={"settings": model_settings, "schema": table.schema,
                                                    "batch_size": s.batch_size},
                             compute=ray.data.ActorPoolStrategy(size=self._actor_count()),
                             # An actor whose process dies (a crash, the OOM killer, a lost node) is restarted
                             # and its batches in flight run again: Ray Data's actor pools default to
                             # max_restarts=-1, max_task_retries=-1. Not passed here: since Ray 2.60 extra remote
                             # args warn as deprecated; tests/netns/check_ray_faults.py guards the behaviour.
                             num_cpus=1, num_gpus=self._gpus_per_actor()))

    def _actor_count(self) -> int:
        if self.actors:
            return self.actors
        gpus = self._cluster_gpus()
        return int(gpus) if gpus >= 1 and self.settings.device != "cpu" else 2

    def _gpus_per_actor(self) -> float:
        return 1.0 if self._cluster_gpus() >= 1 and self.settings.device != "cpu" else 0.0

    def _cluster_gpus(self) -> float:
        import ray

        return float(ray.cluster_resources().get("GPU", 0)) if ray.is_initialized() else _local_gpus()

    def _reuse(self, rows: list[dict], table: SpaceTable, report: IndexReport) -> None:
        """Copies and renames: the vector of an identical file already in the table, as the single-process
        indexer reuses it."""
        if not rows:
            return
        twins = table.rows_for_hashes({r["hash"] for r in rows}, ("vector",))
        now = datetime.now(timezone.utc)
        found = [file_row(prepared_of(r), twins[r["hash"]], now) for r in rows if r["hash"] in twins]
        for r in rows:
            if r["hash"] not in twins:
                report.skipped.append((r["path"], "its identical copy left the library meanwhile; run again"))
        table.upsert_rows(found)
        report.reused += len(found)


def _local_gpus() -> float:
    if os.environ.get("CUDA_VISIBLE_DEVICES") == "":
        return 0.0
    try:
        import torch

        return float(torch.cuda.device_count())
    except ImportError:
        return 0.0

