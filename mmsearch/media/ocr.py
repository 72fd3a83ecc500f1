"""Text inside images (signs, screenshots, scanned pages, labels) with RapidOCR: PaddleOCR's detection and
recognition models in ONNX Runtime, shipped inside the `rapidocr-onnxruntime` wheel (Apache-2.0), so it
works offline. Optional: `pip install 'mmsearch[ocr]'`.

Loaded lazily and once, under a lock (two requests may arrive before the models are loaded).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from mmsearch.errors import MMSearchError

MIN_CONFIDENCE = 0.5  # recognised lines below this are mostly noise on photos without text
MAX_EDGE = 1600  # larger pages are scaled down first: the detector works at about this size anyway


class OCRUnavailable(MMSearchError):
    pass


def require_ocr() -> Any:
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError:
        raise OCRUnavailable("OCR needs RapidOCR: pip install 'mmsearch[ocr]' "
                             "(or pip install rapidocr-onnxruntime)") from None
    return RapidOCR


@dataclass
class OCRResult:
    text: str
    lines: list[tuple[str, float]]  # (line, confidence)
    seconds: float


class OCR:
    def __init__(self, min_confidence: float = MIN_CONFIDENCE, threads: int | None = None) -> None:
        self.min_confidence = min_confidence
        self.threads = threads
        self._engine: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        if self._engine is not None:
            return
        with self._lock:
            if self._engine is None:
                RapidOCR = require_ocr()
                options = {"intra_op_num_threads": self.threads} if self.threads else {}
                self._engine = RapidOCR(**options)

    def read(self, image: Image.Image) -> OCRResult:
        self.load()
        started = time.perf_counter()
        image = image.convert("RGB")
        if max(image.size) > MAX_EDGE:
            image = image.copy()
            image.thumbnail((MAX_EDGE, MAX_EDGE))
        found, _ = self._engine(np.asarray(image)[:, :, ::-1])  # BGR, as OpenCV reads
        lines = [(str(text), float(score)) for _, text, score in (found or []) if float(score) >= self.min_confidence]
        return OCRResult(" ".join(t for t, _ in lines), lines, time.perf_counter() - started)
