"""Indexing sound files: one pooled vector per file, from overlapping windows of the whole recording.

Worker threads only hash and probe a file (cheap, any length). Decoding is streamed window by window in
the indexer's thread, each window's log-mel features are computed in the worker threads, and windows of
many short files share model batches. At most `depth` windows are in flight, so an hour-long file costs
the memory of a few windows, not of the decoded hour.
"""

from __future__ import annotations

from concurrent.futures import Executor
from contextlib import closing
from typing import Any, Iterator

import numpy as np

from mmsearch.encoders.base import Encoder
from mmsearch.encoders.pooling import pool_windows
from mmsearch.errors import BadMedia
from mmsearch.ingest.pipelines import MediaPipeline, Prepared, hash_file
from mmsearch.ingest.prefetch import prefetched
from mmsearch.media.audio import Window, probe, stream_windows, supported_extensions
from mmsearch.media.files import FileEntry


class AudioPipeline(MediaPipeline):
    modality = "audio"
    optional = True  # a photo library with a stray .wav must index without the CLAP weights
    reused_columns = ("vector", "offset_s")

    def __init__(self, encoder: Encoder, overlap: float = 0.25, batch_size: int = 8, workers: int = 2) -> None:
        super().__init__(encoder)
        if not 0.0 <= overlap < 1.0:
            raise ValueError(f"window overlap must be in [0, 1), got {overlap}")
        self.overlap = overlap  # of consecutive windows: 0.25 -> 10 s windows every 7.5 s
        self.batch_size = batch_size
        self.depth = max(batch_size * 2, workers * 2)  # windows featurised ahead of the model

    def extensions(self) -> frozenset[str]:
        return supported_extensions()

    def prefetch(self, batch_size: int, workers: int) -> int:
        return workers * 2  # probing is cheap; the windows are what needs bounding

    def work(self, item: Prepared) -> float:
        """Windows to embed (a reused file costs one, like an image)."""
        if item.payload is None:
            return 1.0
        window_s = self.encoder.audio_window_s()
        hop_s = window_s * (1.0 - self.overlap)
        return 1.0 + max(0.0, float(item.fields["duration_s"]) - window_s) / hop_s

    def prepare(self, entry: FileEntry, known: set[str]) -> Prepared:
        info = probe(entry.path)  # first: a broken file is skipped before it is hashed
        digest = hash_file(entry.path)
        fields = {"duration_s": info.duration_s, "sample_rate": info.sample_rate, "channels": info.channels,
                  "format": info.format}
        return Prepared(entry, digest, fields, payload=None if digest in known else info)

    def embed(self, items: list[Prepared], pool: Executor) -> list[dict | BadMedia]:
        window_s = self.encoder.audio_window_s()
        hop_s = window_s * (1.0 - self.overlap)
        rate = self.encoder.audio_rate()
        failed: dict[int, BadMedia] = {}

        def windows() -> Iterator[tuple[int, Window]]:
            for n, item in enumerate(items):
                try:
                    for window in stream_windows(item.entry.path, rate, window_s, hop_s):
                        yield n, window
                except BadMedia as bad:
                    failed[n] = bad

        def featurise(job: tuple[int, Window]) -> tuple[int, float, Any]:
            n, window = job
            try:
                return n, window.offset_s, self.encoder.preprocess_audio(window.samples)
            except Exception as exc:  # noqa: BLE001 - one odd window skips its file, not the run
                return n, window.offset_s, BadMedia(items[n].entry.path, f"cannot compute audio features ({exc})")

        vectors: list[list[np.ndarray]] = [[] for _ in items]
        offsets: list[list[float]] = [[] for _ in items]
        batch: list[tuple[int, float, Any]] = []
        with closing(prefetched(pool, featurise, windows(), self.depth)) as futures:
            for fut in futures:
                n, offset, features = fut.result()
                if isinstance(features, BadMedia):
                    failed.setdefault(n, features)
                    continue
                batch.append((n, offset, features))
                if len(batch) >= self.batch_size:
                    self._encode(batch, vectors, offsets)
                    batch = []
        if batch:
            self._encode(batch, vectors, offsets)
        return [failed.get(n) or self._pooled(item, vectors[n], offsets[n]) for n, item in enumerate(items)]

    def _encode(self, batch: list[tuple[int, float, Any]], vectors: list, offsets: list) -> None:
        for (n, offset, _), vec in zip(batch, self.encoder.encode_audio([f for _, _, f in batch])):
            vectors[n].append(vec)
            offsets[n].append(offset)

    @staticmethod
    def _pooled(item: Prepared, vectors: list[np.ndarray], offsets: list[float]) -> dict | BadMedia:
        if not vectors:
            return BadMedia(item.entry.path, "no audio samples could be decoded")
        vector, best = pool_windows(np.stack(vectors), offsets)
        return {"vector": vector, "offset_s": best}
