"""Query text embeddings: an LRU cache per embedding space and dynamic batching of concurrent queries.

Many people searching at once each ask the text tower for one short string. `TextFront` sits in front of an
encoder's `encode_text`: a string seen before is answered from an LRU cache keyed by (space id, text), and
the strings that miss are queued for one worker per encoder. The worker follows the pattern of embedding
servers such as Infinity: while the model is busy, requests wait; the next batch takes everything that is
waiting (after a short collection window when the model was idle), runs one `encode_text` call and hands
each caller its own rows. The queue is bounded, as text-embeddings-inference bounds its queue: past the
limit a caller gets `TextQueueFull` at once instead of an ever longer wait.

Everything else the encoder does (images, audio, composed queries, loading) passes straight through, so a
`TextFront` can stand wherever the encoder stood: `fronted(encoders)` gives each encoder its one front.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from mmsearch.encoders.base import EmbeddingSpace, Encoder
from mmsearch.errors import MMSearchError

CACHE_SIZE = 4096  # query strings per space (2 KB each at 512-d)
WINDOW_MS = 3.0  # how long an idle worker waits for company before encoding a lone query
MAX_BATCH = 64  # texts per encode_text call
MAX_QUEUE = 256  # texts waiting; more are refused
IDLE_S = 30.0  # a worker with nothing to do for this long exits (a new one starts on the next query)
TOWER_RELOOK_S = 60.0  # how often a front without a faster text tower looks for one again


class TextQueueFull(MMSearchError):
    """Too many text queries are waiting for one encoder; the caller should try again shortly (HTTP 429)."""


class TextCache:
    """A thread-safe LRU of read-only vectors keyed by (space id, text)."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        if size < 0:
            raise ValueError(f"cache size must be >= 0, got {size}")
        self.size = size
        self._items: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, space_id: str, text: str) -> np.ndarray | None:
        with self._lock:
            vec = self._items.get((space_id, text))
            if vec is None:
                self.misses += 1
                return None
            self._items.move_to_end((space_id, text))
            self.hits += 1
            return vec

    def put(self, space_id: str, text: str, vec: np.ndarray) -> None:
        if self.size == 0:
            return
        frozen = np.array(vec, dtype=np.float32, copy=True)
        frozen.flags.writeable = False  # rows handed out are copies; this one must never change
        with self._lock:
            self._items[(space_id, text)] = frozen
            self._items.move_to_end((space_id, text))
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class _Request:
    texts: list[str]
    done: threading.Event = field(default_factory=threading.Event)
    result: np.ndarray | None = None
    error: BaseException | None = None


class TextBatcher:
    """One worker that squeezes concurrent encode calls into one call of `encode` per batch."""

    def __init__(self, encode: Callable[[list[str]], np.ndarray], label: str, window_ms: float = WINDOW_MS,
                 max_batch: int = MAX_BATCH, max_queue: int = MAX_QUEUE, idle_s: float = IDLE_S) -> None:
        if window_ms < 0 or max_batch < 1 or max_queue < 1:
            raise ValueError(f"bad batching settings: window_ms={window_ms}, max_batch={max_batch}, "
                             f"max_queue={max_queue} (need window_ms >= 0, max_batch >= 1, max_queue >= 1)")
        self._encode, self.label = encode, label
        self.window_s, self.max_batch, self.max_queue, self.idle_s = window_ms / 1000, max_batch, max_queue, idle_s
        self._queue: list[_Request] = []
        self._waiting = 0  # texts in the queue
        self._cv = threading.Condition()
        self._worker: threading.Thread | None = None
        self.calls = 0  # encode calls made, for tests and benchmarks

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        req = _Request(list(texts))
        with self._cv:
            if self._waiting and self._waiting + len(req.texts) > self.max_queue:
                raise TextQueueFull(
                    f"{self._waiting} text queries are already waiting for {self.label} (limit {self.max_queue}); "
                    f"try again in a moment")
            self._queue.append(req)
            self._waiting += len(req.texts)
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name=f"mmsearch-text-{self.label}", daemon=True)
                self._worker.start()
            self._cv.notify()
        req.done.wait()
        if req.error is not None:
            raise req.error
        assert req.result is not None
        return req.result

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._serve(batch)

    def _next_batch(self) -> list[_Request] | None:
        with self._cv:
            if not self._queue and not self._cv.wait_for(lambda: bool(self._queue), timeout=self.idle_s):
                self._worker = None  # idle: exit; the next query starts a new worker
                return None
            deadline = time.monotonic() + self.window_s
            while self._waiting < self.max_batch and (left := deadline - time.monotonic()) > 0:
                self._cv.wait(left)
            batch, size = [], 0
            while self._queue and (not batch or size + len(self._queue[0].texts) <= self.max_batch):
                req = self._queue.pop(0)
                batch.append(req)
                size += len(req.texts)
            self._waiting -= size
            return batch

    def _serve(self, batch: list[_Request]) -> None:
        unique = list(dict.fromkeys(t for req in batch for t in req.texts))
        try:
            self.calls += 1
            vecs = np.asarray(self._encode(unique), dtype=np.float32)
            row = {t: i for i, t in enumerate(unique)}
            for req in batch:
                req.result = vecs[[row[t] for t in req.texts]]  # fancy indexing: each caller owns a copy
        except BaseException as exc:  # noqa: BLE001 - every waiting caller gets the encoder's own error
            for req in batch:
                req.error = exc
        finally:
            for req in batch:
                req.done.set()


