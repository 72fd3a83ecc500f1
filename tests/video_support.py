"""Real videos for the tests, written by PyAV: scikit-image's photos as the picture, Debian's sounds as the
soundtrack (sound-theme-freedesktop; the Makefile's test target installs it)."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Sequence

import numpy as np
import pytest
from PIL import Image

SOUNDS = Path("/usr/share/sounds/freedesktop/stereo")
BELL_RINGING = "alarm-clock-elapsed"  # 6 s of a ringing bell ("bell" itself lasts 0.14 s)
FORMATS = {  # suffix: (container format, video codec, audio codec)
    ".mp4": ("mp4", "libx264", "aac"),
    ".webm": ("webm", "libvpx-vp9", "libopus"),
    ".mkv": ("matroska", "libx264", "libopus"),
    ".mov": ("mov", "libx264", "aac"),
}


def photo(name: str, size: tuple[int, int] = (96, 64)) -> np.ndarray:
    """A scikit-image sample photo (astronaut, coffee, chelsea, rocket, camera ...) as RGB at `size`."""
    from skimage import data

    arr = getattr(data, name)()
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    return np.asarray(Image.fromarray(arr[:, :, :3]).resize(size, Image.Resampling.BILINEAR))


def sound(name: str, rate: int = 48_000) -> np.ndarray:
    """A Debian sound (e.g. "bell", "complete", "dialog-warning") as mono float32 at `rate`."""
    import soundfile as sf
    import soxr

    path = SOUNDS / f"{name}.oga"
    if not path.is_file():
        pytest.skip(f"{path} is missing: apt-get install sound-theme-freedesktop (make test does)")
    samples, sr = sf.read(path, dtype="float32", always_2d=True)
    return soxr.resample(samples.mean(axis=1), sr, rate).astype(np.float32)


def write_video(path: Path, scenes: Sequence[tuple[float, np.ndarray, np.ndarray | None]], fps: int = 10,
                rate: int = 48_000, audio: bool = True, pix_fmt: str = "yuv420p", rotation: int | None = None,
                options: dict | None = None) -> Path:
    """scenes: (seconds, picture, sound or None for silence) one after another. The codecs follow the suffix."""
    import av

    fmt, vcodec, acodec = FORMATS[path.suffix.lower()]
    h, w = scenes[0][1].shape[:2]
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format=fmt) as out:
        v = out.add_stream(vcodec, rate=fps, options=options or {})
        v.width, v.height, v.pix_fmt = w, h, pix_fmt
        if rotation is not None:
            v.set_display_rotation(rotation)
        a = None
        if audio:
            a = out.add_stream(acodec, rate=rate)
            a.layout = "mono"
        n = 0
        track = []
        for seconds, picture, clip in scenes:
            frame_in = av.VideoFrame.from_ndarray(picture, format="rgb24")
            for _ in range(int(round(seconds * fps))):
                f = frame_in.reformat(format=pix_fmt) if pix_fmt != "yuv420p" else frame_in
                f.pts = n
                n += 1
                for p in v.encode(f):
                    out.mux(p)
            part = np.zeros(int(seconds * rate), np.float32)
            if clip is not None:
                part[: min(len(clip), len(part))] = clip[: len(part)]
            track.append(part)
        for p in v.encode():
            out.mux(p)
        if a is not None:
            samples = np.concatenate(track)
            step = a.codec_context.frame_size or 960
            for s in range(0, len(samples), step):
                chunk = samples[s:s + step]
                af = av.AudioFrame.from_ndarray(chunk[None, :], format="flt", layout="mono")
                af.sample_rate, af.pts = rate, s
                for p in a.encode(af):
                    out.mux(p)
            for p in a.encode():
                out.mux(p)
    return path


def two_scenes(path: Path, first: str = "astronaut", second: str = "coffee",
               noise: str = BELL_RINGING) -> Path:
    """Seconds 0-4: the first photo in silence; 4-8: the second photo with a sound."""
    return write_video(path, [(4.0, photo(first), None), (4.0, photo(second), sound(noise))])


def rotate_mp4(data: bytes) -> bytes:
    """The first track's display matrix (the video's) turned to 90 degrees clockwise, as phones write it."""
    ident = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    turned = struct.pack(">9I", 0, 0x10000, 0, 0xFFFF0000, 0, 0, 0, 0, 0x40000000)
    at = data.find(ident)
    assert at > 0, "no display matrix found"
    return data[:at] + turned + data[at + len(ident):]


def panning(path: Path, names: Sequence[str], seconds_each: float = 4.0, size: tuple[int, int] = (160, 96),
            fps: int = 10, audio: bool = False) -> Path:
    """A cut to each photo in turn, the camera panning slowly across it: every frame differs a little from the
    last, so a copy must line up in time, not just share pictures."""
    w, h = size
    scenes = []
    for name in names:
        wide = photo(name, (int(w * 1.5), h))
        steps = int(round(seconds_each * fps))
        scenes += [(1.0 / fps, np.ascontiguousarray(wide[:, int(i * (wide.shape[1] - w) / steps):][:, :w]), None)
                   for i in range(steps)]
    return write_video(path, scenes, fps=fps, audio=audio)


def reencode(src: Path, out: Path, scale: float = 1.0, trim_s: float = 0.0, codec: str | None = None,
             bit_rate: int | None = None, mirror: bool = False) -> Path:
    """A re-upload of `src`: decoded and encoded again (the suffix's codec, or `codec`), optionally scaled,
    flipped left to right and with its first `trim_s` seconds cut off, timestamps starting again from 0."""
    import fractions

    import av

    fmt, vcodec, _ = FORMATS[out.suffix.lower()]
    with av.open(str(src)) as inp, av.open(str(out), "w", format=fmt) as dst:
        vin = inp.streams.video[0]
        rate = int(round(float(vin.average_rate or 10)))
        v = dst.add_stream(codec or vcodec, rate=rate)
        v.width, v.height = (int(vin.codec_context.width * scale) // 2 * 2, int(vin.codec_context.height * scale) // 2 * 2)
        v.pix_fmt = "yuv420p"
        if bit_rate:
            v.bit_rate = bit_rate
        n = 0
        for frame in inp.decode(vin):
            if frame.time is None or frame.time < trim_s - 1e-6:
                continue
            f = frame.reformat(width=v.width, height=v.height, format="yuv420p")
            if mirror:
                f = av.VideoFrame.from_ndarray(np.ascontiguousarray(f.to_ndarray(format="rgb24")[:, ::-1]),
                                               format="rgb24").reformat(format="yuv420p")
            f.pts, f.time_base = n, fractions.Fraction(1, rate)
            n += 1
            for p in v.encode(f):
                dst.mux(p)
        for p in v.encode():
            dst.mux(p)
    return out
