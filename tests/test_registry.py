from __future__ import annotations

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

    @property
    def space(self) -> EmbeddingSpace:
        return EmbeddingSpace(self.name, "fake", "none", self.dim)

    def _load(self) -> None:
        self.loads += 1

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
    from concurrent.futures import ThreadPoolExecutor

    enc = create_encoder(fake_name, dim=4)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: enc.encode_text(["q"]), range(32)))
    assert enc.loads == 1


def test_space_id_is_a_safe_table_suffix():
    space = EmbeddingSpace("open-clip", "ViT-B-32", "laion2b_s34b_b79k", 512)
    assert space.id == "open_clip_vit_b_32_laion2b_s34b_b79k"
    assert EmbeddingSpace.from_metadata(space.metadata()) == space