class TextFront(Encoder):
    """The encoder, with its text side behind a per-space cache and a dynamic batcher."""

    def __init__(self, inner: Encoder, cache_size: int = CACHE_SIZE, window_ms: float = WINDOW_MS,
                 max_batch: int = MAX_BATCH, max_queue: int = MAX_QUEUE,
                 tower: Callable[[Encoder], Encoder | None] | None = None) -> None:
        """tower(inner): a faster text-only encoder of the same space (the exported ONNX text tower, 3x
        faster than torch on a CPU, identical to 1e-6), or None; looked up on the first text query and
        again at most every TOWER_RELOOK_S while there is none (an index run may export it later)."""
        super().__init__()
        self.inner = inner
        self.name = inner.name  # type: ignore[misc] - per instance: the encoder's own registry name
        self.modalities = inner.modalities  # type: ignore[misc]
        self.cache = TextCache(cache_size)
        self.batcher = TextBatcher(self._encode_batch, inner.name, window_ms, max_batch, max_queue)
        self._space_id: str | None = None
        self._find_tower = tower
        self._tower: Encoder | None = None
        self._tower_looked = -TOWER_RELOOK_S

    def __getattr__(self, name: str) -> Any:  # encode_composed, encode_audio_query, torch_model, ...
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"TextFront({self.inner!r})"

    # -- the text side --------------------------------------------------------------------------
    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        texts = [str(t) for t in texts]
        if not texts:
            return self.inner.encode_text(texts)
        space = self._space()
        found = {t: v for t in dict.fromkeys(texts) if (v := self.cache.get(space, t)) is not None}
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            for t, vec in zip(missing, self.batcher.encode(missing)):
                self.cache.put(space, t, vec)
                found[t] = vec
        return np.stack([found[t] for t in texts]).astype(np.float32, copy=False)  # a fresh, writable array

    def _space(self) -> str:
        if self._space_id is None:
            self._space_id = self.inner.space.id
        return self._space_id

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        """One batch, on the worker thread: the faster tower when there is one, else the encoder itself."""
        return (self.text_tower() or self.inner).encode_text(texts)

    def text_tower(self) -> Encoder | None:
        if self._tower is None and self._find_tower is not None \
                and time.monotonic() - self._tower_looked >= TOWER_RELOOK_S:
            self._tower_looked = time.monotonic()
            try:
                found = self._find_tower(self.inner)
            except MMSearchError:
                found = None
            # Never another space's vectors: a tower answers only for exactly the encoder's space.
            self._tower = found if found is not None and found.space.id == self._space() else None
        return self._tower

    # -- everything else passes through ---------------------------------------------------------
    @property
    def space(self) -> EmbeddingSpace:
        return self.inner.space

    def _load(self) -> None:
        self.inner.load()

    def _unload(self) -> None:
        self.inner.unload()

    def load(self) -> None:
        self.inner.load()

    def unload(self) -> None:
        self.inner.unload()

    @property
    def loaded(self) -> bool:
        return self.inner.loaded

    def supports(self, modality: Any) -> bool:
        return self.inner.supports(modality)

    def preprocess_image(self, image: Any) -> Any:
        return self.inner.preprocess_image(image)

    def encode_images(self, batch: Sequence[Any]) -> np.ndarray:
        return self.inner.encode_images(batch)

    def image_draft_size(self) -> int | None:
        return self.inner.image_draft_size()

    def audio_rate(self) -> int:
        return self.inner.audio_rate()

    def audio_window_s(self) -> float:
        return self.inner.audio_window_s()

    def preprocess_audio(self, samples: np.ndarray) -> Any:
        return self.inner.preprocess_audio(samples)

    def encode_audio(self, batch: Sequence[Any]) -> np.ndarray:
        return self.inner.encode_audio(batch)

    def logit_scale(self) -> float:
        return self.inner.logit_scale()


_FRONTS_LOCK = threading.Lock()


def front(encoder: Encoder, **options: Any) -> Encoder:
    """The encoder's one TextFront per tower finder (made on first use, other options then fixed); non-text
    encoders as they are."""
    if isinstance(encoder, TextFront) or not encoder.supports("text"):
        return encoder
    with _FRONTS_LOCK:
        # Kept on the encoder: lives and dies with it, one cache and one worker per encoder and tower finder
        # (two services sharing an encoder with different text backends each get their own).
        fronts = encoder.__dict__.setdefault("_text_fronts", {})
        key = options.get("tower")
        found = fronts.get(key)
        if found is None:
            found = fronts[key] = TextFront(encoder, **options)
        return found


def fronted(encoders: Sequence[Encoder], **options: Any) -> list[Encoder]:
    """Each encoder behind its own cache and batcher, for handing to the QueryEngine."""
    return [front(e, **options) for e in encoders]
