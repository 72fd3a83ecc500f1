"""Video results in headless Chromium: the best moment's thumbnail, a player that opens at the moment, and
"more like this moment"."""

from __future__ import annotations

import pytest
from PIL import Image

from mmsearch.service import MMSearch
from tests.audio_support import audio_settings, tiny_clap_dir  # noqa: F401
from tests.test_browser import page, pytestmark, served  # noqa: F401  (the system Chromium, or skipped)
from tests.video_support import photo, two_scenes, write_video


def test_a_video_result_plays_from_its_moment(page, audio_settings, tmp_path):  # noqa: F811
    root = tmp_path / "lib"
    path = two_scenes(root / "party.mp4")  # the coffee cup from second 4 to 8
    write_video(root / "other.mp4", [(4.0, photo("coffee"), None)])
    query = tmp_path / "coffee.png"
    Image.fromarray(photo("coffee", (192, 128))).save(query)
    service = MMSearch(audio_settings)
    service.index([root])
    with served(audio_settings, service) as url:
        page.goto(url)
        page.locator("#mms-image input[type=file]").set_input_files(str(query))
        page.locator("#mms-message").get_by_text("results for").wait_for()
        caption = page.locator("#mms-gallery .caption-label, #mms-gallery figcaption").first.inner_text()
        assert "0:04–0:08" in caption or "0:00–0:04" in caption  # a moment's range on the tile
        tiles = page.locator("#mms-gallery img")
        assert tiles.count() == 2  # one per video (each at its best moment), thumbnails not originals
        assert tiles.first.get_attribute("src").endswith(".webp")  # a rendition of a frame, never the video
        # open party.mp4: the tile whose caption names it
        tile = page.locator("#mms-gallery button", has_text="party.mp4").first
        tile.click()
        video = page.locator("#mms-player video")
        video.wait_for(state="attached")
        start, end = float(video.get_attribute("data-start")), float(video.get_attribute("data-end"))
        assert (start, end) == (3.0, 7.0)  # the clip opens 3 s before the moment (second 1 of the file)
        page.wait_for_function("() => { const v = document.querySelector('#mms-player video');"
                               " return v && v.readyState >= 1; }", timeout=30_000)
        at = page.evaluate("() => document.querySelector('#mms-player video').currentTime")
        assert at == pytest.approx(start, abs=0.25)  # at the moment, not at the start of the clip
        assert "0:04–0:08" in page.locator("#mms-details").inner_text()
        page.locator("#mms-more").get_by_text("More like this moment").click()
        page.locator("#mms-message").get_by_text("more like party.mp4@4").wait_for()
        assert "party.mp4" not in " ".join(page.locator("#mms-gallery").all_inner_texts())


def test_a_flagged_video_plays_from_its_moment_in_the_review_tab(page, audio_settings, tmp_path):  # noqa: F811
    import soundfile as sf

    from mmsearch.workflows.moderation import Concept, WatchList, watchlist_path
    from tests.video_support import BELL_RINGING, sound

    root = tmp_path / "lib"
    two_scenes(root / "party.mp4")  # the bell rings from second 4 to 8
    write_video(root / "quiet.mp4", [(8.0, photo("rocket"), None)])
    bell = tmp_path / "bell.wav"
    sf.write(bell, sound(BELL_RINGING)[: 4 * 48_000], 48_000)
    service = MMSearch(audio_settings)
    service.index([root])
    WatchList([Concept("bell", examples=[str(bell)], example_threshold=0.0)]).save(watchlist_path(service.library()))
    with served(audio_settings, service) as url:
        page.goto(url)
        page.get_by_role("tab", name="Review").click()
        page.click("#mms-r-scan")
        page.locator("#mms-r-message").filter(has_text="new").wait_for()
        tile = page.locator("#mms-r-gallery button.thumbnail-item", has_text="0:04–0:08").first
        tile.wait_for()
        assert tile.locator("img").get_attribute("src").endswith(".webp")  # the moment's frame, not the video
        tile.click()
        video = page.locator("#mms-r-player video")
        video.wait_for(state="attached", timeout=30_000)
        assert (float(video.get_attribute("data-start")), float(video.get_attribute("data-end"))) == (3.0, 7.0)
        page.wait_for_function("() => { const v = document.querySelector('#mms-r-player video');"
                               " return v && v.readyState >= 1; }", timeout=30_000)
        at = page.evaluate("() => document.querySelector('#mms-r-player video').currentTime")
        assert at == pytest.approx(3.0, abs=0.25)  # opened at the flagged moment
        assert "0:04–0:08" in page.locator("#mms-r-table").inner_text()
        assert page.locator(".traceback").count() == 0
