"""One vector for a clip embedded in windows, and the window that best stands for it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from mmsearch.encoders.base import Encoder, l2_normalize
from mmsearch.errors import BadMedia, BadQuery
from mmsearch.media.audio import Window, array_windows, stream_windows


def pool_windows(vectors: np.ndarray, offsets: Sequence[float]) -> tuple[np.ndarray, float]:
    """Mean of the normalised window vectors, renormalised, and the offset of the window closest to it.

    The mean keeps every part of a long recording searchable (a max would let one loud second speak for
    an hour); the closest window is where playback should start, the most typical part of the file.
    """
    if len(vectors) == 0 or len(vectors) != len(offsets):
        raise ValueError(f"need one offset per window vector, got {len(vectors)} vectors, {len(offsets)} offsets")
    unit = l2_normalize(np.asarray(vectors, np.float32))
    pooled = l2_normalize(unit.mean(axis=0, keepdims=True))[0]
    return pooled, float(offsets[int(np.argmax(unit @ pooled))])


def embed_clip(encoder: Encoder, windows: Iterable[Window], batch_size: int = 8,
               name: str = "<clip>") -> tuple[np.ndarray, float]:
    """Embed a clip window by window (a query, or anything else outside the indexer) and pool it."""
    vectors, offsets, batch = [], [], []
    for window in windows:
        batch.append(encoder.preprocess_audio(window.samples))
        offsets.append(window.offset_s)
        if len(batch) >= batch_size:
            vectors.append(encoder.encode_audio(batch))
            batch = []
    if batch:
        vectors.append(encoder.encode_audio(batch))
    if not vectors:
        raise BadMedia(name, "no audio samples")
    return pool_windows(np.concatenate(vectors), offsets)


def embed_query_clip(encoder: Encoder, clip: Any, overlap: float = 0.25, max_s: float = 60.0) -> np.ndarray:
    """A query sound -> one pooled vector. clip: a path, or (rate, samples) / (samples, rate) as
    recorded in memory (Gradio gives the former). Only the first `max_s` seconds are used."""
    window_s, rate = encoder.audio_window_s(), encoder.audio_rate()
    hop_s = window_s * (1.0 - overlap)
    if isinstance(clip, (str, Path)):
        name, windows = str(clip), stream_windows(clip, rate, window_s, hop_s, max_s)
    elif isinstance(clip, (tuple, list)) and len(clip) == 2:
        sr, samples = clip if np.isscalar(clip[0]) else clip[::-1]
        name, windows = "the recording", array_windows(np.asarray(samples), int(sr), rate, window_s, hop_s, max_s)
    else:
        raise BadQuery(f"a query sound must be a file path or (rate, samples), not {type(clip).__name__}")
    try:
        return embed_clip(encoder, windows, name=name)[0]
    except BadMedia as bad:
        raise BadQuery(f"query sound {name}: {bad.reason}") from None
