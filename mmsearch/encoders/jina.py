"""Jina embeddings v4 (Qwen2.5-VL-3B based; text, images and visual documents in one 2048-d space).

Licence: Qwen Research License, non-commercial. 3.8 B parameters: practical on a GPU, very slow on a CPU.

Two ways in, both opt-in:
- Native (default): Jina's adapter-merged checkpoints (`jinaai/jina-embeddings-v4-vllm-retrieval`, which
  Jina publishes for runtimes without adapter code) are plain `Qwen2_5_VLForConditionalGeneration` weights,
  built by transformers itself. Embedding follows the recipe on those model cards: "Query: " / "Passage: "
  prompts for text, a fixed chat prompt around the image, mean of the last hidden states over the text
  tokens (over the vision span for an image), then L2 normalisation.
- `trust_remote_code=True`: the original `jinaai/jina-embeddings-v4` repository, whose LoRA task adapters
  and pooling exist only as its own Python code (`encode_text` / `encode_image`). Not built or tested
  offline here.

Matryoshka: `truncate_dim` keeps the first 128/256/512/1024 dimensions (renormalised). The dimension is
part of the embedding space, and a truncated space is named `<model>@<dim>d`, so its table never meets
vectors of another length.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from mmsearch.encoders.base import EmbeddingSpace, l2_normalize
from mmsearch.encoders.device import HubEncoder
from mmsearch.encoders.hf_aux import download_repo
from mmsearch.encoders.hf_weights import WEIGHT_FILES, HFFolder
from mmsearch.encoders.matryoshka import TRAINED
from mmsearch.encoders.registry import register
from mmsearch.errors import MMSearchError, UnknownModel, WeightsNotFound

DEFAULT_JINA = "jinaai/jina-embeddings-v4-vllm-retrieval"
REMOTE_JINA = "jinaai/jina-embeddings-v4"
MATRYOSHKA_DIMS = TRAINED["jina-v4"]
IMAGE_PROMPT = "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Describe the image.<|im_end|>\n"


@register("jina-v4")
class JinaV4Encoder(HubEncoder):
    modalities = frozenset({"image", "text"})

    def __init__(
        self,
        model: str = DEFAULT_JINA,
        models_dir: str | Path = "models",
        cache_dir: str | None = None,
        offline: bool = False,
        device: str = "auto",
        precision: str = "auto",
        truncate_dim: int | None = None,
        trust_remote_code: bool = False,
        max_pixels: int = 602_112,  # 768 image tokens of 28x28, the model card's default budget
    ) -> None:
        super().__init__(model, models_dir, cache_dir, offline, device, precision)
        self.truncate_dim = truncate_dim
        self.trust_remote_code = trust_remote_code
        self.max_pixels = max_pixels
        self._source: HFFolder | None = None
        self._model: Any = None
        self._processor: Any = None

    # -- weights and space ----------------------------------------------------------------------
    @property
    def source(self) -> HFFolder:
        if self._source is None:
            self._source = _resolve(self.model_name, self.models_dir, self.cache_dir, self.offline)
            if self._remote and not self.trust_remote_code:
                raise MMSearchError(
                    f"{self.model_name} is built by its repository's own Python code; mmsearch runs such code "
                    f"only with --trust-remote-code (MMSEARCH_TRUST_REMOTE_CODE=true). Or use the adapter-merged "
                    f"{DEFAULT_JINA}, which loads without it.")
        return self._source

    @property
    def _remote(self) -> bool:
        return self._source is not None and self._source.config().get("model_type") != "qwen2_5_vl"

    def full_dim(self) -> int:
        cfg = self.source.config()
        return int(cfg.get("text_config", cfg).get("hidden_size", 2048))

    @property
    def dim(self) -> int:
        full = self.full_dim()
        if self.truncate_dim is None or self.truncate_dim == full:
            return full
        allowed = [d for d in MATRYOSHKA_DIMS if d < full] if full == 2048 else None
        if self.truncate_dim > full or (allowed is not None and self.truncate_dim not in allowed):
            raise MMSearchError(f"truncate_dim must be one of {', '.join(map(str, allowed or [full]))} "
                                f"for {self.model_name}, got {self.truncate_dim}")
        return self.truncate_dim

    @property
    def space(self) -> EmbeddingSpace:
        src, dim = self.source, self.dim
        model = src.model_label if dim == self.full_dim() else f"{src.model_label}@{dim}d"
        return EmbeddingSpace(self.name, model, src.label, dim)

    # -- loading --------------------------------------------------------------------------------
    def _load(self) -> None:
        import transformers
        from transformers import AutoModel, AutoProcessor

        transformers.utils.logging.disable_progress_bar()  # core code never prints
        src = self.source
        self.dim  # a bad truncation fails before the weights are read
        if self._remote:
            model = AutoModel.from_pretrained(src.folder, local_files_only=True, trust_remote_code=True, dtype=self.dtype)
        else:
            from transformers import Qwen2_5_VLModel

            model = Qwen2_5_VLModel.from_pretrained(src.folder, local_files_only=True, dtype=self.dtype,
                                                    use_safetensors=True if src.safetensors else None)
            self._processor = AutoProcessor.from_pretrained(src.folder, local_files_only=True)
            images = self._processor.image_processor
            if isinstance(getattr(images, "size", None), dict) and "longest_edge" in images.size:
                # The pixel budget bounds the image tokens, and with them memory and time per image.
                images.size = {**images.size, "longest_edge": min(images.size["longest_edge"], self.max_pixels)}
        self._model = model.to(self.device).eval()

    def _unload(self) -> None:
        self._model = self._processor = None

    # -- encoding -------------------------------------------------------------------------------
    def _finish(self, pooled: Any) -> np.ndarray:
        vecs = l2_normalize(np.asarray(pooled.float().cpu().numpy() if hasattr(pooled, "float") else pooled, np.float32))
        return l2_normalize(vecs[:, : self.dim])  # Matryoshka: the first dims, renormalised

    def _text(self, texts: Sequence[str], role: str) -> np.ndarray:
        import torch

        self.load()
        if self._remote:
            out = self._model.encode_text(texts=list(texts), task="retrieval", prompt_name=role, return_numpy=True)
            return self._finish(np.stack([np.asarray(v, np.float32) for v in out]))
        prefix = "Query: " if role == "query" else "Passage: "
        tokens = self._processor.tokenizer([prefix + t for t in texts], padding=True, truncation=True,
                                           max_length=8192, return_tensors="pt").to(self.device)
        with torch.inference_mode():
            hidden = self._model(**tokens).last_hidden_state
        mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return self._finish((hidden * mask).sum(1) / mask.sum(1).clamp(min=1))

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        return self._text(texts, "query")

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._text(texts, "passage")

    def preprocess_image(self, image: Image.Image) -> Image.Image:
        return image.convert("RGB")  # the processor sizes each image in the batch (dynamic resolution)

    def encode_images(self, batch: Sequence[Image.Image]) -> np.ndarray:
        import torch

        self.load()
        if self._remote:
            out = self._model.encode_image(images=list(batch), task="retrieval", return_numpy=True)
            return self._finish(np.stack([np.asarray(v, np.float32) for v in out]))
        inputs = self._processor(text=[IMAGE_PROMPT] * len(batch), images=list(batch), padding=True,
                                 return_tensors="pt").to(self.device)
        with torch.inference_mode():
            hidden = self._model(**inputs).last_hidden_state
        ids = inputs["input_ids"]
        start = self._model.config.vision_start_token_id
        end = self._model.config.vision_end_token_id
        pos = torch.arange(ids.shape[1], device=ids.device)
        first = (ids == start).int().argmax(1, keepdim=True)
        last = (ids == end).int().argmax(1, keepdim=True)
        span = ((pos >= first) & (pos <= last)).unsqueeze(-1).to(hidden.dtype)  # vision_start..vision_end
        return self._finish((hidden * span).sum(1) / span.sum(1))


def _resolve(model: str, models_dir: Path, cache_dir: str | None, offline: bool) -> HFFolder:
    """Like resolve_hf_folder, but either the native (qwen2_5_vl) or the remote-code architecture."""
    for folder, label in ((Path(model).expanduser(), Path(model).name), (models_dir / model, model)):
        if (folder / "config.json").is_file():
            return _checked(folder, label)
    if "/" not in model:
        raise UnknownModel(f"{model!r} is neither a folder nor a Hugging Face repo id; try {DEFAULT_JINA}")
    from huggingface_hub import try_to_load_from_cache

    hit = try_to_load_from_cache(repo_id=model, filename="config.json", cache_dir=cache_dir)
    if isinstance(hit, str) and os.path.isfile(hit):
        return _checked(Path(hit).parent, model)
    if offline:
        raise WeightsNotFound(
            f"weights for {model} are not on this machine and mmsearch is offline. Copy config.json, the "
            f"model*.safetensors files (with model.safetensors.index.json), preprocessor_config.json and the tokenizer "
            f"files from https://huggingface.co/{model} into {models_dir / model}/, or run "
            f"`mmsearch models pull {model}` with internet access.")
    return _checked(download_repo(model, cache_dir), model)


def _checked(folder: Path, label: str) -> HFFolder:
    weights = next((folder / n for n in WEIGHT_FILES if (folder / n).is_file()), None)
    if weights is None:
        raise WeightsNotFound(f"model folder {folder} has config.json but no weights; copy the safetensors files into it")
    json.loads((folder / "config.json").read_text())  # a broken config fails here, not mid-load
    return HFFolder(folder.resolve(), label, weights)
