"""Faults and races of the scale-out path, on an S3 library (moto) with a 2-actor Ray pipeline: a model actor whose
process dies mid-run, a reader searching in a loop while a chunk commits, and the index build as a Ray job.
Runs only in a loopback-only namespace (tests/test_scaleout.py)."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from mmsearch.query.parts import QueryPart
from mmsearch.scale.ray_index import index_with_ray
from mmsearch.scale.stages import Embedder
from mmsearch.service import MMSearch
from mmsearch.store.library import Library

from .check_ray_index import _rows, assert_same_library
from .conftest import upload_folder
from .photos import write_photos

N = 60


def dies_once(marker: Path) -> type:
    """A model actor whose process exits on its second batch (after a first batch went out), once in the whole
    run: the first actor to create the marker file dies, every later one (and its restart) carries on."""

    class DiesOnce(Embedder):
        calls = 0

        def __call__(self, batch):
            self.calls += 1
            if self.calls == 2:
                try:
                    fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                except FileExistsError:
                    return super().__call__(batch)
                os.write(fd, str(os.getpid()).encode())
                os.close(fd)
                os._exit(1)  # no exception, no cleanup: a crashed or OOM-killed worker
            return super().__call__(batch)

    return DiesOnce


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    write_photos(tmp_path / "photos", N)
    return tmp_path / "photos"


def test_a_model_actor_that_dies_mid_run_is_restarted_and_nothing_is_duplicated(
        bucket: str, photos: Path, settings, tmp_path: Path) -> None:
    upload_folder(photos, bucket, "photos")
    root = f"s3://{bucket}/photos"
    marker = tmp_path / "actor-died"
    ray_svc = MMSearch(settings.model_copy(update={"library_uri": f"s3://{bucket}/library"}))
    report = index_with_ray(ray_svc, [root], "auto", actors=2, embedder=dies_once(marker))
    assert marker.exists(), "no actor died: the fault was not injected"
    assert (report.embedded, report.reused, report.skipped) == (N, 0, [])
    paths = [r["path"] for r in _rows(ray_svc)]
    assert len(paths) == N == len(set(paths))  # the batch in flight when the actor died is in once
    single = MMSearch(settings.model_copy(update={"data_dir": tmp_path / "single"}))
    single.index([root])
    assert_same_library(ray_svc, single)


def _split_photos(photos: Path, first: int, later: Path) -> list[str]:
    """Moves the photos numbered `first` and up to `later` (same relative paths); returns their relative paths."""
    moved = []
    for f in sorted(photos.rglob("*.*")):
        if int(f.stem.rsplit("-", 1)[1]) >= first:
            rel = f.relative_to(photos).as_posix()
            (later / rel).parent.mkdir(parents=True, exist_ok=True)
            f.rename(later / rel)
            moved.append(rel)
    return moved


class Reader(threading.Thread):
    """A search server's view (consistency interval 0: every query looks for a new version), asking in a loop:
    the row count, the key set of a search that returns every row (the one query path, resident vectors), and
    the key set of a scan. Each answer is recorded whole."""

    def __init__(self, svc: MMSearch) -> None:
        super().__init__(daemon=True)
        self.svc, self.answers, self.stop, self.error = svc, [], threading.Event(), None

    def answer(self) -> tuple[int, frozenset, frozenset]:
        table = self.svc.library().tables("image")[0]
        count = table.count()
        hits = self.svc.query([QueryPart("text", "a photo")], self.svc.options(k=1000, hybrid=False)).hits
        found = frozenset(h.result.path for h in hits)
        assert len(found) == len(hits), "a path answered twice"
        scanned = table.table.to_arrow().column("path").to_pylist()
        assert len(scanned) == len(set(scanned)), "a path stored twice"
        return count, found, frozenset(scanned)

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.answers.append((time.monotonic(), self.answer()))
        except Exception as exc:  # noqa: BLE001 - reported by the test's thread
            self.error = exc


def test_a_search_during_a_commit_sees_the_old_or_the_new_table_never_a_mix(
        bucket: str, photos: Path, settings, tmp_path: Path) -> None:
    later = _split_photos(photos, 40, tmp_path / "later")
    root, uri = f"s3://{bucket}/photos", f"s3://{bucket}/library"
    upload_folder(photos, bucket, "photos")
    writer = MMSearch(settings.model_copy(update={"library_uri": uri}))
    index_with_ray(writer, [root], "auto", actors=2)
    replica = MMSearch(settings.model_copy(update={"library_uri": uri, "read_consistency_s": 0,
                                                   "data_dir": tmp_path / "replica"}))
    reader = Reader(replica)
    old = reader.answer()
    version = replica.library().tables("image")[0].table.version
    assert old[0] == 40 and old[1] == old[2] and len(old[1]) == 40
    upload_folder(tmp_path / "later", bucket, "photos")
    reader.start()
    started = time.monotonic()
    report = index_with_ray(writer, [root], "auto", actors=2)  # one chunk: one commit of 20 rows
    finished = time.monotonic()
    deadline = finished + 60  # a few searches more that start after the commit (however slow the machine)
    # a few searches that start after the commit, and one that sees it: a replica on S3 may see the new version
    # a moment after the writer returns (the stores' listing), never half of it (asserted below)
    def waiting() -> bool:
        after = [a for t, a in reader.answers if t > finished]
        return len(after) < 3 or all(a[0] == old[0] for a in after)

    while waiting() and time.monotonic() < deadline and reader.is_alive():
        time.sleep(0.2)
    reader.stop.set()
    reader.join(60)
    assert reader.error is None, reader.error
    new = reader.answer()
    assert report.embedded == len(later) == 20 and new[0] == N
    assert new[1] == new[2] == old[1] | {f"{root}/{rel}" for rel in later}
    assert replica.library().tables("image")[0].table.version == version + 1  # the chunk is one commit
    during = [a for t, a in reader.answers if started <= t <= finished]
    assert len(during) >= 5, f"only {len(during)} searches ran during the commit"
    # each answer on its own (the three are separate calls: a commit may land between them)
    counts, hits, scans = (Counter(a[i] for _, a in reader.answers) for i in range(3))
    assert set(counts) == {old[0], new[0]}, counts  # the reader saw the commit land while it searched
    assert set(hits) == {old[1], new[1]}, f"hits of sizes {[(len(h), n) for h, n in hits.items()]}"
    assert set(scans) == {old[2], new[2]}, f"scans of sizes {[(len(s), n) for s, n in scans.items()]}"


def _cli(data_dir: str, settings, *args: str, **env: str) -> str:
    from click.testing import CliRunner

    from mmsearch.cli import cli

    base = ["--data-dir", data_dir, "--model", settings.model, "--pretrained", "", "--device", "cpu", "--offline"]
    res = CliRunner().invoke(cli, base + list(args), catch_exceptions=False,
                             env={"MMSEARCH_MODELS_DIR": str(settings.models_dir), **env})
    assert res.exit_code == 0, res.output
    return res.output


def test_maintain_on_ray_builds_the_indexes_as_a_ray_job_and_searches_answer_the_same(
        bucket: str, photos: Path, settings) -> None:
    """`mmsearch maintain --ray auto` on the S3 library built by `index_with_ray` (which builds no index), the ANN
    threshold lowered so that the 60 rows get an ANN index. Searches are compared with the same library before
    the build (a local library of the same objects holds vectors equal only to 1e-5, which can swap near ties)
    and, for the keyword index, with the one a local `index` builds in-process."""
    upload_folder(photos, bucket, "photos")
    root, uri, local = f"s3://{bucket}/photos", f"s3://{bucket}/library", str(settings.data_dir)
    ann = {"MMSEARCH_ANN_THRESHOLD": "20"}
    index_with_ray(MMSearch(settings.model_copy(update={"library_uri": uri})), [root], "auto", actors=2)
    _cli(local, settings, "index", "-q", root)
    searches = [("search", "a photo", "--no-hybrid", "-k", "5"), ("search", "coffee", "--no-hybrid", "--type", "png"),
                ("search", "chelsea", "--hybrid", "-k", "5", "--where", "width>=64")]
    before = [_cli(uri, settings, *q, **ann) for q in searches]
    assert not _keyword_hits(before[2])  # no keyword index yet
    said = _cli(uri, settings, "maintain", "--ray", "auto", **ann)
    assert "keyword index built" in said and "ANN index built" in said, said
    where = re.search(r"ran as a Ray task on \S+ \(pid (\d+)\)", said)
    assert where and int(where.group(1)) != os.getpid(), said  # in a Ray worker, not in this driver
    table = Library(uri, create=False).tables("image")[0]
    assert table.has_keyword_index() and table.has_ann_index() and table.count() == N
    assert MMSearch(settings.model_copy(update={"library_uri": uri, "ann_threshold": 20})).searcher.vectors.uses_ann(table)
    after = [_cli(uri, settings, *q, **ann) for q in searches]
    assert after[:2] == before[:2] and all(a.strip() for a in after)  # dense answers, now through the ANN index
    assert _keyword_hits(after[2]), after[2]  # the hybrid search now has its keyword side
    here = Library(local, create=False).tables("image")[0]
    for text in ("chelsea", "coffee", "set2"):  # BM25 scores, whatever the order of tied rows
        found = [{r["path"]: round(r["_score"], 4) for r in t.keyword_search(text, N).to_pylist()} for t in (table, here)]
        assert found[0] == found[1] and found[0], text


def _keyword_hits(output: str) -> list[str]:
    return [r["path"] for r in map(json.loads, output.splitlines())
            if any(m["kind"] == "keyword" for m in r["matched"])]
