"""Shared state under many threads: image decoding, the lazily built searcher, the in-memory vector
cache across a dropped and recreated table, and the background index maintenance. Real threads."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mmsearch.encoders import EmbeddingSpace
from mmsearch.errors import BadMedia
from mmsearch.media.images import decode_image
from mmsearch.search.vector import VectorSearch
from mmsearch.service import MMSearch
from mmsearch.store import Library
from mmsearch.store.table import SpaceTable, table_name, table_schema
from mmsearch.ui.thumbs import Renditions
from tests.conftest import write_image

ROOT = Path(__file__).resolve().parent.parent


def png(image: Image.Image, **params) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", **params)
    return buf.getvalue()


# -- decoding from many threads -------------------------------------------------------------------
def test_decoding_in_eight_threads_touches_no_process_wide_state():
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (20 + 7 * i, 30 + 5 * i, 3), dtype=np.uint8)) for i in range(8)]
    blobs = [png(im) for im in images]
    limits = [10**4 * (i + 1) for i in range(8)]  # each thread its own limit, as ingest and the web app have
    tiny = 100  # one caller whose limit refuses its image
    before = (Image.MAX_IMAGE_PIXELS, id(warnings.filters), list(warnings.filters))
    changed: list[tuple] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            now = (Image.MAX_IMAGE_PIXELS, id(warnings.filters), list(warnings.filters))
            if now != before:
                changed.append(now[:2])

    def decode(i: int) -> list[str]:
        wrong = []
        for _ in range(150):
            got = decode_image(blobs[i], f"/lib/{i}.png", limits[i]).image
            if got.size != images[i].size or got.tobytes() != images[i].tobytes():
                wrong.append(f"{i}: wrong pixels")
            try:
                decode_image(blobs[i], f"/lib/{i}.png", tiny)
                wrong.append(f"{i}: not refused at {tiny} pixels")
            except BadMedia as bad:
                if "exceeds the 100-pixel limit" not in str(bad):
                    wrong.append(f"{i}: {bad}")
        return wrong

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with ThreadPoolExecutor(8) as pool:
            problems = [p for found in pool.map(decode, range(8)) for p in found]
    finally:
        stop.set()
        watcher.join()
    assert problems == []
    assert changed == [], f"decoding changed Pillow's limit or the warning filters: {changed[:3]}"


def test_pillow_warnings_are_silenced_once_for_the_process():
    """In a fresh process with every warning shown: a palette image with transparency and an image
    above Pillow's own limit decode or are refused quietly, in our words, with no per-call filters."""
    script = """
import io
from PIL import Image
from mmsearch.errors import BadMedia
from mmsearch.media.images import decode_image
p = Image.new("P", (8, 8)); p.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
buf = io.BytesIO(); p.save(buf, format="PNG", transparency=b"\\x00\\xff"); palette = buf.getvalue()
buf = io.BytesIO(); Image.new("L", (1500, 1000)).save(buf, format="PNG"); big = buf.getvalue()
assert decode_image(palette, "p.png", 10**6).image.getpixel((0, 0)) == (255, 255, 255)
Image.MAX_IMAGE_PIXELS = 10**6  # Pillow warns above this at open, before our check runs
try:
    decode_image(big, "big.png", 10**6)
except BadMedia as bad:
    print(bad)
"""
    res = subprocess.run([sys.executable, "-W", "always", "-c", script], capture_output=True, text=True, cwd=ROOT,
                         timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "1500x1000 exceeds the 1000000-pixel limit" in res.stdout
    assert res.stderr == ""  # no DecompressionBombWarning, no "Palette images with Transparency"


# -- transparency is flattened onto white -----------------------------------------------------------
def drawing(mode: str) -> bytes:
    """A black square on a transparent background, in the given mode."""
    if mode == "P":
        img = Image.new("P", (40, 40), 0)
        img.putpalette([255, 0, 255, 0, 0, 0] + [0] * 762)  # index 0: magenta, transparent; 1: black
        ImageDraw.Draw(img).rectangle((10, 10, 29, 29), fill=1)
        return png(img, transparency=0)
    img = Image.new(mode, (40, 40), (0,) * len(mode))  # transparent black, as most editors save it
    ImageDraw.Draw(img).rectangle((10, 10, 29, 29), fill=(0,) * (len(mode) - 1) + (255,))
    return png(img)


def black_on_white() -> Image.Image:
    img = Image.new("RGB", (40, 40), (255, 255, 255))
    ImageDraw.Draw(img).rectangle((10, 10, 29, 29), fill=(0, 0, 0))
    return img


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_transparent_images_decode_black_on_white(mode):
    got = decode_image(drawing(mode), f"/lib/{mode}.png", 10**6).image
    assert got.mode == "RGB"
    assert got.getpixel((20, 20)) == (0, 0, 0)  # the shape
    assert got.getpixel((2, 2)) == got.getpixel((37, 37)) == (255, 255, 255)  # the background, as a browser shows it
    assert got.tobytes() == black_on_white().tobytes()


def test_thumbnails_and_vectors_of_transparent_images_are_on_white(settings, tmp_path):
    folder = tmp_path / "drawings"
    folder.mkdir()
    (folder / "transparent.png").write_bytes(drawing("RGBA"))
    black_on_white().save(folder / "opaque-white.png")
    on_black = Image.new("RGB", (40, 40), (0, 0, 0))  # what a plain convert("RGB") made of it
    on_black.save(folder / "opaque-black.png")
    thumb = Renditions(tmp_path / "thumbs", 10**6).get(str(folder / "transparent.png"), edge=40)
    shown = Image.open(thumb).convert("RGB")
    assert min(shown.getpixel((2, 2))) >= 245 and max(shown.getpixel((20, 20))) <= 10

    svc = MMSearch(settings.model_copy(update={"audio": False}))
    svc.index([folder])
    table = svc.library().table("image", svc.encoder.space)
    rows = table.rows_for_paths([str(folder / n) for n in ("transparent.png", "opaque-white.png", "opaque-black.png")],
                                with_vector=True)
    vec = {Path(p).stem: np.asarray(r["vector"], np.float32) for p, r in rows.items()}
    gap = float(np.abs(vec["opaque-white"] - vec["opaque-black"]).max())
    assert gap > 1e-3  # the model tells the two backgrounds apart ...
    np.testing.assert_allclose(vec["transparent"], vec["opaque-white"], atol=gap / 100)  # ... and sees white


# -- the searcher is built once ----------------------------------------------------------------------
def test_concurrent_first_access_builds_one_searcher(settings, monkeypatch):
    import mmsearch.service as service_module

    built = []

    class SlowSearcher(service_module.Searcher):
        def __init__(self, *args, **kwargs) -> None:
            built.append(threading.get_ident())
            time.sleep(0.05)  # building one reads the library: long enough for others to arrive
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(service_module, "Searcher", SlowSearcher)
    svc = MMSearch(settings.model_copy(update={"audio": False}))
    svc.library(create=True)
    start = threading.Barrier(16)

    def first_use(_: int):
        start.wait()
        return svc.searcher

    with ThreadPoolExecutor(16) as pool:
        got = list(pool.map(first_use, range(16)))
    assert len(built) == 1
    assert all(s is got[0] for s in got) and svc.searcher is got[0]


# -- the vector cache and a dropped-and-recreated table -------------------------------------------
SPACE = EmbeddingSpace("fixed", "m", "w", 4)


def rows(vectors: dict[str, list[float]]) -> list[dict]:
    return [{"path": p, "folder": "/lib", "name": p[5:], "hash": p, "size": 1, "mtime_ns": 0, "format": "PNG",
             "width": 1, "height": 1, "text": "", "tags": [], "vector": np.asarray(v, np.float32)}
            for p, v in vectors.items()]


def fresh_table(lib: Library, vectors: dict[str, list[float]]) -> SpaceTable:
    """Drop the table if there and create it again under the same name, as a catalog rebuild does."""
    name = table_name("image", SPACE)
    lib.db.drop_table(name, ignore_missing=True)
    table = SpaceTable(lib.db.create_table(name, schema=table_schema(SPACE, "image")), "image", SPACE)
    table.upsert_rows(rows(vectors))
    return table


def test_a_recreated_table_is_never_served_from_the_old_vectors(tmp_path):
    lib = Library(tmp_path / "lib")
    q = np.array([1, 0, 0, 0], np.float32)
    old = fresh_table(lib, {"/lib/a.png": [1, 0, 0, 0], "/lib/b.png": [0, 1, 0, 0]})
    vectors = VectorSearch(10**9)  # the searcher's, shared by every request
    assert [r["path"] for r, _ in vectors.search(old, q, 2)] == ["/lib/a.png", "/lib/b.png"]
    new = fresh_table(lib, {"/lib/a.png": [0, 1, 0, 0], "/lib/b.png": [1, 0, 0, 0]})  # the order flips
    assert new.version == old.version and new.count() == old.count()  # same name, version and size
    start = threading.Barrier(8)

    def search(_: int) -> tuple[list[str], float, list[float]]:
        table = SpaceTable(lib.db.open_table(old.name), "image", SPACE)  # as each catalog query opens it
        start.wait()
        found = vectors.search(table, q, 2)
        return [r["path"] for r, _ in found], found[0][1], vectors.vectors(table, ["/lib/a.png"])["/lib/a.png"].tolist()

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(search, range(8)))
    for order, top, a in answers:
        assert order == ["/lib/b.png", "/lib/a.png"] and top == pytest.approx(1.0, abs=1e-6)
        assert a == [0, 1, 0, 0]


