"""Video decoding with PyAV (FFmpeg inside its wheels): small frames a few at a time, within a time budget.

Frames are wanted about every `step_s` seconds, never every frame. Keyframes decode on their own, so where
they come often enough (phone video: about one a second; x264 also puts one at every cut) only they are
decoded and the packets between them are dropped unread. A group of pictures longer than `max_gap_s` (screen
recordings, long-GOP encodes) is decoded whole, since its frames need each other, but only every `step_s`-th
frame is converted. Each kept frame is scaled down to `size` pixels on its short side by FFmpeg's scaler
right away and the full-size frame dropped, so memory holds one group's packets and a few small frames
whatever the length of the file. The rotation tag is applied to the small frames, and every problem with a
file becomes BadMedia naming it and the reason.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from PIL import Image

from mmsearch.errors import BadMedia
from mmsearch.media.checks import readable_size

VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v"})
_CONTAINER_NAMES = {"mov,mp4,m4a,3gp,3g2,mj2": "MP4", "matroska,webm": "MKV", "avi": "AVI"}


def supported_extensions() -> frozenset[str]:
    return VIDEO_EXTENSIONS


def is_video_file(path: str | Path) -> bool:
    """By its extension, as the indexer chooses."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


@dataclass(frozen=True)
class VideoInfo:
    duration_s: float
    width: int  # as shown, after the rotation tag
    height: int
    fps: float
    codec: str  # the video codec, e.g. "h264", "vp9", "hevc"
    format: str  # the container, e.g. "MP4", "WEBM", "MKV"
    rotation: int  # degrees counter-clockwise the picture is turned for display
    audio_channels: int  # of the first soundtrack; 0: none


@dataclass(frozen=True)
class DecodeLimits:
    step_s: float = 0.5  # a frame about this often is enough to find cuts
    max_gap_s: float = 2.0  # keyframes further apart than this: decode the frames between them too
    size: int = 224  # short side of the frames handed on
    budget_s: float = 600.0  # seconds of wall time one file may take to decode
    max_pixels: int = 178_956_970  # a frame (or a header) larger than this is refused, like an image bomb


@dataclass(frozen=True)
class Frame:
    time_s: float
    image: Image.Image  # RGB, short side `size`, already turned upright


def probe_video(path: str | Path, max_pixels: int = DecodeLimits.max_pixels) -> VideoInfo:
    """What the container says, without decoding a frame; BadMedia for anything unusable."""
    path = str(path)
    with _opened(path, 30.0) as container:
        info = _info(path, container, max_pixels)
        if info.rotation:
            return info
        # FFmpeg 7 keeps the rotation in side data that PyAV shows on frames: decode the first one.
        stream = container.streams.video[0]
        try:
            frame = next(iter(container.decode(stream)), None)
        except Exception as exc:  # noqa: BLE001 - a file whose first frame cannot be decoded is of no use
            raise BadMedia(path, f"corrupt video: its first frame cannot be decoded ({_said(exc)})") from None
        if frame is None:
            raise BadMedia(path, "no video frames could be decoded")
        turned = _frame_rotation(frame)
        if turned % 180:
            info = replace(info, width=info.height, height=info.width)
        return replace(info, rotation=turned)


def iter_frames(path: str | Path, limits: DecodeLimits = DecodeLimits()) -> Iterator[Frame]:
    """Small upright frames about every `step_s` seconds, in time order, decoded lazily."""
    path = str(path)
    budget = _Budget(path, limits.budget_s)
    with _opened(path, limits.budget_s) as container:
        info = _info(path, container, limits.max_pixels)
        stream = container.streams.video[0]
        stream.codec_context.thread_type = "AUTO"  # frame and slice threads inside FFmpeg
        # Deblocking only smooths what the downscale throws away anyway; skipping it saves ~20% of H.264 time.
        stream.codec_context.options = {"skip_loop_filter": "all"}
        last = -math.inf
        for frame in _sparse_frames(path, container, stream, limits, budget):
            t = _frame_time(frame)
            if t is None or t < last + limits.step_s * 0.999:
                continue
            last = t
            small = Frame(t, _small(path, frame, info.rotation, limits))
            with budget.paused():  # the caller's time with the frame (the model) is not decoding time
                yield small


