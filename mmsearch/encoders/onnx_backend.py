"""ONNX Runtime for the OpenCLIP image tower on CPUs, optionally with dynamic int8 weights.

The tower is exported once and cached next to its weights under a name keyed by model and weights hash
(onnx/<model>-<sha256[:16]>-image.onnx). Every fresh export is checked against torch on a random batch:
the normalised vectors must agree within 1e-4, or the export is deleted and loading fails. The int8 file is
made from the checked fp32 export by ONNX Runtime's dynamic quantiser; it is an approximation by design,
so bench/bench_encoders.py reports how many search results it keeps against fp32.

The text tower is exported separately, next to these files, for the torch-free query path
(mmsearch.encoders.onnx_text_export, read back by mmsearch.encoders.onnx_text).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from mmsearch.encoders.weights import weights_sha256
from mmsearch.errors import MMSearchError

if TYPE_CHECKING:
    from mmsearch.encoders.openclip import OpenCLIPEncoder

TOLERANCE = 1e-4
_EXPORT_LOCK = threading.Lock()


class OnnxExportFailed(MMSearchError):
    pass


def require_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise MMSearchError("the onnx backends need ONNX Runtime: pip install 'mmsearch[onnx]'") from None
    return onnxruntime


class OnnxTower:
    """One exported tower in an ONNX Runtime CPU session."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        ort = require_onnxruntime()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or torch.get_num_threads()
        opts.log_severity_level = 3
        self.path = path
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input: np.ascontiguousarray(pixels, np.float32)})[0]


class _ImageTower(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(pixels)


def image_tower(encoder: "OpenCLIPEncoder", int8: bool = False) -> OnnxTower:
    """The encoder's image tower in ONNX Runtime: exported and verified once, then loaded from the cache."""
    require_onnxruntime()
    model, size = encoder._model, encoder.image_size()
    if next(model.parameters()).dtype != torch.float32:
        raise MMSearchError("the onnx backends export the fp32 model; use --precision fp32 (or auto) on a CPU")
    folder, key = export_location(encoder)
    fp32 = folder / f"{key}-image.onnx"
    with _EXPORT_LOCK:
        if not fp32.is_file():
            export_image_tower(model, size, fp32)
        if not int8:
            return OnnxTower(fp32)
        quantized = folder / f"{key}-image-int8.onnx"
        if not quantized.is_file():
            quantize_int8(fp32, quantized)
        return OnnxTower(quantized)


def export_location(encoder: "OpenCLIPEncoder") -> tuple[Path, str]:
    """(folder, file key): beside local weights, in models_dir/onnx for hub-cache files, a temp dir for random ones."""
    src = encoder.source
    model = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(encoder.model_name).name)
    if src.local_file is None:  # random init: different weights every load, so a scratch folder per encoder
        if getattr(encoder, "_onnx_scratch", None) is None:
            encoder._onnx_scratch = Path(tempfile.mkdtemp(prefix="mmsearch-onnx-"))
        return encoder._onnx_scratch, f"{model}-random"
    key = f"{model}-{weights_sha256(src.local_file)[:16]}"
    beside = src.local_file.parent / "onnx"
    in_hub_cache = "snapshots" in src.local_file.parts
    folder = encoder.models_dir / "onnx" if in_hub_cache or not os.access(src.local_file.parent, os.W_OK) else beside
    folder.mkdir(parents=True, exist_ok=True)
    return folder, key


def export_image_tower(model: torch.nn.Module, size: int, path: Path) -> None:
    """Export with a dynamic batch axis, then check the export against torch before keeping it."""
    tower = _ImageTower(model).eval()
    example = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    tmp = path.with_suffix(".tmp.onnx")
    try:
        _export(tower, example, tmp)
        diff = max_difference(tower, OnnxTower(tmp), example)
        if not diff <= TOLERANCE:
            raise OnnxExportFailed(
                f"the ONNX export of the image tower differs from torch by {diff:.2e} (> {TOLERANCE}); "
                f"use --backend torch for this model")
        os.replace(tmp, path)
        path.with_suffix(".json").write_text(json.dumps({"max_abs_diff": diff, "tolerance": TOLERANCE}))
    finally:
        tmp.unlink(missing_ok=True)


def _export(tower: torch.nn.Module, example: torch.Tensor, path: Path) -> None:
    import warnings

    # Grad mode on: under no_grad nn.MultiheadAttention takes a fused fast path that has no ONNX export.
    with warnings.catch_warnings(), torch.inference_mode(False), torch.enable_grad():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(tower, (example,), str(path), input_names=["pixels"], output_names=["features"],
                              dynamic_axes={"pixels": {0: "batch"}, "features": {0: "batch"}},
                              opset_version=17, dynamo=False)
        except Exception as exc:  # noqa: BLE001 - any exporter failure means: no ONNX path for this model
            raise OnnxExportFailed(f"could not export the image tower to ONNX ({exc}); use --backend torch") from exc


def max_difference(tower: torch.nn.Module, onnx: OnnxTower, pixels: torch.Tensor) -> float:
    """Largest absolute difference between torch's and ONNX Runtime's L2-normalised vectors."""
    with torch.inference_mode():
        ref = torch.nn.functional.normalize(tower(pixels).float(), dim=-1).numpy()
    got = onnx(pixels.numpy())
    got = got / np.maximum(np.linalg.norm(got, axis=1, keepdims=True), 1e-12)
    return float(np.abs(ref - got).max())


def quantize_int8(fp32: Path, out: Path) -> None:
    require_onnxruntime()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = out.with_suffix(".tmp.onnx")
    try:
        # MatMul/Gemm only: the transformer layers and projections, where int8 wins; convolutions stay fp32
        # (dynamic int8 convolutions, ConvInteger, ran 8x slower than fp32 in bench/bench_encoders.py, and
        # on tiny MobileCLIP kept 85% of the 5 nearest images where MatMul/Gemm-only int8 keeps 97%).
        # The refusal of int8 for MobileCLIP is gone: its "35-60% kept" was measured on random-init
        # vectors that are the same for every image; on spread vectors MobileCLIP2-S0 keeps 98-99%
        # (bench/int8_spread_retention.py).
        quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"])
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
