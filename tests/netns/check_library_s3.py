"""A library on S3 (moto on loopback): metadata, the lock, indexing, search, secrets."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time

import pytest

from mmsearch.errors import LibraryBusy, LibraryNotFound
from mmsearch.location import parse_location
from mmsearch.service import MMSearch
from mmsearch.store.library import Library

from .conftest import SECRET, all_object_bytes


def test_metadata_and_lock_live_in_the_bucket(bucket: str) -> None:
    uri = f"s3://{bucket}/lib"
    with pytest.raises(LibraryNotFound):
        Library(uri, create=False)
    lib = Library(uri)
    lib.add_root("s3://photos/2026")
    lib.set_vector_setting("int8")
    again = Library(uri, create=False)  # another process's view
    assert again.roots == ["s3://photos/2026"] and again.vector_setting == "int8"
    assert again.contains("s3://photos/2026/a.jpg") and not again.contains("s3://photos/2025/a.jpg")
    with lib.writer_lock():
        with pytest.raises(LibraryBusy, match="being indexed by pid"):
            with again.writer_lock():
                pass
    with again.writer_lock():  # released: the next writer gets it
        pass


def test_a_killed_holder_does_not_block_the_rerun(bucket: str) -> None:
    uri = f"s3://{bucket}/lib"
    Library(uri)
    code = ("import os,sys; from mmsearch.store.library import Library\n"
            f"lib = Library({uri!r})\n"
            "with lib.writer_lock():\n    print('held', flush=True); os.kill(os.getpid(), 9)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == -9 and "held" in done.stdout
    with Library(uri).writer_lock():  # the dead pid's claim is dropped
        pass


def test_index_and_search_on_s3_equal_local(bucket: str, settings, photo_dir, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    local = MMSearch(settings)
    local.index([photo_dir])
    remote_settings = settings.model_copy(update={"library_uri": f"s3://{bucket}/lib",
                                                  "storage_options": {"aws_secret_access_key": SECRET}})
    remote = MMSearch(remote_settings)
    report = remote.index([photo_dir])
    assert report.embedded == 7
    assert remote.library().location.remote and remote.status()["data_dir"] == f"s3://{bucket}/lib"
    for query in ("a photo", "img3"):
        here = [(h.path, round(h.score, 5)) for h in local.search_text(query, k=5)]
        there = [(h.path, round(h.score, 5)) for h in remote.search_text(query, k=5)]
        assert here == there
    # nothing secret in the bucket (metadata, manifests, data) nor in the logs
    blobs = list(all_object_bytes(bucket))
    assert any(k.endswith(".lance") for k, _ in blobs)
    assert not [k for k, b in blobs if SECRET.encode() in b]
    assert SECRET not in caplog.text


def test_a_second_reader_sees_a_commit_within_the_interval(bucket: str, settings, photo_dir) -> None:
    from tests.conftest import write_image

    uri = f"s3://{bucket}/lib"
    writer = MMSearch(settings.model_copy(update={"library_uri": uri}))
    writer.index([photo_dir])
    readers = [Library(parse_location(uri), create=False, consistency_s=0.5) for _ in range(2)]
    tables = [r.tables("image")[0] for r in readers]
    assert [t.count() for t in tables] == [7, 7]
    write_image(photo_dir / "new.png", seed=99)
    writer.index([photo_dir])
    time.sleep(0.6)
    assert [t.count() for t in tables] == [8, 8]


def _cli(data_dir: str, settings, *args: str):
    from click.testing import CliRunner

    from mmsearch.cli import cli

    base = ["--data-dir", data_dir, "--model", settings.model, "--pretrained", "", "--device", "cpu", "--offline"]
    res = CliRunner().invoke(cli, base + list(args), catch_exceptions=False,
                             env={"MMSEARCH_MODELS_DIR": str(settings.models_dir)})
    assert res.exit_code == 0, res.output
    return res


SEARCHES = [
    ("photo",),
    ("img3",),  # a file name: the keyword (BM25) side of the hybrid search
    ("photo", "--where", "width>=64", "--type", "png"),
    ("--text", "photo", "--text", "img5", "--fusion", "weighted"),
    ("img2", "--no-hybrid", "--folder", "SUB"),
]


def test_filters_keyword_and_fusion_answer_the_same_on_s3(bucket: str, settings, photo_dir) -> None:
    """Through the CLI (index, maintain, search), on the same files: a local library and one on S3."""
    uri = f"s3://{bucket}/lib"
    local = str(settings.data_dir)
    for where in (local, uri):
        _cli(where, settings, "index", "-q", str(photo_dir))
        _cli(where, settings, "maintain")
    for args in SEARCHES:
        args = tuple(str(photo_dir / "sub") if a == "SUB" else a for a in args)
        here = _cli(local, settings, "search", *args, "-k", "5").stdout
        there = _cli(uri, settings, "search", *args, "-k", "5").stdout
        assert here == there and here.strip(), args


def test_a_server_on_s3_answers_and_never_indexes(bucket: str, settings, photo_dir) -> None:
    """`mmsearch serve` on an S3 library: the real server (as tests/test_ui.py starts it), its JSON API."""
    import json
    import urllib.request

    from tests.test_ui import served

    uri = f"s3://{bucket}/lib"
    _cli(uri, settings, "index", "-q", str(photo_dir))
    replica = settings.model_copy(update={"library_uri": uri, "data_dir": settings.data_dir.parent / "replica"})
    with served(replica) as url:
        answer = json.loads(urllib.request.urlopen(f"{url}api/v1/search?q=img3&k=3", timeout=60).read())
        assert answer["results"] and answer["results"][0]["file"].endswith("img3.gif"), answer
    from mmsearch.ui.actions import Actions

    refused = Actions(MMSearch(replica), photo_dir, lambda paths: None).index_folder(str(photo_dir))
    assert not refused.ok and uri in refused.message  # what the web tab's Index button answers
