"""Text queries without torch: an exported OpenCLIP text tower in ONNX Runtime plus open_clip's tokenizer
rebuilt on HF `tokenizers` (mmsearch.encoders.clip_bpe).

This module imports neither torch nor open_clip, so a command-line text search can start in well under a
second more than ONNX Runtime takes to load the tower. The export (mmsearch.encoders.onnx_text_export, which
does need torch) writes three files side by side, named by model and weights:

    <key>-text.onnx             the text tower, dynamic batch (and, for causal towers, sequence length)
    <key>-text-tokenizer.json   open_clip's BPE vocabulary and merges as a HF tokenizer
    <key>-text.json             the manifest: embedding space, tokenizer settings, trimming, checked difference

Causal towers are fed only the batch's real length (up to its last end-of-text token), as the torch encoder
does (mmsearch.encoders.causal_text); other towers get the padded context.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from mmsearch.encoders.base import EmbeddingSpace, Encoder, l2_normalize
from mmsearch.encoders.clip_bpe import ClipBpeTokenizer
from mmsearch.errors import MMSearchError

MANIFEST_SUFFIX = "-text.json"
FORMAT = 1


class TextExportMissing(MMSearchError):
    """No usable exported text tower for this space; the caller falls back to the torch encoder."""


def read_manifest(path: Path) -> dict:
    try:
        manifest = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise TextExportMissing(f"cannot read the text export manifest {path}: {exc}") from None
    if manifest.get("format") != FORMAT:
        raise TextExportMissing(f"{path} is a text export of another mmsearch version; index again to re-export it")
    return manifest


def newest_exports(folder: Path) -> list[Path]:
    """The export manifests in `folder`, newest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(folder.glob(f"*{MANIFEST_SUFFIX}"), key=lambda p: p.stat().st_mtime, reverse=True)


def find_text_export(folder: Path, space_id: str) -> Path | None:
    """The manifest in `folder` whose tower and tokenizer files exist for this embedding space, newest first."""
    for path in newest_exports(folder):
        try:
            manifest = read_manifest(path)
        except TextExportMissing:
            continue
        if manifest.get("space_id") == space_id and files_present(path.parent, manifest):
            return path
    return None


def files_present(folder: Path, manifest: dict) -> bool:
    return (folder / manifest["onnx"]).is_file() and (folder / manifest["tokenizer"]["file"]).is_file()


def real_length(tokens: np.ndarray, pool: str, eos_id: int | None) -> int:
    """Positions a causal tower needs: up to and including the last row's pooled token (see causal_text)."""
    idx = tokens.argmax(axis=1) if pool == "argmax" else (tokens == eos_id).argmax(axis=1)
    return int(idx.max()) + 1 if len(tokens) else 1


class OnnxTextEncoder(Encoder):
    """Text-only encoder of an exported space: same vectors as the torch encoder (within 1e-4)."""

    modalities = frozenset({"text"})
    name = "onnx-text"  # per instance: the exported space's encoder name

    def __init__(self, manifest: Path, threads: int | None = None, spin: bool = True) -> None:
        """spin=False: ONNX Runtime's idle threads sleep instead of spinning; for a server, where a spinning
        pool takes the CPU that concurrent searches need (measured: 13.8 -> 11.1 answers/s with spinning)."""
        super().__init__()
        self.manifest_path = Path(manifest)
        self.manifest = read_manifest(self.manifest_path)
        if not files_present(self.manifest_path.parent, self.manifest):
            raise TextExportMissing(f"the files of the text export {self.manifest_path} are incomplete; "
                                    f"index again to re-export them")
        self.name = self.manifest["space"]["encoder"]  # type: ignore[misc]
        self.threads = threads
        self.spin = spin
        self._session: Any = None
        self._tokenizer: ClipBpeTokenizer | None = None

    @property
    def space(self) -> EmbeddingSpace:
        return EmbeddingSpace.from_metadata(self.manifest["space"])

    def _load(self) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise MMSearchError("the torch-free text path needs ONNX Runtime: pip install 'mmsearch[onnx]'") from None
        folder = self.manifest_path.parent
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads or len(os.sched_getaffinity(0))
        opts.log_severity_level = 3
        if not self.spin:
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(str(folder / self.manifest["onnx"]), opts,
                                             providers=["CPUExecutionProvider"])
        self._tokenizer = ClipBpeTokenizer.from_config(folder, self.manifest["tokenizer"])

    def _unload(self) -> None:
        self._session = self._tokenizer = None

    def tokenize(self, texts: Sequence[str]) -> np.ndarray:
        """Padded token ids [batch, context], as open_clip's tokenizer gives them."""
        self.load()
        assert self._tokenizer is not None
        return self._tokenizer(list(texts))

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        tokens = self.tokenize(texts)
        trim = self.manifest["trim"]
        if trim:
            tokens = tokens[:, : real_length(tokens, trim["pool"], trim.get("eos_id"))]
        feats = self._session.run(None, {"tokens": np.ascontiguousarray(tokens)})[0]
        return l2_normalize(np.asarray(feats, dtype=np.float32))
