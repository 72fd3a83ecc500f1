"""Indexing sounds next to photos: one walk, one table per modality, incremental like images."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import soundfile as sf

from mmsearch.encoders.pooling import embed_clip
from mmsearch.media.audio import stream_windows
from mmsearch.service import MMSearch
from tests.audio_support import WINDOW_S, audio_settings, sound_dir, tiny_clap_dir, write_sound  # noqa: F401


@pytest.fixture
def svc(audio_settings) -> MMSearch:  # noqa: F811
    return MMSearch(audio_settings)


def _audio_rows(svc: MMSearch) -> dict[str, dict]:
    table = svc.library().table("audio", svc.audio_encoder.space)
    return {r["path"]: r for r in table.table.to_arrow().to_pylist()}


def test_sounds_and_photos_go_to_their_own_tables(svc, sound_dir, photo_dir):  # noqa: F811
    shutil.copytree(photo_dir, sound_dir / "photos")
    report = svc.index([sound_dir])
    assert report.skipped == [] and report.embedded == 4 + 7
    assert report.audio_seconds == pytest.approx(1.5 + 5 + 3 + 2.5, abs=0.1) and "s of audio" in report.summary()
    tables = {t["modality"]: t for t in svc.status()["tables"]}
    assert tables["audio"]["rows"] == 4 and tables["image"]["rows"] == 7 and tables["audio"]["encoder"] == "clap"
    row = _audio_rows(svc)[str(sound_dir / "noise.flac")]
    assert (row["sample_rate"], row["channels"], row["format"]) == (44_100, 2, "FLAC/PCM_16")
    assert row["duration_s"] == pytest.approx(5.0) and row["width"] is None
    assert row["offset_s"] in (0.0, 1.5, 3.0) and "noise" in row["text"]
    assert np.isclose(np.linalg.norm(row["vector"]), 1.0, atol=1e-5)


def test_file_vectors_and_offsets_equal_the_single_clip_path(svc, sound_dir):  # noqa: F811
    # Windows of several files share model batches in the indexer; the result must not depend on that.
    svc.index([sound_dir])
    rows = _audio_rows(svc)
    enc = svc.audio_encoder
    for name in ("noise.flac", "chirp.ogg", "sub/low.mp3", "tone.wav"):
        windows = list(stream_windows(sound_dir / name, enc.audio_rate(), WINDOW_S, WINDOW_S * 0.75))
        vector, _ = embed_clip(enc, windows)
        row = rows[str(sound_dir / name)]
        np.testing.assert_allclose(row["vector"], vector, atol=1e-5)
        # The stored offset is a window closest to the file vector (noise windows tie to within float error).
        closeness = {w.offset_s: float(enc.encode_audio([enc.preprocess_audio(w.samples)])[0] @ vector)
                     for w in windows}
        assert closeness[row["offset_s"]] == pytest.approx(max(closeness.values()), abs=1e-5)


def test_the_best_window_is_where_the_typical_sound_is(svc, tmp_path):
    # 1.5 s of loud noise, then 6 s of a steady tone: most windows are tone, so playback starts in the tone.
    rate = 48_000
    noise = np.random.default_rng(0).standard_normal(int(1.5 * rate)) * 0.8
    tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(6 * rate) / rate)
    root = tmp_path / "s"
    root.mkdir()
    sf.write(root / "mixed.wav", np.concatenate([noise, tone]).astype(np.float32), rate)
    svc.index([root])
    # Windows (2 s every 1.5 s): 0.0 is mostly noise, 6.0 is 1.5 s of tone and padding, and 1.5, 3.0, 4.5 are
    # the same samples (440 Hz repeats every 1.5 s), so they tie as closest to the file vector; playback
    # starts at the first of them, where the tone begins.
    assert _audio_rows(svc)[str(root / "mixed.wav")]["offset_s"] == 1.5


def test_bad_sounds_are_skipped_with_reasons_and_odd_ones_are_indexed(svc, tmp_path):
    root = tmp_path / "mess"
    write_sound(root / "ok.wav", 1.0)
    (root / "empty.wav").parent.mkdir(exist_ok=True)
    (root / "empty.wav").write_bytes(b"")
    sf.write(root / "zero.wav", np.zeros(0, np.float32), 48_000)
    (root / "text.mp3").write_text("not audio at all\n" * 10)
    (root / "song.m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(100))
    good = write_sound(tmp_path / "g.flac", 3.0, kind="noise").read_bytes()
    (root / "corrupt.flac").write_bytes(good[: len(good) // 3])
    write_sound(root / "phone.wav", 2.0, rate=8_000)
    write_sound(root / "studio.flac", 2.0, rate=96_000)
    write_sound(root / "surround.wav", 1.0, channels=6)
    write_sound(root / "silent.wav", 1.0, kind="silence")
    report = svc.index([root])
    reasons = dict(report.skipped)
    assert reasons.keys() == {str(root / n) for n in ["empty.wav", "zero.wav", "text.mp3", "song.m4a", "corrupt.flac"]}
    assert "not a readable audio file" in reasons[str(root / "song.m4a")]  # PyAV reads M4A: this one is broken
    assert "corrupt audio" in reasons[str(root / "corrupt.flac")]
    rows = _audio_rows(svc)
    assert sorted(os.path.basename(p) for p in rows) == ["ok.wav", "phone.wav", "silent.wav", "studio.flac",
                                                         "surround.wav"]
    rates = {rows[str(root / "phone.wav")]["sample_rate"], rows[str(root / "studio.flac")]["sample_rate"]}
    assert rates == {8_000, 96_000}
    assert rows[str(root / "surround.wav")]["channels"] == 6
    assert all(np.isfinite(r["vector"]).all() for r in rows.values())


def test_changed_deleted_renamed_and_duplicate_sounds(svc, sound_dir):  # noqa: F811
    svc.index([sound_dir])
    before = _audio_rows(svc)
    version = svc.library().table("audio", svc.audio_encoder.space).version
    again = svc.index([sound_dir])
    assert (again.embedded, again.unchanged) == (0, 4)
    assert svc.library().table("audio", svc.audio_encoder.space).version == version  # not even an empty commit

    write_sound(sound_dir / "tone.wav", 1.5, freq=1000)  # changed
    os.utime(sound_dir / "tone.wav", ns=(1, 1))
    (sound_dir / "chirp.ogg").unlink()  # deleted
    (sound_dir / "noise.flac").rename(sound_dir / "renamed.flac")  # renamed
    shutil.copy(sound_dir / "sub" / "low.mp3", sound_dir / "copy.mp3")  # duplicate
    report = svc.index([sound_dir])
    assert (report.embedded, report.reused, report.removed) == (1, 2, 2)
    after = _audio_rows(svc)
    assert len(after) == 4 and str(sound_dir / "chirp.ogg") not in after
    assert not np.allclose(after[str(sound_dir / "tone.wav")]["vector"], before[str(sound_dir / "tone.wav")]["vector"])
    for new, old in [("renamed.flac", "noise.flac"), ("copy.mp3", "sub/low.mp3")]:
        np.testing.assert_array_equal(after[str(sound_dir / new)]["vector"], before[str(sound_dir / old)]["vector"])
        assert after[str(sound_dir / new)]["offset_s"] == before[str(sound_dir / old)]["offset_s"]


def test_without_the_audio_model_photos_index_and_sounds_are_skipped(settings, sound_dir, photo_dir):  # noqa: F811
    shutil.copytree(photo_dir, sound_dir / "photos")
    svc = MMSearch(settings)  # the default CLAP model: not on this offline machine
    report = svc.index([sound_dir])
    assert report.embedded == 7 and len(report.skipped) == 4
    assert all("no audio model" in why and "offline" in why for _, why in report.skipped)
    assert [t["modality"] for t in svc.status()["tables"]] == ["image"]
    assert svc.search_text("x", k=1)  # image search unaffected by the missing audio model
    off = MMSearch(settings.model_copy(update={"audio": False}))
    assert off.audio_encoder is None and off.index([sound_dir]).skipped == []


def test_long_recordings_are_committed_one_by_one(svc, tmp_path):
    # Batches and commits count windows, not files: each 8 s file is 5 windows of the tiny model, more than
    # the batch (4) and the commit size (4), so an interrupt after two files keeps both.
    root = tmp_path / "long"
    for i in range(3):
        write_sound(root / f"take{i}.wav", 8.0, freq=200 + 100 * i)

    def interrupt(p) -> None:
        if p.done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        svc.index([root], on_progress=interrupt)
    assert sorted(os.path.basename(p) for p in _audio_rows(svc)) == ["take0.wav", "take1.wav"]
    assert svc.index([root]).embedded == 1
