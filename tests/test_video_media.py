"""Video decoding (media/video.py), moments (media/shots.py) and PyAV sound, on videos PyAV writes here."""

from __future__ import annotations

import fractions
import struct
from pathlib import Path

import av
import numpy as np
import pytest

from mmsearch.errors import BadMedia
from mmsearch.media.audio import probe, stream_spans, stream_windows
from mmsearch.media.shots import MomentRules, moments
from mmsearch.media.video import DecodeLimits, frame_at, iter_frames, probe_video
from tests.video_support import photo, rotate_mp4, sound, two_scenes, write_video


def _moments(path: Path, rules: MomentRules = MomentRules()) -> list:
    return list(moments(iter_frames(path), probe_video(path).duration_s, rules))


@pytest.mark.parametrize("suffix", [".mp4", ".webm", ".mkv", ".mov"])
def test_a_cut_between_two_photos_makes_two_moments(tmp_path, suffix):
    path = two_scenes(tmp_path / f"clip{suffix}")
    info = probe_video(path)
    assert (info.width, info.height, info.fps, info.audio_channels) == (96, 64, 10.0, 1)
    assert info.duration_s == pytest.approx(8.0, abs=0.05) and info.codec in ("h264", "vp9")
    found = _moments(path)
    assert [(m.start_s, round(m.end_s)) for m in found] == [(0.0, 4), (4.0, 8)]
    # each moment's frames come from inside it, and show its photo (the first is the astronaut: more blue)
    for m in found:
        assert all(m.start_s <= f.time_s < m.end_s for f in m.frames) and 1 <= len(m.frames) <= 3
    first, second = (np.asarray(m.frames[0].image, np.float32) for m in found)
    a, b = photo("astronaut").astype(np.float32), photo("coffee").astype(np.float32)
    assert np.abs(first - a).mean() < np.abs(first - b).mean()
    assert np.abs(second - b).mean() < np.abs(second - a).mean()


def test_a_video_without_cuts_becomes_fixed_windows_and_frames_are_capped(tmp_path):
    path = write_video(tmp_path / "calm.mp4", [(25.0, photo("chelsea"), None)], fps=5, audio=False)
    found = _moments(path, MomentRules(max_moment_s=10.0))
    assert [(m.start_s, m.end_s) for m in found] == [(0.0, 10.0), (10.0, 20.0), (20.0, 25.0)]
    assert sum(len(m.frames) for m in found) == 9  # three per moment
    # 360 frames an hour (one per 10 s) after a starting credit of one shot's frames; never none for a moment
    capped = _moments(path, MomentRules(frames_per_shot=3, max_frames_per_hour=360))
    assert sum(len(m.frames) for m in capped) <= 3 + 25 * 360 / 3600 + 1
    assert all(len(m.frames) >= 1 for m in capped)


def test_a_still_held_for_hours_is_short_moments_sharing_one_frame(tmp_path):
    path = tmp_path / "still.mp4"
    with av.open(str(path), "w") as out:  # two frames ten hours apart
        v = out.add_stream("libx264", rate=1)
        v.width, v.height, v.pix_fmt, v.time_base = 96, 64, "yuv420p", fractions.Fraction(1, 1)
        for pts in (0, 36_000):
            f = av.VideoFrame.from_ndarray(photo("astronaut"), format="rgb24")
            f.pts = pts
            for p in v.encode(f):
                out.mux(p)
        for p in v.encode():
            out.mux(p)
    found = _moments(path)
    assert found[0].start_s == 0 and found[-1].end_s == pytest.approx(36_001, abs=1)
    assert max(m.end_s - m.start_s for m in found) <= 10.0 + 1e-6  # so the sound of a moment stays short too
    assert len({id(f) for m in found for f in m.frames}) == 2  # decoded twice, not 3600 times


def test_keyframes_alone_are_decoded_where_they_are_dense(tmp_path):
    # One keyframe a second (a phone's GOP): frames between keyframes are never decoded.
    path = write_video(tmp_path / "gop.mp4", [(6.0, photo("rocket"), None)], fps=10, audio=False,
                       options={"g": "10", "keyint_min": "10", "sc_threshold": "0"})
    times = [f.time_s for f in iter_frames(path)]
    assert times == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    # A long GOP (x264's default, 250 frames) is decoded whole but still sampled every step
    long = write_video(tmp_path / "long.mp4", [(6.0, photo("rocket"), None)], fps=10, audio=False)
    assert [f.time_s for f in iter_frames(long, DecodeLimits(step_s=1.0))] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


