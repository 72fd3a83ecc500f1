"""Export an OpenCLIP text tower and its tokenizer for the torch-free query path (mmsearch.encoders.onnx_text).

Written once per model and weights next to the image tower's export (onnx_backend.export_location), or into
a folder the caller names (the library's model cache). Every fresh export is checked before it is kept:
ONNX Runtime's normalised vectors must match torch's padded open_clip encode_text within 1e-4 on token rows
of several lengths, and the rebuilt tokenizer must give open_clip's ids on a set of probe texts. A check
that fails deletes the files and raises OnnxExportFailed.

Supported: towers tokenized by open_clip's CLIP BPE (SimpleTokenizer): CLIP ViTs, ConvNeXt, EVA,
MobileCLIP/MobileCLIP2. Models with Hugging Face tokenizers (SigLIP, multilingual CLIP) raise
TextExportUnsupported: their text queries stay on torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from mmsearch.encoders.causal_text import CausalText, causal_text
from mmsearch.encoders.clip_bpe import ClipBpeTokenizer, build_tokenizer_json, tokenizer_config
from mmsearch.encoders.onnx_backend import OnnxExportFailed, export_location, require_onnxruntime
from mmsearch.encoders.onnx_text import (FORMAT, MANIFEST_SUFFIX, OnnxTextEncoder, files_present,
                                          read_manifest)
from mmsearch.errors import MMSearchError

if TYPE_CHECKING:
    from mmsearch.encoders.openclip import OpenCLIPEncoder

TOLERANCE = 1e-4
PROBE_TEXTS = ("a photo of a cat", "", "Naïve café — RÉSUMÉ!!", "東京の夜景 😀🐱", "don't &amp; <end_of_text> x",
               "numbers 3.14 and 1,000", "word " * 100)
_LOCK = threading.Lock()


class TextExportUnsupported(MMSearchError):
    """This model's text side cannot run without torch; its text queries use the torch encoder."""


def export_text_query_path(encoder: "OpenCLIPEncoder", folder: Path | None = None) -> Path:
    """Export (or find, already checked) the encoder's text tower + tokenizer; returns the manifest path.

    folder: where to write; by default beside the image tower's export (a scratch-free models_dir/onnx for
    random weights, which are recognised by a fingerprint of the text tower's tensors).
    """
    require_onnxruntime()
    encoder.load()
    model, tokenizer = encoder.torch_model, encoder._tokenizer
    clean_how, extras = _clip_bpe_settings(encoder, tokenizer)
    if next(model.parameters()).dtype != torch.float32:
        raise MMSearchError("the text tower is exported from the fp32 model; use --precision fp32 (or auto)")
    folder, key = _location(encoder, folder)
    manifest_path = folder / f"{key}{MANIFEST_SUFFIX}"
    fingerprint = _fingerprint(encoder, model)
    with _LOCK:
        if _still_good(manifest_path, fingerprint):
            return manifest_path
        causal = causal_text(model)
        onnx_path, tok_path = folder / f"{key}-text.onnx", folder / f"{key}-text-tokenizer.json"
        try:
            _write_tokenizer(tok_path, tokenizer, extras)
            diff = _export_and_check(model, causal, tokenizer, onnx_path)
            manifest = {
                "format": FORMAT, "space": encoder.space.metadata(), "space_id": encoder.space.id,
                "weights": fingerprint, "onnx": onnx_path.name,
                "tokenizer": tokenizer_config(tok_path.name, tokenizer.context_length, clean_how, extras),
                "trim": {"pool": causal.pool_type, "eos_id": causal.eos_id} if causal is not None else None,
                "max_abs_diff": diff, "tolerance": TOLERANCE,
            }
            tmp = manifest_path.with_name(manifest_path.name + ".tmp")
            tmp.write_text(json.dumps(manifest, indent=1))
            os.replace(tmp, manifest_path)
            _check_tokens(manifest_path, tokenizer)
        except BaseException:
            for p in (manifest_path, onnx_path, tok_path):
                p.unlink(missing_ok=True)
            raise
    return manifest_path


