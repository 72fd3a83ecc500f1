"""Photo-like JPEGs made on the spot, so the benchmark downloads nothing.

Each image mixes random noise at several scales (a rough 1/f spectrum, like natural images), a few
soft-edged discs and a fine grain, then saves as a quality-90 JPEG. The result decodes and compresses
like a real 1024x768 photo (150-350 KB), and every file has distinct bytes, so no two share a content
hash (the indexer would otherwise reuse vectors instead of embedding).
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SIZE = (1024, 768)
QUALITY = 90


def make_photo(seed: int, size: tuple[int, int] = SIZE) -> Image.Image:
    rng = np.random.default_rng(seed)
    w, h = size
    base = np.zeros((h // 4, w // 4, 3), np.float32)
    for cells, weight in ((4, 0.45), (16, 0.3), (64, 0.25)):
        coarse = rng.random((max(1, cells * 3 // 4), cells, 3), np.float32)
        layer = Image.fromarray((coarse * 255).astype(np.uint8)).resize((w // 4, h // 4), Image.BICUBIC)
        base += weight * np.asarray(layer, np.float32)
    img = Image.fromarray(base.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(2, 6))):
        x, y, r = rng.integers(0, w // 4), rng.integers(0, h // 4), int(rng.integers(8, 60))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
    img = img.filter(ImageFilter.GaussianBlur(1.5)).resize(size, Image.BICUBIC)
    grain = rng.integers(-12, 13, (h, w, 1), dtype=np.int16)
    return Image.fromarray((np.asarray(img, np.int16) + grain).clip(0, 255).astype(np.uint8))


def _write(args: tuple[str, int]) -> None:
    path, seed = args
    tmp = path + ".part"
    make_photo(seed).save(tmp, "JPEG", quality=QUALITY)
    os.replace(tmp, path)  # a killed run never leaves a half-written photo in the pool


def photo_pool(folder: Path, n: int, processes: int = 2) -> list[Path]:
    """The first n photos of a deterministic pool, generating only the missing ones."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"photo_{i:06d}.jpg" for i in range(n)]
    missing = [(str(p), i) for i, p in enumerate(paths) if not p.exists()]
    if missing:
        with ProcessPoolExecutor(processes) as pool:
            list(pool.map(_write, missing, chunksize=16))
    return paths


def link_folder(paths: list[Path], folder: Path) -> Path:
    """A folder holding exactly these photos, as hard links (no copies) when the filesystem allows."""
    folder.mkdir(parents=True, exist_ok=True)
    for p in paths:
        dest = folder / p.name
        if not dest.exists():
            try:
                os.link(p, dest)
            except OSError:
                dest.write_bytes(p.read_bytes())
    return folder
