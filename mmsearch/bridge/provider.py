"""The bridge for the configured pair of models: loaded from models_dir, or fitted (and saved) when first needed."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from mmsearch.bridge.anchors import AnchorBridge, Direction, bridge_path, load_vocabulary
from mmsearch.encoders.base import EmbeddingSpace, Encoder


class BridgeProvider:
    """Receives both encoders; fits at most once per process, under a lock (two queries may race)."""

    def __init__(self, audio: Encoder, image: Encoder, models_dir: Path, vocabulary: Path) -> None:
        self.audio = audio
        self.image = image
        self.models_dir = Path(models_dir)
        self.vocabulary = Path(vocabulary)
        self._bridge: AnchorBridge | None = None
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        return bridge_path(self.models_dir, self.audio.space, self.image.space)

    def get(self) -> AnchorBridge:
        with self._lock:
            if self._bridge is None:
                self._bridge = self._load_or_fit()
            return self._bridge

    def saved(self) -> AnchorBridge | None:
        """The bridge on disk for this pair, or None when none has been fitted yet."""
        path = self.path
        return AnchorBridge.load(path, self.audio.space, self.image.space) if path.is_file() else None

    def refit(self) -> AnchorBridge:
        with self._lock:
            self._bridge = self._fit(save_errors=True)
            return self._bridge

    def projectors(self) -> list["BridgeProjector"]:
        return [BridgeProjector(self, "audio->image"), BridgeProjector(self, "image->audio")]

    def _load_or_fit(self) -> AnchorBridge:
        _, sha = load_vocabulary(self.vocabulary)
        bridge = self.saved()
        if bridge is not None and bridge.vocabulary_sha == sha:
            return bridge
        return self._fit(save_errors=False)  # none yet, or the vocabulary changed since

    def _fit(self, save_errors: bool) -> AnchorBridge:
        captions, sha = load_vocabulary(self.vocabulary)
        bridge = AnchorBridge.fit(self.audio, self.image, captions, sha)
        try:
            bridge.save(self.path)
        except OSError:
            if save_errors:
                raise
            # A read-only models folder (an installed package): the bridge works from memory and is
            # refitted, in seconds, by the next process.
        return bridge


class BridgeProjector:
    """One direction of the bridge, in the shape the query engine routes through (query.embed.Projector)."""

    def __init__(self, provider: BridgeProvider, direction: Direction) -> None:
        self.provider = provider
        self.direction = direction
        audio, image = provider.audio.space, provider.image.space
        self.source: EmbeddingSpace = audio if direction == "audio->image" else image
        self.target: EmbeddingSpace = image if direction == "audio->image" else audio

    def project(self, vectors: np.ndarray) -> np.ndarray:
        return self.provider.get().project(vectors, self.direction)
