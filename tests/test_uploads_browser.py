"""Hostile uploads through every upload component of the page, in headless Chromium.

Each component gets every hostile file of its kind through its own <input type=file>; the tab's message line
must say, in one line starting with ⚠️, which file (by its own name) and what to do; no error toast; and a
good file right after still answers. One server for the module, one browser per component group. Every file
carries the component's prefix, so each message is told apart from the one before.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmsearch.workflows.catalog import CatalogIndexer
from tests.audio_support import tiny_clap_dir  # noqa: F401 - the session fixture
from tests.test_browser import open_accordion, page, pytestmark, served  # noqa: F401 - the system Chromium, or skipped
from tests.test_uploads import (
    HINTS, IMAGES, SOUNDS, Hostile, upload_library, upload_settings, write_hostile, write_hour,
)
from tests.workflow_support import SAMPLES, make_shop

HOUR = Hostile("hour.wav", "", "")  # not hostile: long; it must answer
JUDGED = [
    Hostile("empty.jsonl", "holds no judged queries", "empty"),
    Hostile("notes.jsonl", "not valid json", "text"),
    Hostile("picture.jsonl", "not utf-8 text", "picture"),
    Hostile("notes.csv", "needs a header with a 'relevant' column", "text"),
]
REMOVE = "button[aria-label=Clear], button[aria-label='Remove Image']"  # shown once a component holds a file


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, tiny_clap_dir: Path):  # noqa: F811
    root = tmp_path_factory.mktemp("uploads-browser")
    settings = upload_settings(root, tiny_model_dir, tiny_clap_dir)
    service = upload_library(root, settings)
    CatalogIndexer.for_service(service).index(make_shop(root / "shop"), id_column="SKU")
    write_hour(root / "long" / HOUR.name)
    with served(settings, service) as url:
        yield url, root


def files_for(root: Path, prefix: str, items: list[Hostile]) -> list[tuple[Path, Hostile]]:
    folder = root / "files" / prefix
    return [(write_hostile(folder, item, f"{prefix}-"), item) for item in items]


def put(page, component: str, path: Path) -> None:
    """Empty the component if it holds a file, give it this one, and wait until the upload is in."""
    box = page.locator(f"#{component}")
    if box.locator(REMOVE).count():
        clear(page, component)
    box.locator("input[type=file]").set_input_files(str(path))
    box.locator(REMOVE).first.wait_for()


def told(page, message: str, path: Path, item: Hostile) -> None:
    """The tab's message line names the upload, says why and what to do, in one line; nothing else pops up."""
    line = page.locator(f"#{message}").filter(has_text=path.name)
    line.wait_for()
    text = line.inner_text().strip()
    assert text.startswith("⚠️") and "\n" not in text, text
    assert item.says in text.lower() and any(h in text.lower() for h in HINTS), text
    assert "/tmp" not in text and "gradio" not in text.lower() and "went wrong" not in text, text
    assert page.locator(".toast-body").count() == 0, page.locator(".toast-body").all_inner_texts()


def answered(page, message: str, says: str) -> None:
    page.locator(f"#{message}").filter(has_text=says).wait_for()
    assert not page.locator(f"#{message}").inner_text().startswith("⚠️")


def clear(page, component: str) -> None:
    box = page.locator(f"#{component}")
    box.locator(REMOVE).first.click()
    box.locator(REMOVE).first.wait_for(state="detached")


def open_tab(page, url: str, tab: str) -> None:
    page.set_default_timeout(60_000)  # the machine may be busy; a refusal that never comes still fails
    page.goto(url)
    page.get_by_role("tab", name=tab).click()


def test_search_tab_image(page, app) -> None:  # noqa: F811
    url, root = app
    open_tab(page, url, "Search")
    for path, item in files_for(root, "search", IMAGES):
        put(page, "mms-image", path)  # an upload searches at once
        told(page, "mms-message", path, item)
    put(page, "mms-image", root / "media" / "photo1.png")
    answered(page, "mms-message", "results for your image")