def test_frames_are_small_whatever_the_size_of_the_video(tmp_path):
    path = write_video(tmp_path / "big.mp4", [(1.0, photo("astronaut", (1280, 720)), None)], audio=False)
    frame = next(iter_frames(path, DecodeLimits(size=64)))
    assert frame.image.size == (114, 64)
    assert frame_at(path, 0.5, size=100).size == (178, 100)


def test_the_rotation_tag_is_honoured(tmp_path):
    plain = two_scenes(tmp_path / "plain.mp4")
    turned = tmp_path / "phone.mp4"
    turned.write_bytes(rotate_mp4(plain.read_bytes()))  # as a phone held upright writes it
    info = probe_video(turned)
    assert (info.width, info.height) == (64, 96) and info.rotation == 270
    upright = next(iter_frames(turned)).image
    assert upright.size == (64, 96)
    flat = np.asarray(next(iter_frames(plain)).image, np.float32)
    np.testing.assert_allclose(np.asarray(upright, np.float32), np.rot90(flat, k=-1), atol=12)
    written = write_video(tmp_path / "tagged.mp4", [(1.0, photo("coffee"), None)], rotation=90, audio=False)
    assert probe_video(written).rotation == 90 and next(iter_frames(written)).image.size == (64, 96)


@pytest.mark.parametrize("suffix,pix_fmt", [(".mp4", "yuv444p"), (".mp4", "yuv420p10le"), (".mp4", "gray"),
                                            (".webm", "yuva420p")])
def test_odd_pixel_formats_decode_to_the_same_picture(tmp_path, suffix, pix_fmt):
    path = write_video(tmp_path / f"odd{suffix}", [(1.0, photo("coffee"), None)], pix_fmt=pix_fmt, audio=False)
    image = np.asarray(next(iter_frames(path)).image, np.float32)
    want = photo("coffee").astype(np.float32)
    if pix_fmt == "gray":
        want = np.repeat(want.mean(axis=2, keepdims=True), 3, axis=2)
    assert np.abs(image - want).mean() < 12


def _bomb_avi(tmp_path: Path, name: str, side: int) -> Path:
    """A raw-video AVI (its size lives only in the header) whose header then claims side x side pixels."""
    raw = tmp_path / "raw.avi"
    with av.open(str(raw), "w") as out:
        v = out.add_stream("rawvideo", rate=5)
        v.width = v.height = 16
        v.pix_fmt = "yuv420p"
        for i in range(3):
            f = av.VideoFrame.from_ndarray(photo("astronaut", (16, 16)), format="rgb24").reformat(format="yuv420p")
            f.pts = i
            for p in v.encode(f):
                out.mux(p)
    path = tmp_path / name
    path.write_bytes(raw.read_bytes().replace(struct.pack("<ii", 16, 16), struct.pack("<ii", side, side)))
    return path