# -- background maintenance: the writer lock, and errors the status shows ---------------------------
@pytest.fixture
def indexed(settings, tmp_path) -> MMSearch:
    for i in range(3):
        write_image(tmp_path / "photos" / f"p{i}.png", seed=i)
    svc = MMSearch(settings.model_copy(update={"audio": False}))
    svc.index([tmp_path / "photos"])
    return svc


def test_background_maintenance_waits_for_no_writer_and_says_what_happened(indexed):
    svc = indexed
    table = svc.library().table("image", svc.encoder.space)
    assert not table.has_keyword_index()
    held, release = threading.Event(), threading.Event()

    def indexer() -> None:  # another writer (an indexer in a thread or another process) holds the library
        with svc.library().writer_lock():
            held.set()
            release.wait(30)

    writer = threading.Thread(target=indexer)
    writer.start()
    held.wait(10)
    try:
        svc.maintain_index(background=True).join(30)
        assert not table.has_keyword_index()  # nothing was rebuilt under the writer's feet
        assert svc.status()["maintenance"]["state"] == "skipped"
        assert "being indexed" in svc.status()["maintenance"]["note"]
    finally:
        release.set()
        writer.join()
    svc.maintain_index(background=True).join(30)
    st = svc.status()
    assert st["maintenance"]["state"] == "done" and st["last_maintenance_error"] is None
    assert any("keyword index built" in d for d in st["maintenance"]["done"])
    table._identity_read = table._version_read = None
    assert table.has_keyword_index()


def test_a_failed_background_maintenance_shows_in_the_status_not_on_stderr(indexed, monkeypatch, capfd):
    svc = indexed
    escaped = []
    monkeypatch.setattr(threading, "excepthook", lambda args: escaped.append(args.exc_value))

    def full_disk(self, ann_threshold):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(SpaceTable, "maintain", full_disk)
    svc.maintain_index(background=True).join(30)
    st = svc.status()
    assert st["maintenance"]["state"] == "failed"
    assert "No space left on device" in st["last_maintenance_error"] == svc.last_maintenance_error
    assert escaped == [] and "Traceback" not in capfd.readouterr().err
    with pytest.raises(OSError, match="No space left"):  # a caller that waits (the CLI) gets the error itself
        svc.maintain_index()
