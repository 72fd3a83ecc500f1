"""The OpenCLIP loader, exercised with tiny random-weight models saved like real weights."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch

from mmsearch.encoders.openclip import OpenCLIPEncoder
from mmsearch.encoders.weights import resolve_weights
from mmsearch.errors import UnknownModel, UnsafeWeights, WeightsNotFound
from tests.conftest import TINY_CFG


@pytest.fixture(scope="module")
def tiny_builtin(tmp_path_factory) -> str:
    """Register the tiny architecture as a named config, like a built-in one."""
    cfg_dir = tmp_path_factory.mktemp("cfg")
    (cfg_dir / "mmsearch-tiny-test.json").write_text(json.dumps(TINY_CFG["model_cfg"]))
    open_clip.add_model_config(cfg_dir / "mmsearch-tiny-test.json")
    return "mmsearch-tiny-test"


def _encoder(model: str, pretrained: str | None, models_dir: Path, offline: bool = True) -> OpenCLIPEncoder:
    return OpenCLIPEncoder(model, pretrained, models_dir=models_dir, offline=offline, device="cpu")


def test_local_folder_loads_the_saved_weights(tiny_model_dir, tmp_path):
    enc = _encoder(str(tiny_model_dir), None, tmp_path)
    assert enc.space.dim == 64 and not enc.loaded  # dimension from config, no weights loaded
    enc.load()
    from safetensors.torch import load_file

    saved = load_file(str(tiny_model_dir / "open_clip_model.safetensors"))
    live = enc._model.state_dict()
    assert all(torch.equal(saved[k], live[k]) for k in saved)
    vecs = enc.encode_text(["a dog on a beach", "a red car"])
    assert vecs.shape == (2, 64)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, rtol=1e-5)


def test_space_records_the_weights_checksum(tiny_model_dir, tmp_path):
    space = _encoder(str(tiny_model_dir), None, tmp_path).space
    assert space.weights.startswith("tiny-clip-sha256:")
    other = tmp_path / "tiny-clip"
    from tests.conftest import make_tiny_model_dir

    make_tiny_model_dir(other, seed=1)
    assert _encoder(str(other), None, tmp_path).space.id != space.id  # other weights, other space


def test_folder_under_models_dir_is_found_by_name(tiny_model_dir, tmp_path):
    shutil.copytree(tiny_model_dir, tmp_path / "models" / "my-clip")
    enc = _encoder("my-clip", None, tmp_path / "models")
    assert enc.source.open_clip_name == f"local-dir:{(tmp_path / 'models' / 'my-clip').resolve()}"
    assert enc.encode_text(["x"]).shape == (1, 64)


def test_weights_file_for_a_builtin_architecture(tiny_builtin, tiny_model_dir, tmp_path):
    weights = tiny_model_dir / "open_clip_model.safetensors"
    enc = _encoder(tiny_builtin, str(weights), tmp_path)
    assert enc.source.local_file == weights.resolve()
    assert enc.encode_text(["x"]).shape == (1, 64)
    # The same file in models/<model>/<tag>/ is found by tag.
    target = tmp_path / "models" / tiny_builtin / "mytag"
    target.mkdir(parents=True)
    shutil.copy(weights, target / "open_clip_model.safetensors")
    enc2 = _encoder(tiny_builtin, "mytag", tmp_path / "models")
    assert enc2.source.local_file == target / "open_clip_model.safetensors"
    np.testing.assert_allclose(enc2.encode_text(["x"]), enc.encode_text(["x"]), rtol=1e-5, atol=1e-6)


def test_pickled_objects_in_a_checkpoint_are_refused(tiny_builtin, tmp_path):
    bad = tmp_path / "evil.bin"
    torch.save({"state_dict": {"x": torch.zeros(1)}, "payload": Path("/etc/passwd")}, bad)
    with pytest.raises(UnsafeWeights, match="evil.bin"):
        _encoder(tiny_builtin, str(bad), tmp_path).load()


def test_missing_weights_offline_fail_fast_with_instructions(tmp_path):
    started = time.perf_counter()
    with pytest.raises(WeightsNotFound) as err:
        _encoder("ViT-B-32", "laion2b_s34b_b79k", tmp_path / "models").load()
    assert time.perf_counter() - started < 10
    msg = str(err.value)
    assert "laion/CLIP-ViT-B-32-laion2B-s34B-b79K" in msg
    assert str(tmp_path / "models" / "ViT-B-32" / "laion2b_s34b_b79k") in msg


def test_unknown_model_and_tag_suggest_fixes(tmp_path):
    with pytest.raises(UnknownModel, match="Did you mean.*ViT-B-32"):
        resolve_weights("ViT-B-33", "x", tmp_path, None, True)
    with pytest.raises(UnknownModel, match="laion2b_s34b_b79k"):
        resolve_weights("ViT-B-32", "no-such-tag", tmp_path, None, True)


def test_folder_without_weights_says_what_to_copy(tmp_path):
    folder = tmp_path / "empty-clip"
    folder.mkdir()
    (folder / "open_clip_config.json").write_text(json.dumps(TINY_CFG))
    with pytest.raises(WeightsNotFound, match="open_clip_model.safetensors"):
        _encoder(str(folder), None, tmp_path).space


def test_random_weights_of_a_real_architecture_need_no_download(tmp_path):
    enc = _encoder("ViT-B-32", "random", tmp_path)
    assert enc.space.dim == 512 and enc.space.weights == "random-init"
