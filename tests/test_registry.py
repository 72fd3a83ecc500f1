from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from mmsearch.encoders import EmbeddingSpace, Encoder, create_encoder, encoder_names, register
from mmsearch.encoders.registry import unregister
from mmsearch.errors import UnknownModel


class _Fake(Encoder):
    modalities = frozenset({"text"})

    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        self.dim = int(dim)
        self.loads = 0
        self.load_seconds = 0.0

    @property
    def space(self) -> EmbeddingSpace:
        return EmbeddingSpace(self.name, "fake", "none", self.dim)

    def _load(self) -> None:
        self.loads += 1
        time.sleep(self.load_seconds)  # a real load takes seconds: other threads arrive while it runs

    def _unload(self) -> None:
        pass

    def encode_text(self, texts):
        self.load()
        return np.ones((len(texts), self.dim), np.float32)


@pytest.fixture
def fake_name():
    register("fake-test")(_Fake)
    yield "fake-test"
    unregister("fake-test")


def test_builtin_open_clip_is_registered():
    assert "open-clip" in encoder_names()


def test_duplicate_name_is_refused(fake_name):
    with pytest.raises(ValueError, match="already registered"):
        register(fake_name)(_Fake)


def test_unknown_encoder_names_the_known_ones():
    with pytest.raises(UnknownModel, match="open-clip"):
        create_encoder("no-such-encoder")


def test_instances_are_cached_by_options_and_load_once(fake_name):
    a = create_encoder(fake_name, dim=8)
    assert create_encoder(fake_name, dim=8) is a
    assert create_encoder(fake_name, dim=16) is not a
    assert not a.loaded
    a.encode_text(["x"])
    a.encode_text(["y"])
    assert a.loads == 1 and a.loaded
    a.unload()
    assert not a.loaded


def test_concurrent_first_use_loads_once(fake_name):
    enc = create_encoder(fake_name, dim=4)
    enc.load_seconds = 0.2
    start = threading.Barrier(8)
    results = []

    def first_use():
        start.wait(5)  # all eight threads ask for the model at the same moment, before it is loaded
        results.append(enc.encode_text(["q"]).shape)

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads)
    assert results == [(1, 4)] * 8
    assert enc.loads == 1


def test_space_id_is_a_safe_table_suffix():
    space = EmbeddingSpace("open-clip", "ViT-B-32", "laion2b_s34b_b79k", 512)
    assert space.id == "open_clip_vit_b_32_laion2b_s34b_b79k"
    assert EmbeddingSpace.from_metadata(space.metadata()) == space
