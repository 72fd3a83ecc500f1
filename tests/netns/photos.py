"""A few hundred real photos: scikit-image's samples, cropped, flipped, turned and resized into variations,
saved as JPEG and PNG (openclipart is not packaged here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

SAMPLES = ["astronaut", "coffee", "chelsea", "rocket", "camera", "cat", "immunohistochemistry", "motorcycle_left",
           "hubble_deep_field", "retina", "page", "moon", "text", "coins", "horse", "clock"]


def _sample(name: str) -> np.ndarray | None:
    from skimage import data

    try:
        arr = np.asarray(getattr(data, name)())
    except Exception:  # noqa: BLE001 - a sample that needs pooch's download is left out
        return None
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    return arr[:, :, :3].astype(np.uint8)


def write_photos(folder: Path, count: int = 160) -> list[Path]:
    photos = [(n, a) for n in SAMPLES if (a := _sample(n)) is not None]
    out = []
    for i in range(count):
        name, arr = photos[i % len(photos)]
        img = Image.fromarray(arr)
        w, h = img.size
        k = i // len(photos)
        box = (k * w // 40, k * h // 50, w - (k % 3) * w // 30, h - (k % 4) * h // 40)
        img = img.crop(box).resize((64 + 8 * (k % 5), 48 + 8 * (k % 3)), Image.Resampling.BILINEAR)
        if k % 2:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if k % 3 == 2:
            img = img.rotate(90, expand=True)
        suffix = ".jpg" if i % 3 else ".png"
        path = folder / f"set{k % 4}" / f"{name}-{i:03d}{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        img.save(path)
        out.append(path)
    return out