def frame_at(path: str | Path, time_s: float, size: int = 512, budget_s: float = 30.0) -> Image.Image:
    """The frame shown at `time_s` (a thumbnail, a "more like this moment" query): seek to the keyframe before
    it and decode forward to it."""
    path = str(path)
    limits = DecodeLimits(size=size, budget_s=budget_s)
    budget = _Budget(path, budget_s)
    with _opened(path, budget_s) as container:
        info = _info(path, container, limits.max_pixels)
        stream = container.streams.video[0]
        stream.codec_context.thread_type = "AUTO"
        if time_s > 0 and stream.time_base:
            try:
                container.seek(int(time_s / stream.time_base), stream=stream, backward=True)
            except Exception:  # noqa: BLE001 - an unseekable file decodes from the start instead
                container.seek(0)
        best = None
        try:
            for packet in container.demux(stream):
                budget.check()
                for frame in packet.decode():
                    t = _frame_time(frame)
                    if best is not None and t is not None and t > time_s + 1e-3:
                        return _small(path, best, info.rotation, limits)
                    best = frame
        except Exception as exc:  # noqa: BLE001 - the frames decoded so far still answer
            if best is None:
                raise BadMedia(path, f"corrupt video ({_said(exc)})") from None
        if best is None:
            raise BadMedia(path, "no video frames could be decoded")
        return _small(path, best, info.rotation, limits)


# -- opening ----------------------------------------------------------------------------------------
@contextmanager
def _opened(path: str, budget_s: float) -> Iterator[Any]:
    readable_size(path)
    import av

    try:
        # timeout: FFmpeg's interrupt callback gives up on a read that makes no progress for that long.
        container = av.open(path, timeout=(30.0, max(budget_s, 30.0)))
    except Exception as exc:  # noqa: BLE001 - InvalidDataError, EOFError, OSError ... all mean "cannot use it"
        raise BadMedia(path, f"not a readable video ({_said(exc)})") from None
    try:
        yield container
    finally:
        container.close()


def _info(path: str, container: Any, max_pixels: int) -> VideoInfo:
    try:
        return _read_info(path, container, max_pixels)
    except BadMedia:
        raise
    except Exception as exc:  # noqa: BLE001 - a header PyAV half understands (fuzzing finds these)
        raise BadMedia(path, f"not a readable video ({type(exc).__name__} in its header)") from None


def _read_info(path: str, container: Any, max_pixels: int) -> VideoInfo:
    if not container.streams.video:
        if not container.streams.audio:
            raise BadMedia(path, "not a readable video (no streams in it: cut short, or not a video)")
        raise BadMedia(path, "no video stream in the file (only sound)")
    stream = container.streams.video[0]
    cc = stream.codec_context
    if cc is None:
        raise BadMedia(path, "unsupported video codec: no decoder for it in this FFmpeg")
    width, height = int(cc.width or 0), int(cc.height or 0)
    if width <= 0 or height <= 0:
        raise BadMedia(path, f"corrupt video header ({width}x{height} pixels)")
    if width * height > max_pixels:
        raise BadMedia(path, f"{width}x{height} exceeds the {max_pixels}-pixel limit")
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate else 0.0
    duration = _duration(container, stream)
    if duration <= 0:
        raise BadMedia(path, "corrupt video: it says it lasts 0 seconds")
    rotation = _rotation(stream)
    if rotation % 180:
        width, height = height, width
    name = container.format.name
    fmt = "WEBM" if name.startswith("matroska") and path.lower().endswith(".webm") else \
        _CONTAINER_NAMES.get(name, name.split(",")[0].upper())
    audio = container.streams.audio
    sound = audio[0].codec_context if audio else None
    channels = max(int(sound.channels or 0), 1) if sound is not None else 0
    return VideoInfo(duration, width, height, round(fps, 3), cc.name, fmt, rotation, channels)


def _duration(container: Any, stream: Any) -> float:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / 1_000_000  # AV_TIME_BASE
    return 0.0


def _rotation(stream: Any) -> int:
    """The display matrix's angle, from the stream (FFmpeg 7 puts it in the codec parameters' side data,
    which PyAV shows on frames); 0 where there is none."""
    try:
        angle = float(stream.metadata.get("rotate", "nan"))
    except ValueError:
        angle = math.nan
    if math.isnan(angle):
        return 0  # read from the first decoded frame instead (see _small)
    return int(round(-angle / 90.0)) * 90 % 360  # the old tag counts clockwise