def _clip_bpe_settings(encoder: "OpenCLIPEncoder", tokenizer: object) -> tuple[str, list[str]]:
    from open_clip import tokenizer as oct

    if not isinstance(tokenizer, oct.SimpleTokenizer):
        raise TextExportUnsupported(
            f"{encoder.model_name} uses a {type(tokenizer).__name__}; the torch-free text path covers models "
            f"with open_clip's CLIP tokenizer, so its text queries use torch")
    if tokenizer.reduction_fn is not None:
        raise TextExportUnsupported(f"{encoder.model_name}'s tokenizer reduces long texts by a random mask; "
                                    f"its text queries use torch")
    cleans = {oct._clean_lower: "lower", oct._clean_whitespace: "whitespace", oct._clean_canonicalize: "canonicalize"}
    if tokenizer.clean_fn not in cleans:
        raise TextExportUnsupported(f"{encoder.model_name}'s tokenizer cleans text in an unknown way")
    extras = [tokenizer.decoder[i] for i in tokenizer.all_special_ids[2:]]
    return cleans[tokenizer.clean_fn], extras


def _location(encoder: "OpenCLIPEncoder", folder: Path | None) -> tuple[Path, str]:
    if encoder.source.local_file is None:  # random weights: a stable folder, told apart by fingerprint
        key = export_location(encoder)[1]
        folder = Path(folder) if folder is not None else encoder.models_dir / "onnx"
    else:
        default, key = export_location(encoder)
        folder = Path(folder) if folder is not None else default
    folder.mkdir(parents=True, exist_ok=True)
    return folder, key


def _fingerprint(encoder: "OpenCLIPEncoder", model: torch.nn.Module) -> str:
    """The weights file's hash in the key names file weights; random weights are hashed tensor by tensor."""
    if encoder.source.local_file is not None:
        return "file"
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        if not name.startswith("visual."):
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return "tensors-" + h.hexdigest()[:16]


def _still_good(manifest_path: Path, fingerprint: str) -> bool:
    if not manifest_path.is_file():
        return False
    try:
        manifest = read_manifest(manifest_path)
    except MMSearchError:
        return False
    return manifest.get("weights") == fingerprint and files_present(manifest_path.parent, manifest)


def _write_tokenizer(path: Path, tokenizer: object, extras: list[str]) -> None:
    from open_clip.tokenizer import default_bpe

    build_tokenizer_json(Path(default_bpe()), path, extras)
    built = json.loads(path.read_text())["model"]["vocab"]
    if built != tokenizer.encoder:  # type: ignore[attr-defined]
        raise OnnxExportFailed(f"the rebuilt tokenizer's vocabulary differs from the model's; "
                               f"its text queries use torch")


class _TextTower(torch.nn.Module):
    """Token ids -> unnormalised features; a causal tower takes already-trimmed rows of any length."""

    def __init__(self, model: torch.nn.Module, causal: CausalText | None) -> None:
        super().__init__()
        self.model, self.causal = model, causal

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.causal is not None:
            return self.causal.forward(tokens)
        return self.model.encode_text(tokens)


def _export_and_check(model: torch.nn.Module, causal: CausalText | None, tokenizer: object, path: Path) -> float:
    tower = _TextTower(model, causal).eval()
    example = torch.from_numpy(_rows(tokenizer, [5, 9])).long()
    if causal is not None:
        example = example[:, : causal.real_length(example)]
    tmp = path.with_name(path.stem + ".tmp.onnx")
    try:
        _export(tower, example, tmp, dynamic_length=causal is not None)
        diff = _difference(model, causal, tmp, tokenizer)
        if not diff <= TOLERANCE:
            raise OnnxExportFailed(f"the ONNX export of the text tower differs from torch by {diff:.2e} "
                                   f"(> {TOLERANCE}); its text queries use torch")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return diff


