"""Concurrent scans of one resident snapshot share one pass over its codes.

Below the ANN threshold every query scans the whole resident table: at 100k rows of float32 one query's scan
costs ~45 ms of CPU, four queries stacked into one matrix product ~20 ms each (the codes are read once for all
of them). When many people search at once, `ScanBatcher` stacks the scans that arrive while another scan of
the same snapshot runs.

It adds no wait: the first caller for a key (snapshot, filters, k, rerank) leads and scans at once; callers
that arrive meanwhile queue. When the leader's scan ends it hands each of its callers their rows, and passes
the lead to the oldest queued caller, who scans everything queued by then in one call. Only requests that
would get the same answer alone are stacked: the same immutable snapshot (so one table version), the same
filter SQL, the same k and the same rerank shortlist; a search row depends only on its own query vector.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from mmsearch.query.filters import Filters

if TYPE_CHECKING:
    from mmsearch.search.resident import Snapshot

MAX_BATCH = 32  # query vectors per scan


@dataclass
class _Request:
    vectors: np.ndarray
    done: threading.Event = field(default_factory=threading.Event)
    lead: bool = False  # handed the lead: this caller scans the queue
    result: list | None = None
    error: BaseException | None = None


@dataclass
class _Queue:
    snapshot: "Snapshot"
    waiting: list[_Request] = field(default_factory=list)
    busy: bool = False


class ScanBatcher:
    def __init__(self, max_batch: int = MAX_BATCH) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, not {max_batch}")
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._queues: dict[tuple, _Queue] = {}
        self.scans = 0  # search_many calls made, for tests and benchmarks

    def search_many(self, snapshot: "Snapshot", vectors: np.ndarray, k: int, filters: Filters | None,
                    rerank: int | None, keep: int | None = None) -> list[list[tuple[dict, float]]]:
        key = (id(snapshot), (filters.sql() or "") if filters else "", k, rerank, keep)
        req = _Request(np.asarray(vectors, np.float32))
        with self._lock:
            queue = self._queues.get(key)
            if queue is None or queue.snapshot is not snapshot:
                queue = self._queues[key] = _Queue(snapshot)
            queue.waiting.append(req)
            req.lead = not queue.busy
            queue.busy = True
        if not req.lead:
            req.done.wait()
        if req.lead:  # led from the start, or handed the lead by the scan before
            self._lead(key, queue, k, filters, rerank, keep)
        if req.error is not None:
            raise req.error
        assert req.result is not None
        return req.result

    def _lead(self, key: tuple, queue: _Queue, k: int, filters: Filters | None, rerank: int | None,
              keep: int | None) -> None:
        with self._lock:
            batch, size = [], 0
            while queue.waiting and (not batch or size + len(queue.waiting[0].vectors) <= self.max_batch):
                req = queue.waiting.pop(0)
                batch.append(req)
                size += len(req.vectors)
        try:
            self.scans += 1
            found = queue.snapshot.search_many(np.concatenate([r.vectors for r in batch]), k, filters, rerank, keep)
            start = 0
            for req in batch:
                req.result = found[start:start + len(req.vectors)]
                start += len(req.vectors)
        except BaseException as exc:  # noqa: BLE001 - each stacked caller gets the scan's own error
            for req in batch:
                req.error = exc
        with self._lock:
            if queue.waiting:
                nxt = queue.waiting[0]
                nxt.lead = True  # the oldest waiting caller scans the rest
                nxt.done.set()
            else:
                queue.busy = False
                if self._queues.get(key) is queue:
                    del self._queues[key]
        for req in batch:
            req.lead = False
            req.done.set()
