"""Video results in headless Chromium: the best moment's thumbnail, a player that opens at the moment, and
"more like this moment"."""

from __future__ import annotations

from PIL import Image

from mmsearch.service import MMSearch
from tests.audio_support import audio_settings, tiny_clap_dir  # noqa: F401
from tests.test_browser import open_accordion, page, pytestmark, served  # noqa: F401  (the system Chromium, or skipped)
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
        # At the moment, not at the start of the clip: it autoplays, so anywhere in the moment's range (a player
        # opened at 0 would read under a second here).
        assert start - 0.25 <= at <= end + 0.05, at
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
        assert 3.0 - 0.25 <= at <= 7.0 + 0.05, at  # opened at the flagged moment (and playing it: autoplay)
        assert "0:04–0:08" in page.locator("#mms-r-table").inner_text()
        assert page.locator(".traceback").count() == 0


def test_an_uploaded_clip_is_a_mood_example_and_its_moments_go_on_a_board(page, audio_settings, tmp_path):  # noqa: F811
    """Mood tab: a clip that is not in the library as the example; video moments come back with their frames,
    are pinned to a board, make a contact sheet and seed "more like this board"."""
    root = tmp_path / "lib"
    party = two_scenes(root / "party.mp4")
    write_video(root / "quiet.mp4", [(8.0, photo("rocket"), None)])
    sent = two_scenes(tmp_path / "upload" / "sent.mp4")  # not indexed: cut into moments on the spot
    service = MMSearch(audio_settings)
    service.index([root])
    with served(audio_settings, service) as url:
        page.goto(url)
        page.get_by_role("tab", name="Mood").click()
        page.locator("#mms-m-ex0 input[type=file]").set_input_files(str(sent))
        page.locator("#mms-m-ex0").get_by_text("sent.mp4").first.wait_for()
        page.locator("#mms-m-target").get_by_label("videos").check()
        page.click("#mms-m-run")
        page.locator("#mms-m-message").filter(has_text="results for your examples").wait_for(timeout=60_000)
        table = page.locator("#mms-m-table").inner_text()
        assert "moment:sent.mp4@0:00–0:04 picture" in table and "moment:sent.mp4@0:00–0:04 sound" in table
        assert "party.mp4" in table and "quiet.mp4" in table  # both library videos, each at its best moment
        tiles = page.locator("#mms-m-gallery img")
        assert tiles.count() == 2 and all(tiles.nth(i).get_attribute("src").endswith(".webp") for i in range(2))
        page.locator("#mms-m-board input").fill("reel")
        page.click("#mms-m-pin")
        page.locator("#mms-m-board-note").filter(has_text="Pinned 2 to board").wait_for()
        pins = {p.path for p in __import__("mmsearch.workflows.boards", fromlist=["Boards"]).Boards(
            service.library()).items("reel")}
        assert {p.split("#t=")[0] for p in pins} == {str(party), str(root / "quiet.mp4")}  # as moments
        assert all("#t=" in p for p in pins)
        page.click("#mms-m-sheet")
        page.locator("#mms-m-sheet-img img").wait_for()
        page.click("#mms-m-like")
        page.locator("#mms-m-message").filter(has_text="more like board reel").wait_for(timeout=60_000)
        assert page.locator(".traceback").count() == 0


def test_the_review_tab_finds_copies_of_an_uploaded_clip_and_clusters_videos(page, settings, tmp_path):  # noqa: F811
    from tests.video_support import panning, reencode

    clip = panning(tmp_path / "bad.mp4", ["astronaut", "coffee", "rocket"])
    root = tmp_path / "lib"
    root.mkdir()
    reencode(clip, root / "small.webm", scale=0.5)
    reencode(clip, root / "trimmed.mp4", trim_s=3.0)
    panning(root / "other.mp4", ["chelsea", "camera", "moon"])
    service = MMSearch(settings)
    service.index([root])
    with served(settings, service) as url:
        page.goto(url)
        page.get_by_role("tab", name="Review").click()
        open_accordion(page, "Copies and near-duplicates", "#mms-r-bad-clip input[type=file]")
        page.locator("#mms-r-bad-clip input[type=file]").set_input_files(str(clip))
        page.locator("#mms-r-bad-clip").get_by_text("bad.mp4").first.wait_for()
        page.click("#mms-r-copies")
        page.locator("#mms-r-dup-note").filter(has_text="2 copies of the clip").wait_for(timeout=60_000)
        assert "2 new in the queue" in page.locator("#mms-r-dup-note").inner_text()
        captions = " ".join(page.locator("#mms-r-dup-gallery").all_inner_texts())
        assert "small.webm" in captions and "trimmed.mp4" in captions and "other.mp4" not in captions
        assert all(img.get_attribute("src").endswith(".webp")
                   for img in page.locator("#mms-r-dup-gallery img").all())
        page.click("#mms-r-dupes")
        page.locator("#mms-r-dup-note").filter(has_text="1 cluster(s) among 0 images and 3 videos").wait_for()
        rows = page.locator("#mms-r-dup-table").inner_text()
        assert "small.webm" in rows and "trimmed.mp4" in rows and "other.mp4" not in rows and "score" in rows
        assert page.locator(".traceback").count() == 0
