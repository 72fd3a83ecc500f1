"""Cutting a stream of small frames into moments: shots found by a cheap change detector, split when long.

A cut is where consecutive sampled frames differ in both layout (an 8x8 colour thumbnail) and tone (a
luminance histogram) by more than `cut_threshold`; a cut closer than `min_shot_s` to the last one is ignored
(flashes, fast pans), and a shot longer than `max_moment_s` is split, so a video without cuts becomes
fixed windows and every moment is short enough to name "where it happens". Each moment keeps a few
evenly spaced frames for the model, at most `frames_per_shot`, and fewer where `max_frames_per_hour`
would be exceeded (a token bucket: long calm shots save up for busy stretches). Only the current
moment's frames are held.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import numpy as np
from PIL import Image

from mmsearch.media.video import Frame


@dataclass(frozen=True)
class MomentRules:
    frames_per_shot: int = 3
    min_shot_s: float = 1.0
    max_moment_s: float = 10.0
    max_frames_per_hour: int = 1800
    cut_threshold: float = 0.12

    def __post_init__(self) -> None:
        if self.frames_per_shot < 1 or self.max_frames_per_hour < 1:
            raise ValueError("frames per shot and frames per hour must be at least 1")
        if not 0 < self.min_shot_s <= self.max_moment_s:
            raise ValueError(f"need 0 < min shot length ({self.min_shot_s}) <= moment length ({self.max_moment_s})")

    @property
    def shortest_s(self) -> float:
        """No moment is shorter (but the last), so even one frame per moment keeps to the hourly cap."""
        return max(self.min_shot_s, 3600.0 / self.max_frames_per_hour)


@dataclass
class Moment:
    start_s: float
    end_s: float
    frames: list[Frame] = field(default_factory=list)  # chosen for the model, in time order


def signature(image: Image.Image) -> np.ndarray:
    """Layout and tone of a frame in 208 numbers in [0, 1]."""
    thumb = np.asarray(image.convert("RGB").resize((8, 8), Image.Resampling.BOX), np.float32).reshape(-1) / 255.0
    gray = np.asarray(image.convert("L").resize((32, 32), Image.Resampling.BOX))
    hist = np.bincount(gray.reshape(-1) // 16, minlength=16).astype(np.float32) / gray.size
    return np.concatenate([thumb, hist])


def change(a: np.ndarray, b: np.ndarray) -> float:
    """0 for the same picture, about 1 for opposite ones: the mean of layout and tone distances."""
    layout = float(np.abs(a[:192] - b[:192]).mean())
    tone = 0.5 * float(np.abs(a[192:] - b[192:]).sum())
    return 0.5 * (layout + tone)


def moments(frames: Iterable[Frame], duration_s: float, rules: MomentRules = MomentRules()) -> Iterator[Moment]:
    """Moments covering [0, duration_s] without gaps, in order, each with its chosen frames.

    No moment is longer than `max_moment_s`: where frames are further apart than that (a still held for
    hours, a file cut short), the last frame stands for the moments in between, so a moment's sound is
    never more than one moment long either."""
    held: list[Frame] = []
    start = 0.0
    previous: np.ndarray | None = None
    tokens = float(rules.frames_per_shot)
    for frame in frames:
        sig = signature(frame.image)
        while held and frame.time_s - start > rules.max_moment_s + 1e-6:  # a gap: moments of the last picture
            tokens, moment = _close(start, start + rules.max_moment_s, held, tokens, rules)
            yield moment
            start, held = start + rules.max_moment_s, [held[-1]]
        long_enough = frame.time_s - start >= rules.shortest_s
        cut = previous is not None and long_enough and change(previous, sig) > rules.cut_threshold
        if held and (cut or frame.time_s - start >= rules.max_moment_s - 1e-6):
            tokens, moment = _close(start, frame.time_s, held, tokens, rules)
            yield moment
            start, held = frame.time_s, []
        held.append(frame)
        previous = sig
    if not held:
        return
    end = max(duration_s, held[-1].time_s + 1e-3)
    while end - start > rules.max_moment_s + 1e-6:
        tokens, moment = _close(start, start + rules.max_moment_s, held, tokens, rules)
        yield moment
        start, held = start + rules.max_moment_s, [held[-1]]
    yield _close(start, end, held, tokens, rules)[1]


def _close(start: float, end: float, held: list[Frame], tokens: float, rules: MomentRules
           ) -> tuple[float, Moment]:
    tokens = min(tokens + (end - start) * rules.max_frames_per_hour / 3600.0, 4.0 * rules.frames_per_shot)
    n = max(1, min(rules.frames_per_shot, len(held), math.floor(tokens)))
    picks = [held[min(len(held) - 1, int((i + 0.5) * len(held) / n))] for i in range(n)]
    return tokens - n, Moment(round(start, 3), round(end, 3), picks)
