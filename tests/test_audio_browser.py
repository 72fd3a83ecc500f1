"""The Sounds tab in headless Chromium: words -> playable sounds, an uploaded sound -> photos."""

from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
import soundfile as sf

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
        label = first.locator("label[data-testid=block-label]").inner_text()
        name = label.split(" · ")[1]  # score · name · duration
        row = {r["name"]: r for r in service.library().table("audio", service.audio_encoder.space).table
               .to_arrow().to_pylist()}[name]
        # a player holding an MP3 preview of that sound, from its best window to the end
        preview = page.request.get(first.locator("a[data-testid=download-link]").get_attribute("href"))
        assert preview.status == 200
        samples, rate = sf.read(io.BytesIO(preview.body()), dtype="float32")
        assert len(samples) / rate == pytest.approx(row["duration_s"] - row["offset_s"], abs=0.1)
        assert np.sqrt(np.mean(samples ** 2)) > 0.1  # the sound itself (tone/noise at 0.3), not silence
        first.get_by_role("button", name="Play", exact=True).click()
        first.get_by_role("button", name="Pause", exact=True).wait_for()  # it plays inline
        page.locator("#mms-s-clip input[type=file]").set_input_files(str(sound_dir / "tone.wav"))
        page.get_by_label("photos").check()
        page.locator("#mms-s-clip-btn").click()
        page.locator("#mms-s-gallery img").first.wait_for(state="visible")
        assert page.locator("#mms-s-gallery img").count() >= 1
        assert not page.locator("#mms-s-player0").is_visible()
