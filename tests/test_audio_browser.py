"""The Sounds tab in headless Chromium: words -> playable sounds, an uploaded sound -> photos."""

from __future__ import annotations

import shutil

from mmsearch.service import MMSearch
from tests.audio_support import audio_settings, sound_dir, tiny_clap_dir  # noqa: F401
from tests.test_browser import page, pytestmark, served  # noqa: F401  (the system Chromium, or skipped)


def test_sounds_tab_plays_results_and_finds_photos_for_a_sound(page, audio_settings, sound_dir, photo_dir):  # noqa: F811
    shutil.copytree(photo_dir, sound_dir / "photos")
    service = MMSearch(audio_settings)
    service.index([sound_dir])
    with served(audio_settings, service) as url:
        page.goto(url)
        page.get_by_role("tab", name="Sounds").click()
        page.locator("#mms-s-query textarea").fill("rain on a tin roof")
        page.locator("#mms-s-text").click()
        page.locator("#mms-s-message").get_by_text("results for").wait_for()
        first = page.locator("#mms-s-player0")
        first.wait_for(state="visible")
        assert " · " in first.inner_text() and ":" in first.inner_text()  # score · name · duration
        assert first.locator("audio").count() == 1 or first.locator("button").count() > 0  # a player, not a link
        page.locator("#mms-s-clip input[type=file]").set_input_files(str(sound_dir / "tone.wav"))
        page.get_by_label("photos").check()
        page.locator("#mms-s-clip-btn").click()
        page.locator("#mms-s-gallery img").first.wait_for(state="visible")
        assert page.locator("#mms-s-gallery img").count() >= 1
        assert not page.locator("#mms-s-player0").is_visible()
