"""The workflow tabs in headless Chromium: catalog cards with schema-built filters and export, the review
queue with decisions, mood search with a board. Few and fast: one library and one page per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmsearch.service import MMSearch
from mmsearch.settings import Settings
from mmsearch.workflows.catalog import CatalogIndexer
from tests.test_browser import CHROMIUM, page, served  # noqa: F401 - the page fixture
from tests.workflow_support import make_shop

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"needs the system Chromium at {CHROMIUM}"),
]


def test_catalog_tab_cards_filters_and_export(page, settings: Settings, tmp_path: Path) -> None:  # noqa: F811
    service = MMSearch(settings)
    CatalogIndexer.for_service(service).index(make_shop(tmp_path / "shop"), id_column="SKU")
    with served(settings, service) as url:
        page.goto(url)
        page.get_by_role("tab", name="Catalog").click()
        # Filters come from the catalog's schema: a price range, a category choice list.
        page.locator("#mms-p-lo0").filter(has_text="price from").wait_for()
        assert "8.0 – 1,299.0" in page.locator("#mms-p-lo0").inner_text()
        page.locator("#mms-p-hi0 input").fill("100")
        page.locator("#mms-p-choice0 input").click()
        page.get_by_role("option", name="posters").click()
        page.locator("#mms-p-query textarea").fill("print")
        page.click("#mms-p-run")
        page.locator("#mms-p-message").filter(has_text="1 product").wait_for()
        assert "price<=100" in page.locator("#mms-p-message").inner_text()
        cards = page.locator("#mms-p-cards .mms-card")
        assert cards.count() == 1
        assert cards.first.inner_text().split("\n") == ["Tabby cat poster", "12.50", "CAT-01"]
        page.wait_for_function("document.querySelector('#mms-p-cards img').naturalWidth > 0")  # the picture loads
        assert "CAT-01" in page.locator("#mms-p-table").inner_text()

        page.click("#mms-p-export")
        page.locator("#mms-p-download a").first.wait_for()
        assert "products\n.csv" in page.locator("#mms-p-download").inner_text()
        page.screenshot(path=str(tmp_path / "catalog.png"), full_page=True)
        assert page.locator(".traceback").count() == 0


def test_review_tab_decides_and_exports(page, settings: Settings, tmp_path: Path) -> None:  # noqa: F811
    from mmsearch.workflows.moderation import Concept, WatchList, watchlist_path
    from tests.workflow_support import ColourEncoder, solid

    service = MMSearch(settings, encoder=ColourEncoder())
    folder = tmp_path / "colours"
    for i, (name, rgb) in enumerate([("red", (220, 20, 30)), ("dark-red", (150, 10, 10)), ("blue", (20, 40, 210))]):
        solid(folder / f"{name}.png", rgb, seed=i)
    service.index([folder])
    WatchList([Concept("red", texts=["red"], threshold=0.9)]).save(watchlist_path(service.library()))
    with served(settings, service) as url:
        page.goto(url)
        page.get_by_role("tab", name="Review").click()
        page.click("#mms-r-scan")
        page.locator("#mms-r-message").filter(has_text="2 new").wait_for()
        assert "2 item(s), 2 pending" in page.locator("#mms-r-message").inner_text()
        page.wait_for_function("document.querySelectorAll('#mms-r-gallery button.thumbnail-item img').length == 2")
        page.locator("#mms-r-gallery button.thumbnail-item").first.click()
        page.wait_for_function("document.querySelector('#mms-r-ids textarea').value.length == 12")
        page.locator("#mms-r-who textarea").fill("alice")
        page.click("#mms-r-reject")
        page.locator("#mms-r-message").filter(has_text="rejected by alice").wait_for()
        assert "1 item(s), 1 pending" in page.locator("#mms-r-message").inner_text()
        page.locator("#mms-r-status").get_by_label("rejected").check()
        page.locator("#mms-r-table").filter(has_text="alice").wait_for()

        page.get_by_text("Audit export").click()
        page.locator("#mms-r-export").click()
        page.locator("#mms-r-download a").first.wait_for()
        assert "review-queue" in page.locator("#mms-r-download").inner_text()
        page.screenshot(path=str(tmp_path / "review.png"), full_page=True)
        assert page.locator(".traceback").count() == 0


def test_mood_tab_searches_pins_and_makes_a_contact_sheet(page, settings: Settings, photo_dir: Path,
                                                           tmp_path: Path) -> None:  # noqa: F811
    service = MMSearch(settings)
    service.index([photo_dir])
    with served(settings, service) as url:
        page.goto(url)
        page.get_by_role("tab", name="Mood").click()
        page.locator("#mms-m-moods").get_by_label("melancholic").check()
        page.locator("#mms-m-moods").get_by_label("calm morning").check()
        page.click("#mms-m-run")
        page.locator("#mms-m-message").filter(has_text="results for melancholic + calm morning").wait_for()
        assert "+1 mood:melancholic" in page.locator("#mms-m-table").inner_text()
        page.locator("#mms-m-board input").fill("rainy")
        page.click("#mms-m-pin")
        page.locator("#mms-m-board-note").filter(has_text="Pinned").wait_for()
        page.click("#mms-m-sheet")
        page.locator("#mms-m-sheet-img img").wait_for()
        page.click("#mms-m-like")
        page.locator("#mms-m-message").filter(has_text="more like board rainy").wait_for()
        page.screenshot(path=str(tmp_path / "mood.png"), full_page=True)
        assert page.locator(".traceback").count() == 0