# -- decoding ---------------------------------------------------------------------------------------
def _sparse_frames(path: str, container: Any, stream: Any, limits: DecodeLimits, budget: "_Budget"
                   ) -> Iterator[Any]:
    """Decoded frames, keyframes only where they come at most `max_gap_s` apart (module docstring)."""
    group: list[Any] = []  # packets since the last keyframe, while it is not yet known whether we need them
    dense = False  # decoding every packet of a long group
    last_decoded = -math.inf  # time of the last keyframe decoded on its own
    decoded = 0
    try:
        for packet in container.demux(stream):
            budget.check()
            if packet.size == 0:
                continue
            t = _packet_time(packet)
            if packet.is_keyframe:
                if group and not dense and _packet_time(group[0]) >= last_decoded + limits.step_s * 0.999:
                    last_decoded = _packet_time(group[0])
                    yield from _decode(stream, group[0])
                    decoded += 1
                group, dense = [packet], False
                continue
            if dense:
                yield from _decode(stream, packet)
                decoded += 1
                continue
            group.append(packet)
            if group and t - _packet_time(group[0]) > limits.max_gap_s:
                dense = True
                for held in group:
                    yield from _decode(stream, held)
                    decoded += 1
                group = []
        if group and not dense:
            yield from _decode(stream, group[0])
        yield from _decode(stream, None)  # the frames the decoder still holds (B-frame reordering)
    except BadMedia:
        raise
    except Exception as exc:  # noqa: BLE001 - any demuxer or decoder failure is this file's problem only
        raise BadMedia(path, f"corrupt video after {max(last_decoded, 0.0):.1f} s ({_said(exc)})") from None


def _decode(stream: Any, packet: Any) -> Iterator[Any]:
    for frame in stream.decode(packet):
        if frame.time_base is None:  # frames drained at the end carry no time base of their own
            frame.time_base = stream.time_base
        yield frame


class _Budget:
    """Seconds spent decoding one file, not counting the time a consumer holds a yielded frame: indexing a
    two-hour film runs the model for longer than the budget, and that must not count as a stuck decoder."""

    def __init__(self, path: str, seconds: float) -> None:
        self.path, self.seconds = path, seconds
        self.spent, self.since = 0.0, time.monotonic()

    def check(self) -> None:
        if self.spent + time.monotonic() - self.since > self.seconds:
            raise BadMedia(self.path, f"decoding took longer than {self.seconds:g} s (MMSEARCH_VIDEO_BUDGET_S); "
                                      f"the file may be damaged")

    @contextmanager
    def paused(self) -> Iterator[None]:
        self.spent += time.monotonic() - self.since
        try:
            yield
        finally:
            self.since = time.monotonic()


def _packet_time(packet: Any) -> float:
    ts = packet.pts if packet.pts is not None else packet.dts
    return float(ts * packet.time_base) if ts is not None and packet.time_base else 0.0


def _frame_time(frame: Any) -> float | None:
    t = frame.time
    return None if t is None or not math.isfinite(t) else max(float(t), 0.0)


def _small(path: str, frame: Any, rotation: int, limits: DecodeLimits) -> Image.Image:
    """The frame scaled by FFmpeg to `size` on its short side, RGB, upright."""
    w, h = int(frame.width), int(frame.height)
    if w <= 0 or h <= 0 or w * h > limits.max_pixels:
        raise BadMedia(path, f"{w}x{h} exceeds the {limits.max_pixels}-pixel limit")
    scale = min(1.0, limits.size / min(w, h))
    sw, sh = max(2, round(w * scale / 2) * 2), max(2, round(h * scale / 2) * 2)
    try:
        rgb = frame.reformat(width=sw, height=sh, format="rgb24").to_ndarray()
    except Exception as exc:  # noqa: BLE001 - a pixel format the scaler cannot convert
        raise BadMedia(path, f"unsupported pixel format {frame.format.name} ({_said(exc)})") from None
    image = Image.fromarray(np.ascontiguousarray(rgb[:, :, :3]), "RGB")
    angle = rotation or _frame_rotation(frame)
    return image.rotate(angle, expand=True) if angle % 360 else image


def _frame_rotation(frame: Any) -> int:
    try:
        angle = float(getattr(frame, "rotation", 0) or 0)
    except (TypeError, ValueError):
        return 0
    return int(round(angle / 90.0)) * 90 % 360


def _said(exc: BaseException) -> str:
    """FFmpeg's words for a failure, one line, without the file name it repeats."""
    text = str(getattr(exc, "strerror", None) or exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line.split(": '")[0].rstrip(":. ") or type(exc).__name__
