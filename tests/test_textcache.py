"""Query text cache and dynamic batching, in front of real tiny OpenCLIP encoders."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from mmsearch.encoders.base import EmbeddingSpace, Encoder
from mmsearch.encoders.openclip import OpenCLIPEncoder
from mmsearch.errors import MMSearchError
from mmsearch.query.embed import embed_part
from mmsearch.query.parts import QueryPart
from mmsearch.query.textcache import TextFront, TextQueueFull, front, fronted
from tests.conftest import make_tiny_model_dir

TEXTS = [f"photo {i}: {w}" for i, w in enumerate(
    "cat dog astronaut beach car mountain river city forest snow desert boat bridge castle flower robot".split())]
SAME = 1e-6  # batched vs alone; different texts differ by far more (checked)


@pytest.fixture(scope="module")
def encoders(tmp_path_factory) -> tuple[OpenCLIPEncoder, OpenCLIPEncoder]:
    root = tmp_path_factory.mktemp("textcache")
    a = OpenCLIPEncoder(str(make_tiny_model_dir(root / "clip-a", seed=0)), None, models_dir=root, offline=True,
                        device="cpu")
    b = OpenCLIPEncoder(str(make_tiny_model_dir(root / "clip-b", seed=1)), None, models_dir=root, offline=True,
                        device="cpu")
    assert a.space.id != b.space.id
    return a, b


class Gated(Encoder):
    """A real encoder whose encode_text can be held busy, to line requests up deterministically."""

    name = "gated-test"
    modalities = frozenset({"text"})

    def __init__(self, inner: Encoder) -> None:
        super().__init__()
        self.inner, self.calls = inner, []
        self.entered, self.release = threading.Event(), threading.Event()
        self.fail: Exception | None = None

    @property
    def space(self) -> EmbeddingSpace:
        return self.inner.space

    def _load(self) -> None: ...

    def _unload(self) -> None: ...

    def encode_text(self, texts):
        self.calls.append(list(texts))
        self.entered.set()
        assert self.release.wait(10)
        if self.fail is not None:
            raise self.fail
        return self.inner.encode_text(texts)


def _wait_for(cond, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.002)


def test_concurrent_threads_each_get_their_own_vector(encoders):
    enc = encoders[0]
    alone = np.stack([enc.encode_text([t])[0] for t in TEXTS])
    gaps = np.linalg.norm(alone[:, None] - alone[None], axis=-1)[~np.eye(len(TEXTS), dtype=bool)]
    assert gaps.min() > 1000 * SAME
    fr = TextFront(enc, window_ms=50)
    start = threading.Barrier(len(TEXTS))

    def one(i: int) -> np.ndarray:
        start.wait()
        return fr.encode_text([TEXTS[i]])

    with ThreadPoolExecutor(len(TEXTS)) as pool:
        got = list(pool.map(one, range(len(TEXTS))))
    for i, vecs in enumerate(got):
        assert vecs.shape == (1, alone.shape[1])
        assert np.abs(vecs[0] - alone[i]).max() <= SAME, TEXTS[i]
    assert fr.batcher.calls < len(TEXTS)  # squeezed: 16 callers, fewer encode calls (1 on a quiet machine)


def test_requests_queued_while_busy_go_in_one_batch_and_the_queue_is_bounded(encoders):
    gated = Gated(encoders[0])
    fr = TextFront(gated, window_ms=0, max_queue=5)
    with ThreadPoolExecutor(8) as pool:
        first = pool.submit(fr.encode_text, ["the first query"])
        assert gated.entered.wait(10)  # the model is busy with the first query
        waiting = [pool.submit(fr.encode_text, [t]) for t in TEXTS[:5]]
        _wait_for(lambda: fr.batcher._waiting == 5)
        with pytest.raises(TextQueueFull, match=r"5 text queries are already waiting for gated-test \(limit 5\)"):
            fr.encode_text(["one too many"])
        gated.release.set()
        results = [f.result(10) for f in waiting]
        first.result(10)
    assert gated.calls == [["the first query"], TEXTS[:5]]  # the next batch took everything that waited
    for t, vecs in zip(TEXTS[:5], results):
        assert np.abs(vecs[0] - encoders[0].encode_text([t])[0]).max() <= SAME


def test_encoder_errors_reach_every_waiting_caller(encoders):
    gated = Gated(encoders[0])
    gated.fail = MMSearchError("weights vanished")
    gated.release.set()
    fr = TextFront(gated, window_ms=30)
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(fr.encode_text, [t]) for t in TEXTS[:3]]
        for f in futures:
            with pytest.raises(MMSearchError, match="weights vanished"):
                f.result(10)
    assert len(fr.cache) == 0  # nothing wrong is cached
    gated.fail = None
    assert np.abs(fr.encode_text([TEXTS[0]])[0] - encoders[0].encode_text([TEXTS[0]])[0]).max() <= SAME


def test_two_spaces_never_mix(encoders):
    a, b = encoders
    fa, fb = fronted([a, b], window_ms=20)
    text = "the same words in two spaces"
    start = threading.Barrier(8)

    def one(i: int) -> tuple[int, np.ndarray]:
        start.wait()
        fr = fa if i % 2 == 0 else fb
        return i, fr.encode_text([text, TEXTS[i]])

    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(one, range(8)))
    for i, vecs in got:
        own = a if i % 2 == 0 else b
        np.testing.assert_allclose(vecs, own.encode_text([text, TEXTS[i]]), atol=SAME, rtol=0)
    assert np.abs(a.encode_text([text]) - b.encode_text([text])).max() > 0.01  # the spaces do differ
    keys_a = {k for k in fa.cache._items}
    assert keys_a and all(space == a.space.id for space, _ in keys_a)
    assert all(space == b.space.id for space, _ in fb.cache._items)


def test_cache_hits_are_equal_copies_callers_cannot_spoil(encoders):
    enc = encoders[0]
    fr = TextFront(enc)
    first = fr.encode_text(["a red bicycle", "a red bicycle", "a blue boat"])
    assert np.array_equal(first[0], first[1]) and fr.batcher.calls == 1
    calls = fr.batcher.calls
    again = fr.encode_text(["a blue boat", "a red bicycle"])
    assert fr.batcher.calls == calls  # both from the cache
    assert np.array_equal(again, first[[2, 0]])
    again[:] = 0.0  # callers own what they get
    first[:] = 0.0
    third = fr.encode_text(["a red bicycle"])
    assert np.abs(third[0] - enc.encode_text(["a red bicycle"])[0]).max() <= SAME
    cached = fr.cache.get(enc.space.id, "a red bicycle")
    assert cached is not None and not cached.flags.writeable


def test_cache_is_bounded_lru(encoders):
    fr = TextFront(encoders[0], cache_size=2)
    fr.encode_text(["one"])
    fr.encode_text(["two"])
    fr.encode_text(["one"])  # "one" is now the most recent
    fr.encode_text(["three"])  # evicts "two"
    space = encoders[0].space.id
    assert len(fr.cache) == 2 and fr.cache.get(space, "two") is None and fr.cache.get(space, "one") is not None


def test_front_stands_in_for_the_encoder(encoders, tmp_path):
    enc = encoders[0]
    fr = front(enc)
    assert front(enc) is fr and front(fr) is fr  # one front per encoder: one cache, one worker
    assert fr.space == enc.space and fr.name == enc.name and fr.supports("image") and fr.supports("text")
    part = QueryPart("text", "a lighthouse at dusk")
    np.testing.assert_allclose(embed_part(fr, part), embed_part(enc, part), atol=SAME, rtol=0)
    from PIL import Image

    img = Image.new("RGB", (40, 30), (200, 30, 30))
    np.testing.assert_array_equal(fr.encode_images([fr.preprocess_image(img)]),
                                  enc.encode_images([enc.preprocess_image(img)]))
    assert fr.torch_model is enc.torch_model  # anything else is the encoder's own


def test_bad_settings_are_refused(encoders):
    with pytest.raises(ValueError, match="max_queue"):
        TextFront(encoders[0], max_queue=0)


class Counting(Encoder):
    """A text tower of the inner encoder's space that counts what it is asked (stands for the ONNX export)."""

    modalities = frozenset({"text"})
    name = "counting"

    def __init__(self, inner: Encoder) -> None:
        super().__init__()
        self.inner, self.asked = inner, []

    @property
    def space(self) -> EmbeddingSpace:
        return self.inner.space

    def _load(self) -> None: ...

    def _unload(self) -> None: ...

    def encode_text(self, texts):
        self.asked.append(list(texts))
        return self.inner.encode_text(texts)


def test_text_goes_to_the_faster_tower_of_the_same_space_only(encoders):
    a, b = encoders
    tower = Counting(a)
    fr = TextFront(a, tower=lambda inner: tower)
    got = fr.encode_text(["a red bicycle", "a blue boat"])
    assert tower.asked == [["a red bicycle", "a blue boat"]]
    np.testing.assert_allclose(got, a.encode_text(["a red bicycle", "a blue boat"]), atol=SAME, rtol=0)
    wrong = Counting(b)  # another space's tower must never answer for this encoder
    fa = TextFront(a, tower=lambda inner: wrong)
    vec = fa.encode_text(["a red bicycle"])
    assert wrong.asked == [] and fa.text_tower() is None
    np.testing.assert_allclose(vec, a.encode_text(["a red bicycle"]), atol=SAME, rtol=0)
