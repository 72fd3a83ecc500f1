"""The small contract every encoder keeps."""

from __future__ import annotations

import re
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Sequence

import numpy as np
from PIL import Image

Modality = Literal["image", "text", "audio", "composed"]  # composed: an image with an instruction (query side only)


@dataclass(frozen=True)
class EmbeddingSpace:
    """Which encoder, model and weights produced a vector. Vectors of two spaces never meet."""

    encoder: str
    model: str
    weights: str
    dim: int

    @property
    def id(self) -> str:
        raw = f"{self.encoder}-{self.model}-{self.weights}".lower()
        return re.sub(r"[^a-z0-9]+", "_", raw).strip("_")

    def metadata(self) -> dict[str, str]:
        return {"encoder": self.encoder, "model": self.model, "weights": self.weights, "dim": str(self.dim)}

    @classmethod
    def from_metadata(cls, meta: dict[str, str]) -> "EmbeddingSpace":
        return cls(meta["encoder"], meta["model"], meta["weights"], int(meta["dim"]))

    def describe(self) -> str:
        return f"{self.encoder} {self.model} ({self.weights}, {self.dim}-d)"


class Encoder(ABC):
    """Lazy, thread-safe: the model loads on first use, once, even under concurrent calls."""

    name: ClassVar[str]
    modalities: ClassVar[frozenset[str]]

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded = False

    @property
    @abstractmethod
    def space(self) -> EmbeddingSpace: ...

    @abstractmethod
    def _load(self) -> None: ...

    @abstractmethod
    def _unload(self) -> None: ...

    def load(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if not self._loaded:
                self._load()
                self._loaded = True

    def unload(self) -> None:
        with self._lock:
            if self._loaded:
                self._unload()
                self._loaded = False

    @property
    def loaded(self) -> bool:
        return self._loaded

    def supports(self, modality: Modality) -> bool:
        return modality in self.modalities

    # Image path: preprocess runs in worker threads, encode in the caller's thread.
    def preprocess_image(self, image: Image.Image) -> Any:
        raise NotImplementedError(f"{self.name} does not embed images")

    def encode_images(self, batch: Sequence[Any]) -> np.ndarray:
        raise NotImplementedError(f"{self.name} does not embed images")

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError(f"{self.name} does not embed text")

    def image_draft_size(self) -> int | None:
        """Smallest side the model needs, so JPEGs can be decoded at reduced scale."""
        return None

    # Audio path: windows are featurised in worker threads, encoded in the caller's thread.
    def audio_rate(self) -> int:
        """Sample rate the model was trained at; audio is resampled to it."""
        raise NotImplementedError(f"{self.name} does not embed audio")

    def audio_window_s(self) -> float:
        """Longest clip the model takes at once; longer audio is embedded in windows of this length."""
        raise NotImplementedError(f"{self.name} does not embed audio")

    def preprocess_audio(self, samples: np.ndarray) -> Any:
        """Mono float32 samples at audio_rate(), at most one window long -> model input."""
        raise NotImplementedError(f"{self.name} does not embed audio")

    def encode_audio(self, batch: Sequence[Any]) -> np.ndarray:
        raise NotImplementedError(f"{self.name} does not embed audio")

    def logit_scale(self) -> float:
        """The model's learned softmax scale for cross-modal similarities (CLIP's is capped at 100)."""
        return 100.0


def l2_normalize(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