def test_bad_videos_are_one_line_each(tmp_path):
    good = two_scenes(tmp_path / "good.mp4").read_bytes()
    moov = good.find(b"moov") - 4
    cases = {
        "empty.mp4": b"",
        "text.mp4": b"not a video at all\n" * 50,
        "no-moov.mp4": good[:moov],  # moov atom missing
        "cut-moov.mp4": good[: moov + 200],  # moov atom cut
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    sound_only = tmp_path / "sound-only.mp4"
    with av.open(str(sound_only), "w") as out:
        a = out.add_stream("aac", rate=48_000)
        a.layout = "mono"
        samples = sound("complete")
        for s in range(0, len(samples), 1024):
            f = av.AudioFrame.from_ndarray(samples[None, s:s + 1024], format="flt", layout="mono")
            f.sample_rate, f.pts = 48_000, s
            for p in a.encode(f):
                out.mux(p)
    expect = {"empty.mp4": "empty file (0 bytes)", "text.mp4": "not a readable video",
              "no-moov.mp4": "not a readable video", "cut-moov.mp4": "not a readable video",
              "sound-only.mp4": "no video stream in the file (only sound)",
              "huge.avi": "exceeds the 178956970-pixel limit", "claims.avi": "corrupt video header"}
    _bomb_avi(tmp_path, "huge.avi", 15_000)  # 225 Mpx: FFmpeg takes it, our limit refuses it
    _bomb_avi(tmp_path, "claims.avi", 100_000)  # 10 Gpx: FFmpeg itself refuses the header
    for name, reason in expect.items():
        with pytest.raises(BadMedia) as bad:
            list(iter_frames(tmp_path / name))
        assert reason in bad.value.reason and "\n" not in bad.value.reason, name
        assert bad.value.path == str(tmp_path / name)


def test_a_header_larger_than_the_picture_decodes_at_the_real_size(tmp_path):
    # An MP4 whose sample entry claims 65535x65535: FFmpeg takes the size from the H.264 stream itself.
    path = write_video(tmp_path / "w.mp4", [(1.0, photo("astronaut"), None)], audio=False)
    data = bytearray(path.read_bytes())
    at = data.find(b"avc1", 40)  # the sample entry, not the brand list in ftyp
    data[at + 28:at + 32] = struct.pack(">HH", 65535, 65535)
    path.write_bytes(bytes(data))
    assert (probe_video(path).width, probe_video(path).height) == (96, 64)


def test_decoding_stops_at_the_time_budget(tmp_path):
    path = write_video(tmp_path / "long.mp4", [(6.0, photo("rocket"), None)], audio=False)
    with pytest.raises(BadMedia, match="decoding took longer than 0 s"):
        list(iter_frames(path, DecodeLimits(budget_s=0.0)))


def test_the_budget_counts_decoding_not_the_time_the_model_holds_a_frame(tmp_path):
    import time

    path = write_video(tmp_path / "long.mp4", [(6.0, photo("rocket"), None)], audio=False)
    frames = []
    for frame in iter_frames(path, DecodeLimits(budget_s=1.0)):
        frames.append(frame.time_s)
        time.sleep(0.15)  # a slow model: 12 frames hold the decoder for ~1.8 s, more than its whole budget
    assert len(frames) == 12


def test_the_soundtrack_is_cut_at_the_moments(tmp_path):
    for suffix in (".mp4", ".webm"):
        path = two_scenes(tmp_path / f"clip{suffix}")
        info = probe(path)
        assert info.format.endswith("AAC" if suffix == ".mp4" else "OPUS") and info.duration_s == pytest.approx(8, abs=0.05)
        spans = dict(stream_spans(path, 16_000, [(0.0, 4.0), (4.0, 8.0)]))
        assert [len(spans[n]) / 16_000 for n in (0, 1)] == [pytest.approx(4.0, abs=0.02)] * 2
        assert np.abs(spans[0]).max() < 0.01 < np.abs(spans[1]).max()  # silence, then the bell


def test_m4a_and_opus_in_mp4_sounds_decode_through_pyav(tmp_path):
    bell = sound("complete")
    for name, codec, fmt in [("song.m4a", "aac", "mp4"), ("voice.m4a", "libopus", "mp4")]:
        path = tmp_path / name
        with av.open(str(path), "w", format=fmt) as out:
            a = out.add_stream(codec, rate=48_000)
            a.layout = "stereo"
            step = a.codec_context.frame_size or 960
            stereo = np.stack([bell, bell])
            for s in range(0, stereo.shape[1], step):
                f = av.AudioFrame.from_ndarray(np.ascontiguousarray(stereo[:, s:s + step]), format="fltp",
                                               layout="stereo")
                f.sample_rate, f.pts = 48_000, s
                for p in a.encode(f):
                    out.mux(p)
            for p in a.encode():
                out.mux(p)
        info = probe(path)
        assert info.channels == 2 and info.duration_s == pytest.approx(len(bell) / 48_000, abs=0.05)
        windows = list(stream_windows(path, 16_000, 1.0, 1.0))
        assert len(windows) == int(np.ceil(len(bell) / 48_000))
        assert max(float(np.abs(w.samples).max()) for w in windows) > 0.1
