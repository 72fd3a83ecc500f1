"""Quick second runs (issue 14, part 5): an unchanged folder costs one stat walk and one columnar read."""

from __future__ import annotations

import os
from collections import Counter

import pytest

from mmsearch.ingest.pipelines import ImagePipeline
from mmsearch.service import MMSearch
from mmsearch.store.table import SpaceTable

# Everything the indexer may ask a table; an unchanged re-run may only read (path, size, mtime) once.
TABLE_CALLS = ("existing_under", "_scan", "rows_for_hashes", "rows_for_paths", "known_hashes", "vectors_for_hashes",
               "upsert", "upsert_rows", "delete_paths", "iter_vectors")


@pytest.fixture
def calls(monkeypatch) -> Counter:
    """Counts table queries, file preparations (read + hash) and model loads/forwards while a test runs."""
    seen: Counter = Counter()

    def counting(owner, name):  # noqa: ANN001
        original = getattr(owner, name)

        def wrapper(*args, **kwargs):  # noqa: ANN002, ANN003
            seen[name] += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, wrapper)

    for name in TABLE_CALLS:
        counting(SpaceTable, name)
    counting(ImagePipeline, "prepare")
    seen.counting = counting  # type: ignore[attr-defined]
    return seen


def test_unchanged_rerun_reads_the_table_once_and_never_loads_the_model(settings, photo_dir, calls):
    MMSearch(settings).index([photo_dir])
    svc = MMSearch(settings)
    calls.counting(type(svc.encoder), "load")
    calls.counting(type(svc.encoder), "encode_images")
    calls.clear()
    report = svc.index([photo_dir])
    assert (report.embedded, report.reused, report.unchanged) == (0, 0, 7)
    # One columnar read of (path, size, mtime) for the image table; no per-file lookups, no hashing, no writes.
    assert calls["existing_under"] == 1 and calls["_scan"] == 1
    assert calls["prepare"] == 0 and calls["rows_for_hashes"] == calls["known_hashes"] == 0
    assert calls["upsert"] == calls["upsert_rows"] == 0
    assert calls["load"] == 0 and calls["encode_images"] == 0  # nothing to embed: the model stays on disk


def test_a_touched_file_is_rechecked_and_keeps_its_vector(settings, photo_dir, calls):
    svc = MMSearch(settings)
    svc.index([photo_dir])
    touched = photo_dir / "img1.png"
    st = touched.stat()
    os.utime(touched, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # same bytes, new mtime
    calls.counting(type(svc.encoder), "encode_images")
    calls.clear()
    report = svc.index([photo_dir])
    assert calls["prepare"] == 1  # only the touched file is read and hashed
    assert (report.embedded, report.reused, report.unchanged) == (0, 1, 6)  # same hash: its vector is kept
    assert calls["encode_images"] == 0
    table = svc.searcher.table()
    row = table.rows_for_paths([str(touched)])[str(touched)]
    assert row["mtime_ns"] == st.st_mtime_ns + 5_000_000_000  # the new mtime is recorded...
    calls.clear()
    assert svc.index([photo_dir]).unchanged == 7  # ...so the next run skips it again
    assert calls["prepare"] == 0


def test_a_file_whose_size_changes_at_the_same_mtime_is_rechecked(settings, photo_dir, calls):
    svc = MMSearch(settings)
    svc.index([photo_dir])
    target = photo_dir / "img0.jpg"
    st = target.stat()
    with open(target, "ab") as fh:
        fh.write(b"\0" * 16)  # a JPEG decoder ignores bytes after the end marker: same picture, new hash
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    calls.clear()
    report = svc.index([photo_dir])
    assert calls["prepare"] == 1 and report.embedded == 1 and report.unchanged == 6
