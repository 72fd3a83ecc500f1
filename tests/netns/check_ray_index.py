"""`index --ray` with a 2-actor Ray Data pipeline, photos and library on S3 (moto), against the single-process
indexer on the same objects. Runs only in a loopback-only namespace, which proves it needs no outside address."""

from __future__ import annotations

import os

import numpy as np
import pytest

from mmsearch.service import MMSearch
from mmsearch.scale.ray_index import index_with_ray

from .conftest import upload_folder
from .photos import write_photos

N = 120


def _rows(svc: MMSearch) -> list[dict]:
    table = svc.library().tables("image")[0].table
    rows = table.to_arrow().drop_columns(["indexed_at"]).to_pylist()
    return sorted(rows, key=lambda r: r["path"])


def assert_same_library(a: MMSearch, b: MMSearch) -> None:
    ra, rb = _rows(a), _rows(b)
    assert [r["path"] for r in ra] == [r["path"] for r in rb]
    for x, y in zip(ra, rb):
        vx, vy = np.asarray(x.pop("vector")), np.asarray(y.pop("vector"))
        assert x == y
        np.testing.assert_allclose(vx, vy, atol=1e-5)  # batches of another size: float sums in another order


@pytest.fixture
def photos_on_s3(bucket: str, tmp_path) -> str:
    write_photos(tmp_path / "photos", N)
    upload_folder(tmp_path / "photos", bucket, "photos/2026")
    return f"s3://{bucket}/photos/2026"


def test_ray_on_s3_equals_the_single_process_indexer(bucket: str, photos_on_s3: str, settings, tmp_path) -> None:
    import boto3

    ray_svc = MMSearch(settings.model_copy(update={"library_uri": f"s3://{bucket}/library", "ray_chunk_files": 64}))
    single = MMSearch(settings.model_copy(update={"data_dir": tmp_path / "single"}))
    report = index_with_ray(ray_svc, [photos_on_s3], "auto", actors=2)
    assert (report.embedded, report.reused, report.skipped) == (N, 0, [])
    single.index([photos_on_s3])
    assert_same_library(ray_svc, single)
    assert ray_svc.library().roots == [photos_on_s3]

    again = index_with_ray(ray_svc, [photos_on_s3], "auto", actors=2)
    assert (again.embedded, again.reused, again.unchanged, again.removed) == (0, 0, N, 0)

    # a changed object, a deleted one, a renamed one (copied to a new key, the old key deleted)
    s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="photos/2026")["Contents"])
    changed, gone, renamed = keys[0], keys[1], keys[2]
    other = s3.get_object(Bucket=bucket, Key=keys[3])["Body"].read()
    s3.put_object(Bucket=bucket, Key=changed, Body=other)
    s3.delete_object(Bucket=bucket, Key=gone)
    s3.copy_object(Bucket=bucket, Key="photos/2026/moved/" + renamed.rsplit("/", 1)[1],
                   CopySource={"Bucket": bucket, "Key": renamed})
    s3.delete_object(Bucket=bucket, Key=renamed)
    third = index_with_ray(ray_svc, [photos_on_s3], "auto", actors=2)
    assert (third.embedded, third.reused, third.removed) == (0, 2, 2)  # both new files have twins: no model call
    assert third.unchanged == N - 3
    single.index([photos_on_s3])
    assert_same_library(ray_svc, single)


def test_a_job_killed_with_kill_9_resumes_without_embedding_twice(bucket: str, photos_on_s3: str, settings) -> None:
    import signal
    import subprocess
    import sys
    import time

    from mmsearch.store.library import Library

    uri = f"s3://{bucket}/library"
    env = {**os.environ, "MMSEARCH_DATA_DIR": uri, "MMSEARCH_MODEL": settings.model, "MMSEARCH_PRETRAINED": "",
           "MMSEARCH_DEVICE": "cpu", "MMSEARCH_OFFLINE": "1", "MMSEARCH_RAY_CHUNK_FILES": "40",
           "MMSEARCH_MODELS_DIR": str(settings.models_dir), "MMSEARCH_BATCH_SIZE": "4"}
    code = "import sys\nfrom mmsearch.cli import main\nsys.argv = ['mmsearch'] + sys.argv[1:]\nmain()"
    job = subprocess.Popen([sys.executable, "-c", code, "index", "-q", photos_on_s3, "--ray", "auto",
                            "--ray-actors", "2"], env=env, start_new_session=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    committed, deadline = 0, time.monotonic() + 400
    while committed == 0 and time.monotonic() < deadline and job.poll() is None:
        time.sleep(1)
        try:
            tables = Library(uri, create=False, consistency_s=0).tables("image")
            committed = tables[0].count() if tables else 0
        except Exception:  # noqa: BLE001 - the library appears during the run
            committed = 0
    assert job.poll() is None and 0 < committed < N, job.stdout.read().decode()[-3000:] if job.poll() else committed
    os.killpg(job.pid, signal.SIGKILL)  # the driver and the Ray processes it started
    job.wait(60)
    svc = MMSearch(settings.model_copy(update={"library_uri": uri, "ray_chunk_files": 40}))
    kept = svc.library().tables("image")[0].count()
    assert kept % 40 == 0 and kept >= committed  # whole chunks only: a commit is all or nothing
    report = index_with_ray(svc, [photos_on_s3], "auto", actors=2)  # the stale claim of the dead pid is dropped
    assert report.embedded == N - kept and report.unchanged == kept
    paths = [r["path"] for r in _rows(svc)]
    assert len(paths) == N == len(set(paths))