def test_sounds_tab_photo_and_clip(page, app) -> None:  # noqa: F811
    url, root = app
    open_tab(page, url, "Sounds")
    for path, item in files_for(root, "s-photo", IMAGES):
        put(page, "mms-s-photo", path)
        page.click("#mms-s-photo-btn")
        told(page, "mms-s-message", path, item)
    put(page, "mms-s-photo", root / "media" / "photo1.png")
    page.click("#mms-s-photo-btn")
    answered(page, "mms-s-message", "results for your photo")
    for path, item in files_for(root, "s-clip", SOUNDS):
        put(page, "mms-s-clip", path)
        page.click("#mms-s-clip-btn")
        told(page, "mms-s-message", path, item)
    put(page, "mms-s-clip", root / "long" / HOUR.name)  # 60 minutes: cut, and answered
    page.click("#mms-s-clip-btn")
    answered(page, "mms-s-message", "results for your sound")


def test_combine_tab_image_and_sound_slots(page, app) -> None:  # noqa: F811
    url, root = app
    open_tab(page, url, "Combine")
    for slot, items in (("mms-c-image0", IMAGES), ("mms-c-image1", IMAGES), ("mms-c-audio0", SOUNDS)):
        for path, item in files_for(root, slot, items):
            put(page, slot, path)
            page.click("#mms-c-run")
            told(page, "mms-c-message", path, item)
        clear(page, slot)  # the next slot's file is the only one in the query
    put(page, "mms-c-image1", root / "media" / "photo3.png")
    put(page, "mms-c-audio0", root / "long" / HOUR.name)
    page.click("#mms-c-run")
    answered(page, "mms-c-message", "ranked lists")


def test_catalog_tab_product_photo(page, app) -> None:  # noqa: F811
    url, root = app
    open_tab(page, url, "Catalog")
    for path, item in files_for(root, "catalog", IMAGES):
        put(page, "mms-p-image", path)
        page.click("#mms-p-run")
        told(page, "mms-p-message", path, item)
    put(page, "mms-p-image", SAMPLES / "tabby-cat.jpg")
    page.click("#mms-p-run")
    answered(page, "mms-p-message", "products in")


def test_review_tab_known_bad_image(page, app) -> None:  # noqa: F811
    url, root = app
    open_tab(page, url, "Review")
    open_accordion(page, "Copies and near-duplicates", "#mms-r-bad input[type=file]")
    for path, item in files_for(root, "review", IMAGES):
        put(page, "mms-r-bad", path)
        page.click("#mms-r-copies")
        told(page, "mms-r-dup-note", path, item)
    put(page, "mms-r-bad", root / "media" / "photo2.png")
    page.click("#mms-r-copies")
    answered(page, "mms-r-dup-note", "within 10 bits")


def test_mood_tab_example_files(page, app) -> None:  # noqa: F811
    url, root = app
    open_tab(page, url, "Mood")
    for path, item in files_for(root, "mood", IMAGES + SOUNDS):
        put(page, "mms-m-ex0", path)
        page.click("#mms-m-run")
        told(page, "mms-m-message", path, item)
    put(page, "mms-m-ex0", root / "media" / "photo4.png")
    page.click("#mms-m-run")
    answered(page, "mms-m-message", "results for your examples")


def test_evaluate_tab_judged_file(page, app) -> None:  # noqa: F811
    url, root = app
    open_tab(page, url, "Evaluate")
    for path, item in files_for(root, "eval", JUDGED):
        put(page, "mms-e-file", path)
        page.click("#mms-e-run")
        told(page, "mms-e-message", path, item)
    good = root / "files" / "judged.jsonl"
    good.write_text(json.dumps({"query": "a red bicycle", "relevant": [str(root / "media" / "photo1.png")]}) + "\n")
    put(page, "mms-e-file", good)
    page.click("#mms-e-run")
    answered(page, "mms-e-message", "1 judged queries")
