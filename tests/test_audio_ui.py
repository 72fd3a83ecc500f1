"""The Sounds tab: its actions on a mixed library (no browser), previews from the best part, and the layout."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile as sf

from mmsearch.search import SearchResult
from mmsearch.service import MMSearch
from mmsearch.ui.sounds import MAX_PLAYERS, PREVIEW_S, Previews, SoundActions, sound_label
from mmsearch.ui.thumbs import Renditions, thumbs_dir
from tests.audio_support import audio_settings, sound_dir, tiny_clap_dir, write_sound  # noqa: F401


@pytest.fixture
def actions(audio_settings, sound_dir, photo_dir) -> SoundActions:  # noqa: F811
    shutil.copytree(photo_dir, sound_dir / "photos")
    service = MMSearch(audio_settings)
    service.index([sound_dir])
    exposed: list[str] = []
    acts = SoundActions(service, Renditions(thumbs_dir(audio_settings), audio_settings.max_image_pixels),
                        exposed.extend)
    acts.exposed = exposed  # type: ignore[attr-defined]
    return acts


def test_every_direction_returns_playable_sounds_or_photos(actions, sound_dir):  # noqa: F811
    heard = actions.by_text("rain on a tin roof", 4)
    assert heard.ok and len(heard.sounds()) == 4 and heard.photos() == []
    for preview, label in heard.sounds():
        assert preview.endswith(".mp3") and sf.info(preview).duration > 0.5 and " · " in label
        assert preview.startswith(str(actions.renditions.folder))  # served from the folder the app exposes
    assert str(actions.renditions.folder) in actions.exposed
    by_sound = actions.by_sound(str(sound_dir / "tone.wav"), 2)
    assert by_sound.hits[0].path == str(sound_dir / "tone.wav")
    photos = actions.by_sound(str(sound_dir / "tone.wav"), 3, target="photos")
    assert len(photos.photos()) == 3 and photos.sounds() == []
    recorded = actions.by_sound((48_000, (np.random.default_rng(0).standard_normal(48_000) * 2000).astype(np.int16)), 2)
    assert len(recorded.sounds()) == 2
    for_photo = actions.by_photo(str(sound_dir / "photos" / "img0.jpg"), 3)
    assert len(for_photo.sounds()) == 3


def test_problems_are_messages(actions, tmp_path):
    assert not actions.by_sound(None, 3).ok and "record" in actions.by_sound(None, 3).message
    (tmp_path / "junk.wav").write_text("not a sound")
    bad = actions.by_sound(str(tmp_path / "junk.wav"), 3)
    assert not bad.ok and "junk.wav" in bad.message
    assert not actions.by_text("   ", 3).ok


def test_a_preview_starts_at_the_best_part_and_is_short(tmp_path):
    path = write_sound(tmp_path / "long.flac", 40.0, kind="chirp", rate=22_050)
    hit = SearchResult(str(path), 0.5, "long.flac", str(tmp_path), 0, 0, "FLAC", 1, "audio", 40.0, 25.0)
    previews = Previews(tmp_path / "cache")
    first = previews.get(hit)
    assert first == previews.get(hit)  # cached
    assert sf.info(first).duration == pytest.approx(15.0, abs=0.2)  # from 25 s to the end, under PREVIEW_S
    hit.offset_s = 0.0
    assert sf.info(previews.get(hit)).duration == pytest.approx(PREVIEW_S, abs=0.2)
    assert sound_label(hit) == "0.500 · long.flac · 0:40"
    hit.offset_s, hit.duration_s = 1830.0, 3725.0
    assert sound_label(hit) == "0.500 · long.flac · 1:02:05, from 30:30"
    path.unlink()
    assert previews.get(hit) is None


def test_the_app_has_a_sounds_tab_and_builds_without_loading_models(audio_settings):  # noqa: F811
    from mmsearch.ui.app import build_demo

    service = MMSearch(audio_settings)
    demo = build_demo(audio_settings, service)
    ids = {c.get("props", {}).get("elem_id") for c in demo.config["components"]}
    assert {"mms-s-query", "mms-s-clip", "mms-s-photo", f"mms-s-player{MAX_PLAYERS - 1}"} <= ids
    clip = next(c for c in demo.config["components"] if c.get("props", {}).get("elem_id") == "mms-s-clip")
    assert clip["props"]["sources"] == ["upload", "microphone"]
    assert not service.encoder.loaded and not service.audio_encoder.loaded
