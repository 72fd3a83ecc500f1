"""The ONNX Runtime backend for the OpenCLIP image tower: export once, verify against torch, cache, int8."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from mmsearch.encoders.onnx_backend import TOLERANCE
from mmsearch.encoders.openclip import OpenCLIPEncoder
from mmsearch.errors import MMSearchError
from mmsearch.service import MMSearch

pytest.importorskip("onnxruntime")


@pytest.fixture
def model_dir(tiny_model_dir, tmp_path):
    return shutil.copytree(tiny_model_dir, tmp_path / "tiny-clip")


def _enc(folder, backend: str) -> OpenCLIPEncoder:
    return OpenCLIPEncoder(str(folder), None, offline=True, device="cpu", precision="fp32", backend=backend)


def test_export_is_verified_cached_by_weights_hash_and_matches_torch(model_dir):
    torch_enc, onnx_enc = _enc(model_dir, "torch"), _enc(model_dir, "onnx")
    x = [torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(i)) for i in range(5)]
    np.testing.assert_allclose(onnx_enc.encode_images(x), torch_enc.encode_images(x), atol=TOLERANCE)
    exports = sorted((model_dir / "onnx").glob("*.onnx"))
    assert [p.name for p in exports] == [f"tiny-clip-{onnx_enc.source.label.split(':')[1]}-image.onnx"]
    assert json.loads(exports[0].with_suffix(".json").read_text())["max_abs_diff"] <= TOLERANCE
    stamp = exports[0].stat().st_mtime_ns
    again = _enc(model_dir, "onnx")
    np.testing.assert_allclose(again.encode_images(x[:2]), torch_enc.encode_images(x[:2]), atol=TOLERANCE)
    assert exports[0].stat().st_mtime_ns == stamp  # loaded from the cache, not exported again
    assert onnx_enc.encode_text(["a dog"]).shape == (1, 64)  # text stays on torch


def test_int8_image_tower_stays_close_to_fp32(model_dir):
    fp32, int8 = _enc(model_dir, "torch"), _enc(model_dir, "onnx-int8")
    x = [torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(i)) for i in range(4)]
    cos = np.sum(fp32.encode_images(x) * int8.encode_images(x), axis=1)
    assert cos.min() > 0.95
    assert any((model_dir / "onnx").glob("*-image-int8.onnx"))
    assert int8.space == fp32.space  # same space: text queries (torch) search int8-indexed images


def test_int8_is_refused_where_it_loses(tmp_path):
    from tests import zoo_support as zs

    folder = zs.save_open_clip(tmp_path / "tiny-mobileclip", zs.mobileclip_cfg())
    with pytest.raises(MMSearchError, match="use --backend onnx"):
        _enc(folder, "onnx-int8").load()


def test_onnx_backend_is_cpu_only_and_fp32(model_dir):
    with pytest.raises(MMSearchError, match="precision"):
        OpenCLIPEncoder(str(model_dir), None, offline=True, device="cpu", precision="fp16", backend="onnx")
    with pytest.raises(MMSearchError, match="backend"):
        OpenCLIPEncoder(str(model_dir), None, offline=True, device="cpu", backend="tensorrt")


def test_library_indexed_through_onnx_is_searched_end_to_end(settings, photo_dir, model_dir):
    svc = MMSearch(settings.model_copy(update={"model": str(model_dir), "backend": "onnx", "audio": False}))
    assert svc.index([photo_dir]).embedded == 7
    first = str(photo_dir / "img0.jpg")
    assert svc.search_image(first, k=1)[0].path == first
    assert len(svc.search_text("sunset", k=3)) == 3
