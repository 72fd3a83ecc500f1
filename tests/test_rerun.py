"""Quick second runs (issue 14, part 5): an unchanged folder costs one stat walk and one columnar read."""

from __future__ import annotations

import os
import subprocess
import sys
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


HEAVY_PROBE = ("import sys\nfrom mmsearch.cli import main\nsys.argv = ['mmsearch'] + sys.argv[1:]\ntry:\n    main()\n"
               "finally:\n    print('HEAVY:' + ','.join(m for m in ('torch', 'open_clip', 'transformers', 'torchvision') "
               "if m in sys.modules), file=sys.stderr)")


def _cli_index(settings, folder) -> tuple[list[str], str]:  # noqa: ANN001
    """`mmsearch index -q FOLDER` in a fresh interpreter: the heavy modules it imported, and its stderr."""
    env = {**os.environ, "MMSEARCH_DATA_DIR": str(settings.data_dir), "MMSEARCH_MODEL": settings.model,
           "MMSEARCH_MODELS_DIR": str(settings.models_dir), "MMSEARCH_PRETRAINED": "", "MMSEARCH_DEVICE": "cpu",
           "MMSEARCH_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "MMSEARCH_TEXT_EXPORT": "false"}  # no ONNX export
    done = subprocess.run([sys.executable, "-c", HEAVY_PROBE, "index", "-q", str(folder)], env=env,
                          capture_output=True, text=True, timeout=900)  # torch's import alone: 5-60 s on busy cores
    assert done.returncode == 0, done.stderr
    heavy = [line for line in done.stderr.splitlines() if line.startswith("HEAVY:")][-1]
    return [m for m in heavy.removeprefix("HEAVY:").split(",") if m], done.stderr


def test_a_cold_unchanged_rerun_never_imports_torch(settings, photo_dir):
    MMSearch(settings).index([photo_dir])  # the first run embeds (in this process)
    heavy, err = _cli_index(settings, photo_dir)
    assert "nothing to do: 7 files unchanged" in err
    assert heavy == []  # no torch, open_clip, torchvision or transformers: nothing to embed needs none of them


def test_a_cold_run_with_a_new_file_still_loads_the_model(settings, photo_dir):
    from tests.conftest import write_image

    MMSearch(settings).index([photo_dir])
    write_image(photo_dir / "new.png", seed=99)
    heavy, err = _cli_index(settings, photo_dir)
    assert "embedded 1" in err and "torch" in heavy and "open_clip" in heavy  # the lazy imports still happen
