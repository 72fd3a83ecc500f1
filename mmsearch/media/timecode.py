"""Times as people read them: 75.5 -> '1:15.5', a video moment as '0:04–0:08'."""

from __future__ import annotations


def clock(seconds: float) -> str:
    m, s = divmod(float(seconds), 60)
    h, m = divmod(int(m), 60)
    sec = f"{s:04.1f}" if s % 1 else f"{int(s):02d}"
    return f"{h}:{m:02d}:{sec}" if h else f"{m}:{sec}"


def span(start_s: float, end_s: float) -> str:
    return f"{clock(start_s)}–{clock(end_s)}"