def _rows(tokenizer: object, lengths: list[int], seed: int = 0) -> np.ndarray:
    """Tokenized rows of random words with about these many tokens each, padded to the context."""
    rng = np.random.default_rng(seed)
    words = "cat dog red blue sky tree house car photo of a the on in big small old new river night".split()
    texts = [" ".join(rng.choice(words, size=max(0, n - 2))) for n in lengths]
    return tokenizer(texts).numpy()  # type: ignore[operator]


def _export(tower: torch.nn.Module, example: torch.Tensor, path: Path, dynamic_length: bool) -> None:
    """torch.export-based (dynamo) export: the TorchScript tracer bakes the traced sequence length into
    nn.MultiheadAttention's reshapes, so a dynamic length needs symbolic shapes."""
    import logging
    import warnings

    shapes = {0: torch.export.Dim("batch", min=1, max=4096)}
    if dynamic_length:
        shapes[1] = torch.export.Dim("length", min=1, max=_context(tower))
    quiet = logging.getLogger("torch.onnx"), logging.getLogger("onnxscript")
    levels = [q.level for q in quiet]
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        for q in quiet:
            q.setLevel(logging.ERROR)
        try:
            torch.onnx.export(tower, (example,), str(path), input_names=["tokens"], output_names=["features"],
                              dynamic_shapes={"tokens": shapes}, opset_version=18, dynamo=True, verbose=False,
                              external_data=False)
        except Exception as exc:  # noqa: BLE001 - any exporter failure means: no ONNX text path for this model
            raise OnnxExportFailed(f"could not export the text tower to ONNX ({exc}); its text queries use torch") \
                from exc
        finally:
            for q, level in zip(quiet, levels):
                q.setLevel(level)


def _context(tower: "_TextTower") -> int:
    assert tower.causal is not None
    return int(tower.causal.owner.positional_embedding.shape[0])


def _difference(model: torch.nn.Module, causal: CausalText | None, onnx_path: Path, tokenizer: object) -> float:
    """Largest difference to torch's padded encode_text, over batches of mixed, single and full-length rows."""
    ort = require_onnxruntime()
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    ctx = tokenizer.context_length  # type: ignore[attr-defined]
    worst = 0.0
    for lengths in ([3, 12, 7], [4], [ctx + 10, 2]):
        rows = _rows(tokenizer, lengths, seed=len(lengths))
        with torch.inference_mode():
            ref = torch.nn.functional.normalize(model.encode_text(torch.from_numpy(rows)).float(), dim=-1).numpy()
        feed = rows[:, : causal.real_length(torch.from_numpy(rows))] if causal is not None else rows
        got = session.run(None, {"tokens": feed})[0]
        got = got / np.maximum(np.linalg.norm(got, axis=1, keepdims=True), 1e-12)
        worst = max(worst, float(np.abs(ref - got).max()))
    return worst


def _check_tokens(manifest_path: Path, tokenizer: object) -> None:
    """The torch-free tokenizer, loaded from what was written, gives open_clip's ids on the probe texts."""
    manifest = read_manifest(manifest_path)
    mine = ClipBpeTokenizer.from_config(manifest_path.parent, manifest["tokenizer"])
    want = tokenizer(list(PROBE_TEXTS)).numpy()  # type: ignore[operator]
    if not np.array_equal(mine(list(PROBE_TEXTS)), want):
        raise OnnxExportFailed("the rebuilt tokenizer gives other ids than open_clip's; its text queries use torch")


def onnx_text_encoder(encoder: "OpenCLIPEncoder", folder: Path | None = None) -> OnnxTextEncoder:
    """The encoder's text side in ONNX Runtime (exported and checked on first use)."""
    return OnnxTextEncoder(export_text_query_path(encoder, folder))


__all__ = ["TextExportUnsupported", "export_text_query_path", "onnx_text_encoder"]
