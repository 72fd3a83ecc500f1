"""Faults and races of the scale-out path, on an S3 library (moto) with a 2-actor Ray pipeline: a model actor whose
process dies mid-run, a reader searching in a loop while a chunk commits, and the index build as a Ray job.
Runs only in a loopback-only namespace (tests/test_scaleout.py)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from mmsearch.query.parts import QueryPart
from mmsearch.scale.ray_index import index_with_ray
from mmsearch.scale.stages import Embedder
from mmsearch.service import MMSearch

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
