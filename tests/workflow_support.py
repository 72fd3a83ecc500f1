"""Shared pieces of the workflow tests: a product catalog over the real sample photos, a bag-of-words
text encoder whose similarities are known in advance, and real image transformations."""

from __future__ import annotations

import csv
import io
import re
import shutil
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageEnhance

from mmsearch.encoders.base import EmbeddingSpace, Encoder

SAMPLES = Path(__file__).resolve().parent.parent / "assets" / "samples"
PRODUCTS = [
    {"SKU": "CAT-01", "Title": "Tabby cat poster", "Description": "A glossy print of a tabby cat",
     "Category": "posters", "Price": "$12.50", "Stock": 4, "image": "img/tabby-cat.jpg"},
    {"SKU": "MUG-02", "Title": "Coffee mug", "Description": "Ceramic cup for hot coffee",
     "Category": "kitchen", "Price": "$8.00", "Stock": 30, "image": "img/coffee-cup.jpg"},
    {"SKU": "RKT-03", "Title": "Rocket launch print", "Description": "Night launch photograph",
     "Category": "posters", "Price": "$1,299.00", "Stock": 1, "image": "img/rocket-launch.jpg"},
    {"SKU": "BRK-04", "Title": "Brick wallpaper", "Description": "Red brick pattern for walls",
     "Category": "home", "Price": "$30.00", "Stock": 12, "image": "img/brick-wall.jpg"},
]


def make_shop(root: Path, products: Sequence[dict] = PRODUCTS, name: str = "products.csv") -> Path:
    """A shop folder: img/ with real photos and a catalog file whose image paths are relative to it."""
    (root / "img").mkdir(parents=True, exist_ok=True)
    for p in SAMPLES.glob("*.jpg"):
        if not (root / "img" / p.name).exists():
            shutil.copy(p, root / "img" / p.name)
    path = root / name
    columns = list(dict.fromkeys(c for p in products for c in p))
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(products)
    return path


class BagOfWords(Encoder):
    """Text only: hashed word counts. Texts sharing words are similar, the rest near orthogonal, so a test
    knows which product a text query must find."""

    name = "bag-of-words"
    modalities = frozenset({"text"})

    def __init__(self, dim: int = 256) -> None:
        super().__init__()
        self.dim = dim

    @property
    def space(self) -> EmbeddingSpace:
        return EmbeddingSpace(self.name, "bow", "test", self.dim)

    def _load(self) -> None:
        pass

    def _unload(self) -> None:
        pass

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z0-9]+", text.lower()):
                out[row, zlib.crc32(word.encode()) % self.dim] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

    encode_documents = encode_text


# -- real transformations of real photos ----------------------------------------------------------
def crop(img: Image.Image, box: tuple[float, float, float, float]) -> Image.Image:
    w, h = img.size
    return img.crop((int(box[0] * w), int(box[1] * h), int(box[2] * w), int(box[3] * h)))


def jpeg(img: Image.Image, quality: int = 40) -> Image.Image:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def colour_shift(img: Image.Image) -> Image.Image:
    arr = np.asarray(img.convert("RGB")).astype(np.int16)
    arr[..., 0] += 30
    arr[..., 2] -= 20
    return ImageEnhance.Color(Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))).enhance(0.7)


def resize(img: Image.Image, factor: float = 0.5) -> Image.Image:
    return img.resize((max(8, int(img.width * factor)), max(8, int(img.height * factor))))


# -- an encoder that knows colours ------------------------------------------------------------------
COLOURS = {"red": (1.0, 0.0, 0.0), "green": (0.0, 1.0, 0.0), "blue": (0.0, 0.0, 1.0), "yellow": (1.0, 1.0, 0.0),
           "orange": (1.0, 0.5, 0.0), "purple": (0.5, 0.0, 1.0), "warm": (1.0, 0.6, 0.2), "cool": (0.1, 0.5, 1.0)}


class ColourEncoder(Encoder):
    """Images by their mean colour, text by the colour words in it: similarities a test can predict
    (a red picture is close to "red", far from "blue"), unlike a random-weight model's."""

    name = "colour"
    modalities = frozenset({"text", "image"})

    @property
    def space(self) -> EmbeddingSpace:
        return EmbeddingSpace(self.name, "rgb", "test", 4)

    def _load(self) -> None:
        pass

    def _unload(self) -> None:
        pass

    def preprocess_image(self, image: Image.Image) -> np.ndarray:
        return np.asarray(image.convert("RGB").resize((8, 8)), np.float32).mean(axis=(0, 1)) / 255.0

    def encode_images(self, batch: Sequence[np.ndarray]) -> np.ndarray:
        return np.stack([_colour_vector(np.asarray(rgb)) for rgb in batch])

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        out = []
        for text in texts:
            found = [COLOURS[w] for w in re.findall(r"[a-z]+", text.lower()) if w in COLOURS]
            out.append(_colour_vector(np.mean(found, axis=0) if found else np.full(3, 0.5)))
        return np.stack(out)


def _colour_vector(rgb: np.ndarray) -> np.ndarray:
    centred = np.asarray(rgb, np.float32) - float(np.mean(rgb))
    v = np.append(centred, 0.05).astype(np.float32)
    return v / np.linalg.norm(v)


def solid(path: Path, rgb: tuple[int, int, int], size: tuple[int, int] = (48, 32), noise: int = 12,
          seed: int = 0) -> Path:
    """A picture of one colour with some grain (so files differ), saved in the format its name says."""
    rng = np.random.default_rng(seed)
    arr = np.clip(np.array(rgb, np.int16) + rng.integers(-noise, noise + 1, size=(size[1], size[0], 3)), 0, 255)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr.astype(np.uint8)).save(path)
    return path
