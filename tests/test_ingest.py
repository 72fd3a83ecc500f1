"""Ingestion against a real LanceDB in tmp_path with the tiny model."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from mmsearch.errors import LibraryBusy, MMSearchError
from mmsearch.service import MMSearch
from tests.conftest import write_image


@pytest.fixture
def svc(settings) -> MMSearch:
    return MMSearch(settings)


def _rows(svc: MMSearch) -> dict[str, dict]:
    table = svc.searcher.table()
    return {r["path"]: r for r in table.table.to_arrow().to_pylist()}


def test_new_folder_is_indexed_with_metadata(svc, photo_dir):
    progress = []
    report = svc.index([photo_dir], on_progress=progress.append)
    assert report.embedded == 7 and report.skipped == []
    rows = _rows(svc)
    assert set(rows) == {str(p) for p in photo_dir.rglob("*") if p.is_file()}
    row = rows[str(photo_dir / "img0.jpg")]
    assert (row["width"], row["height"], row["format"]) == (64, 48, "JPEG")
    assert row["size"] == (photo_dir / "img0.jpg").stat().st_size and len(row["hash"]) == 32
    assert np.isclose(np.linalg.norm(row["vector"]), 1.0, atol=1e-5)
    assert progress[-1].done == progress[-1].total == 7
    assert svc.library().roots == [str(photo_dir)]


def test_second_run_over_unchanged_folder_embeds_nothing(svc, photo_dir):
    svc.index([photo_dir])
    version = svc.searcher.table().version
    report = svc.index([photo_dir])
    assert (report.embedded, report.reused, report.removed, report.unchanged) == (0, 0, 0, 7)
    assert not report.changed and "nothing to do" in report.summary()
    assert svc.searcher.table().version == version  # not even an empty commit


def test_changed_deleted_renamed_and_duplicate_files(svc, photo_dir):
    svc.index([photo_dir])
    before = _rows(svc)
    write_image(photo_dir / "img0.jpg", seed=100)  # changed content
    os.utime(photo_dir / "img0.jpg", ns=(1, 1))
    (photo_dir / "img1.png").unlink()  # deleted
    (photo_dir / "img2.webp").rename(photo_dir / "renamed.webp")  # renamed
    shutil.copy(photo_dir / "img3.gif", photo_dir / "sub" / "copy.gif")  # duplicate
    report = svc.index([photo_dir])
    assert report.embedded == 1  # only the changed file met the model
    assert report.reused == 2 and report.removed == 2  # img1 and the old name of img2
    after = _rows(svc)
    assert str(photo_dir / "img1.png") not in after and str(photo_dir / "img2.webp") not in after
    assert not np.allclose(after[str(photo_dir / "img0.jpg")]["vector"], before[str(photo_dir / "img0.jpg")]["vector"])
    np.testing.assert_array_equal(after[str(photo_dir / "renamed.webp")]["vector"],
                                  before[str(photo_dir / "img2.webp")]["vector"])
    np.testing.assert_array_equal(after[str(photo_dir / "sub" / "copy.gif")]["vector"],
                                  before[str(photo_dir / "img3.gif")]["vector"])
    assert len(after) == 7


def test_bad_files_are_skipped_with_a_reason_and_indexing_goes_on(svc, photo_dir, settings):
    (photo_dir / "empty.jpg").write_bytes(b"")
    (photo_dir / "text.png").write_text("I am not a picture")
    good = (photo_dir / "img0.jpg").read_bytes()
    (photo_dir / "truncated.jpg").write_bytes(good[: len(good) // 3])
    from PIL import Image

    Image.new("L", (5000, 5000)).save(photo_dir / "bomb.png")
    settings.max_image_pixels = 1_000_000
    skipped = []
    report = svc.index([photo_dir], on_skip=lambda p, r: skipped.append((p, r)))
    reasons = dict(report.skipped)
    assert reasons.keys() == {str(photo_dir / n) for n in ["empty.jpg", "text.png", "truncated.jpg", "bomb.png"]}
    assert "empty" in reasons[str(photo_dir / "empty.jpg")]
    assert "limit" in reasons[str(photo_dir / "bomb.png")]
    assert skipped == report.skipped and report.embedded == 7
    assert "skipped 4" in report.summary()


def test_file_that_vanishes_mid_run_is_skipped(svc, photo_dir, monkeypatch):
    from mmsearch.ingest import indexer

    real = indexer.Indexer._prepare

    def vanish(self, entry, known, draft):
        if entry.path.endswith("img4.bmp"):
            os.unlink(entry.path)
        return real(self, entry, known, draft)

    monkeypatch.setattr(indexer.Indexer, "_prepare", vanish)
    report = svc.index([photo_dir])
    assert [p for p, _ in report.skipped] == [str(photo_dir / "img4.bmp")]
    assert "cannot read" in report.skipped[0][1] and report.embedded == 6


def test_missing_root_is_a_clear_error(svc, tmp_path):
    with pytest.raises(MMSearchError, match="no such file or folder"):
        svc.index([tmp_path / "nope"])


def test_interrupted_run_keeps_committed_rows_and_resumes(svc, photo_dir, settings):
    for i in range(7, 20):
        write_image(photo_dir / f"more{i}.jpg", seed=i)
    seen = []

    def interrupt(p):
        seen.append(p.done)
        if p.done == 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        svc.index([photo_dir], on_progress=interrupt)
    assert seen[-1] == 10
    committed = len(_rows(svc))
    # batch_size=4, commit_every=4: files 1-4 and 5-8 were committed; 9 and 10 were still in the open batch
    assert committed == 8
    report = svc.index([photo_dir])
    assert report.unchanged == 8 and report.embedded == 12
    assert len(_rows(svc)) == 20


def test_a_second_indexer_on_the_same_library_is_refused(svc, photo_dir, settings):
    lib = svc.library(create=True)
    entered, release = threading.Event(), threading.Event()

    def hold():
        with lib.writer_lock():
            entered.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    entered.wait(10)
    try:
        with pytest.raises(LibraryBusy, match="being indexed by pid"):
            MMSearch(settings).index([photo_dir])
    finally:
        release.set()
        t.join()
    assert MMSearch(settings).index([photo_dir]).embedded == 7


def test_two_models_get_two_tables_and_never_mix(settings, photo_dir, tmp_path):
    from tests.conftest import make_tiny_model_dir

    MMSearch(settings).index([photo_dir])
    other = make_tiny_model_dir(tmp_path / "other-clip", seed=7)
    svc2 = MMSearch(settings.model_copy(update={"model": str(other)}))
    svc2.index([photo_dir])
    names = svc2.library().table_names()
    assert len(names) == 2 and all(n.startswith("image__") for n in names)
    assert all(t["rows"] == 7 for t in svc2.status()["tables"])


def test_indexing_a_single_file(svc, photo_dir):
    report = svc.index([photo_dir / "img0.jpg"])
    assert report.embedded == 1
    assert list(_rows(svc)) == [str(photo_dir / "img0.jpg")]
