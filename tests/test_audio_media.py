"""Audio decoding: metadata, windows, resampling, channel mixing, bounded memory, bad input."""

from __future__ import annotations

import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mmsearch.errors import BadMedia
from mmsearch.media.audio import array_windows, probe, stream_windows
from tests.audio_support import write_sound

RATE = 48_000


def test_probe_reads_duration_rate_channels_and_format(tmp_path):
    cases = [("a.wav", 44_100, 2, None, "WAV/"), ("b.flac", 96_000, 1, None, "FLAC/"),
             ("c.ogg", 22_050, 1, "VORBIS", "OGG/VORBIS"), ("d.mp3", 44_100, 2, "MPEG_LAYER_III", "MP3/")]
    for name, rate, channels, subtype, fmt in cases:
        info = probe(write_sound(tmp_path / name, 2.0, rate=rate, channels=channels, subtype=subtype))
        assert (info.sample_rate, info.channels) == (rate, channels) and info.format.startswith(fmt)
        assert info.duration_s == pytest.approx(2.0, abs=0.06)  # MP3 frames pad the end a little


def test_windows_overlap_and_a_tail_covers_the_end():
    x = np.arange(1200, dtype=np.float32)  # 12 s at 100 Hz
    wins = list(array_windows(x, 100, 100, window_s=10, hop_s=7.5))
    assert [w.offset_s for w in wins] == [0.0, 7.5]
    assert len(wins[0].samples) == 1000 and len(wins[1].samples) == 450  # 7.5 s .. the end
    np.testing.assert_array_equal(wins[1].samples, x[750:])
    exact = list(array_windows(np.zeros(1000, np.float32), 100, 100, 10, 7.5))
    assert [w.offset_s for w in exact] == [0.0]  # nothing left past the only window
    short = list(array_windows(np.ones(300, np.float32), 100, 100, 10, 7.5))
    assert len(short) == 1 and len(short[0].samples) == 300  # the model pads one short window
    with pytest.raises(ValueError, match="hop"):
        list(array_windows(x, 100, 100, 10, 12))


def test_streamed_windows_match_windows_of_the_whole_file(tmp_path):
    path = write_sound(tmp_path / "n.wav", 5.0, rate=RATE, kind="noise")
    streamed = list(stream_windows(path, RATE, 2, 1.5))
    whole = list(array_windows(sf.read(path, dtype="float32")[0], RATE, RATE, 2, 1.5))
    assert [w.offset_s for w in streamed] == [w.offset_s for w in whole] == [0.0, 1.5, 3.0]
    for a, b in zip(streamed, whole):
        np.testing.assert_array_equal(a.samples, b.samples)


@pytest.mark.parametrize("rate", [8_000, 22_050, 96_000])
def test_any_rate_is_resampled_to_the_model_rate(tmp_path, rate):
    path = write_sound(tmp_path / f"r{rate}.flac", 3.0, rate=rate, freq=1000)
    wins = list(stream_windows(path, RATE, 2, 2))
    assert sum(len(w.samples) for w in wins) == pytest.approx(3 * RATE, abs=64)
    spectrum = np.abs(np.fft.rfft(wins[0].samples))
    assert np.fft.rfftfreq(len(wins[0].samples), 1 / RATE)[spectrum.argmax()] == pytest.approx(1000, abs=2)


def test_six_channels_are_mixed_to_mono(tmp_path):
    data = np.zeros((RATE, 6), np.float32)
    data[:, 2] = 0.6  # one loud channel
    sf.write(tmp_path / "surround.wav", data, RATE)
    info = probe(tmp_path / "surround.wav")
    assert info.channels == 6
    (win,) = stream_windows(tmp_path / "surround.wav", RATE, 2, 2)
    np.testing.assert_allclose(win.samples, 0.1, atol=1e-4)  # 16-bit PCM


def test_silence_clipping_and_nan_decode_to_finite_windows(tmp_path):
    sf.write(tmp_path / "silent.wav", np.zeros(RATE, np.float32), RATE)
    loud = np.full(RATE, 4.0, np.float32)
    loud[:10] = np.nan
    sf.write(tmp_path / "clipped.wav", loud, RATE, subtype="FLOAT")
    for name in ("silent.wav", "clipped.wav"):
        (win,) = stream_windows(tmp_path / name, RATE, 2, 2)
        assert len(win.samples) == RATE and np.isfinite(win.samples).all()


def test_a_long_recording_is_streamed_in_bounded_memory(tmp_path):
    # 20 minutes at 8 kHz is 19 MB on disk and 230 MB as one float32 array at 48 kHz (460 MB as float64).
    path = tmp_path / "long.wav"
    with sf.SoundFile(path, "w", 8000, 1, subtype="PCM_16") as f:
        block = (0.2 * np.sin(np.arange(8000 * 60) / 8000 * 2 * np.pi * 300)).astype(np.float32)
        for _ in range(20):
            f.write(block)
    tracemalloc.start()
    try:
        count = last = 0
        for w in stream_windows(path, RATE, 10, 7.5):
            count, last = count + 1, w.offset_s
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == 160 and last == pytest.approx(1192.5)
    assert peak < 16e6, f"peak {peak / 1e6:.0f} MB while streaming"


def _wav_with_format_tag(path: Path, tag: int) -> Path:
    fmt = struct.pack("<HHIIHHH", tag, 1, RATE, RATE * 2, 2, 16, 0)
    data = bytes(2000)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def test_bad_files_raise_one_line_reasons(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    sf.write(tmp_path / "zero.wav", np.zeros(0, np.float32), RATE)  # a valid header, no samples
    (tmp_path / "text.mp3").write_text("this is not an mp3, just text with the wrong name\n" * 20)
    (tmp_path / "song.m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(200))  # an M4A header, nothing after
    _wav_with_format_tag(tmp_path / "codec.wav", 0x1234)
    good = write_sound(tmp_path / "good.flac", 3.0, kind="noise").read_bytes()
    (tmp_path / "truncated.flac").write_bytes(good[: len(good) // 3])
    expected = {"empty.wav": "empty file", "zero.wav": "no audio", "text.mp3": "not a readable audio file",
                "song.m4a": "not a readable audio file", "codec.wav": "unsupported codec",  # FFmpeg knows the tag
                "truncated.flac": "corrupt audio after"}
    for name, reason in expected.items():
        with pytest.raises(BadMedia, match=reason) as err:
            list(stream_windows(tmp_path / name, RATE, 2, 1.5))
        assert err.value.path == str(tmp_path / name) and "\n" not in err.value.reason, err.value.reason
