"""Concurrent scans of one resident snapshot share one pass (search/batching.py); each caller still gets its
own answer, and requests that could answer differently (another filter, k, codec or table version) never
share a scan."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from mmsearch.query.filters import build_filters
from mmsearch.search.batching import ScanBatcher
from mmsearch.store import Library
from tests.test_vectors import SPACE, clustered, exact_top, row, searcher, unit

N = 600
FOLDERS = ("/lib/b", "/lib/a")  # even rows, odd rows


@pytest.fixture
def table(tmp_path):
    lib = Library(tmp_path / "lib", create=True)
    vectors = clustered(N, seed=5)
    t = lib.table("image", SPACE, create=True)
    t.upsert_rows([row(f"{FOLDERS[i % 2]}/r{i:05d}.jpg", v) for i, v in enumerate(vectors)])
    return t, vectors


class Gate:
    """Holds the first scan until the others have queued behind it."""

    def __init__(self, snapshot, queued: int, batcher: ScanBatcher) -> None:
        self.inner, self.queued, self.batcher = snapshot.search_many, queued, batcher
        self.calls: list[int] = []
        snapshot_search = self

        def search_many(q, k, filters=None, rerank=None, keep=None):
            snapshot_search.calls.append(len(q))
            if len(snapshot_search.calls) == 1:
                for _ in range(500):
                    if sum(len(x.waiting) for x in batcher._queues.values()) >= queued:
                        break
                    threading.Event().wait(0.01)
            return snapshot_search.inner(q, k, filters, rerank, keep)

        object.__setattr__(snapshot, "search_many", search_many)


def _together(n: int, fn) -> list:
    out: list = [None] * n
    errors: list = []

    def run(i: int) -> None:
        try:
            out[i] = fn(i)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
        threading.Event().wait(0.005)  # the first one leads; the rest arrive while it scans
    for t in threads:
        t.join(60)
    assert not errors, errors
    return out


@pytest.mark.parametrize("kind", ["float32", "int8"])
def test_concurrent_queries_share_a_scan_and_each_gets_its_own_answer(table, kind) -> None:
    t, _ = table
    vs = searcher(kind)
    snap = vs.snapshot(t)
    queries = unit(np.random.default_rng(9).standard_normal((9, t.space.dim)))
    alone = [snap.search_many(q.reshape(1, -1), 10)[0] for q in queries]
    gate = Gate(snap, len(queries) - 1, vs.batcher)
    got = _together(len(queries), lambda i: vs.search_many(t, [queries[i]], 10)[0])
    assert [[r["path"] for r, _ in g] for g in got] == [[r["path"] for r, _ in a] for a in alone]
    assert [[s for _, s in g] for g in got] == [[s for _, s in a] for a in alone]
    assert gate.calls[0] == 1 and sum(gate.calls) == len(queries) and len(gate.calls) == 2  # 1, then 8 stacked
    assert vs.batcher._queues == {}  # nothing left behind


def test_different_filters_and_k_never_share_a_scan(table) -> None:
    t, vectors = table
    vs = searcher("float32")
    snap = vs.snapshot(t)
    paths = [f"{FOLDERS[i % 2]}/r{i:05d}.jpg" for i in range(N)]
    queries = unit(np.random.default_rng(3).standard_normal((6, t.space.dim)))
    folders = [None, "/lib/a", "/lib/b", None, "/lib/a", None]
    ks = [10, 10, 10, 5, 10, 10]
    Gate(snap, len(queries) - 1, vs.batcher)
    got = _together(len(queries), lambda i: vs.search_many(
        t, [queries[i]], ks[i], build_filters(t.schema, folder=folders[i]) if folders[i] else None)[0])
    for i, g in enumerate(got):
        keep = [j for j in range(N) if folders[i] in (None, FOLDERS[j % 2])]
        want = exact_top(vectors[keep], [paths[j] for j in keep], queries[i], ks[i])
        assert [r["path"] for r, _ in g] == want


def test_a_failing_scan_reaches_every_stacked_caller_and_the_next_scan_runs(table) -> None:
    t, _ = table
    vs = searcher("float32")
    snap = vs.snapshot(t)
    inner = snap.search_many
    calls = []

    def broken(q, k, filters=None, rerank=None, keep=None):
        calls.append(len(q))
        if len(calls) == 1:
            for _ in range(500):
                if sum(len(x.waiting) for x in vs.batcher._queues.values()) >= 3:
                    break
                threading.Event().wait(0.01)
            return inner(q, k, filters, rerank, keep)
        raise RuntimeError("disk gone")

    object.__setattr__(snap, "search_many", broken)
    q = unit(np.random.default_rng(1).standard_normal((4, t.space.dim)))
    results: list = [None] * 4

    def run(i):
        try:
            results[i] = vs.search_many(t, [q[i]], 5)
        except RuntimeError as exc:
            results[i] = str(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for th in threads:
        th.start()
        threading.Event().wait(0.005)
    for th in threads:
        th.join(60)
    assert isinstance(results[0], list) and results[1:] == ["disk gone"] * 3
    object.__setattr__(snap, "search_many", inner)
    assert len(vs.search_many(t, [q[0]], 5)[0]) == 5  # the batcher is not stuck
