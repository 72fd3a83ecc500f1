"""A tile for a result that has no picture (a sound), so every result of a fused list shows in a gallery."""

from __future__ import annotations

import hashlib
from pathlib import Path

from PIL import Image, ImageDraw

from mmsearch.search.results import SearchResult
from mmsearch.ui.thumbs import write_atomically

EDGE = 384


def sound_tile(folder: Path, result: SearchResult) -> str:
    """A WebP tile naming the sound and its length, cached by (name, duration)."""
    label = f"{result.name}\n{_clock(result.duration_s or 0.0)}"
    key = hashlib.sha1(label.encode()).hexdigest()
    out = Path(folder) / key[:2] / f"{key}.webp"
    if out.is_file():
        return str(out)
    tile = Image.new("RGB", (EDGE, EDGE), (236, 238, 250))
    draw = ImageDraw.Draw(tile)
    mid = EDGE // 2
    for i, h in enumerate((40, 90, 140, 70, 120, 50, 100, 30, 80)):  # a stylised waveform
        x = mid - 4 * 22 + i * 22
        draw.rounded_rectangle((x - 6, mid - 40 - h // 2, x + 6, mid - 40 + h // 2), 6, fill=(79, 70, 229))
    draw.multiline_text((mid, EDGE - 90), label, fill=(30, 30, 50), anchor="ma", align="center",
                        font_size=22)
    return write_atomically(out, lambda fh: tile.save(fh, format="WEBP", quality=85))


def _clock(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}:{s:02d}"
