"""OpenCLIP encoder: any open_clip model name + pretrained tag, local file or local folder."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import open_clip
import torch
from PIL import Image

from mmsearch.encoders.base import EmbeddingSpace, Encoder, l2_normalize
from mmsearch.encoders.registry import register
from mmsearch.encoders.weights import WeightsSource, resolve_weights
from mmsearch.errors import UnsafeWeights, WeightsNotFound


def pick_device(device: str) -> torch.device:
    if device != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@register("open-clip")
class OpenCLIPEncoder(Encoder):
    modalities = frozenset({"image", "text"})

    def __init__(
        self,
        model: str = "ViT-B-32",
        pretrained: str | None = "laion2b_s34b_b79k",
        models_dir: str | Path = "models",
        cache_dir: str | None = None,
        offline: bool = False,
        device: str = "auto",
    ) -> None:
        super().__init__()
        self.model_name = model
        self.pretrained = pretrained
        self.models_dir = Path(models_dir)
        self.cache_dir = cache_dir
        self.offline = offline
        self.device = pick_device(device)
        self._source: WeightsSource | None = None
        self._model: Any = None
        self._preprocess: Any = None
        self._tokenizer: Any = None

    @property
    def source(self) -> WeightsSource:
        if self._source is None:
            self._source = resolve_weights(
                self.model_name, self.pretrained, self.models_dir, self.cache_dir, self.offline
            )
        return self._source

    @property
    def space(self) -> EmbeddingSpace:
        model_label = Path(self.model_name).name if self.source.open_clip_name.startswith("local-dir:") else self.model_name
        return EmbeddingSpace(self.name, model_label, self.source.label, self._config()["embed_dim"])

    def _config(self) -> dict:
        name = self.source.open_clip_name
        if name.startswith("local-dir:"):
            folder = Path(name.removeprefix("local-dir:"))
            return json.loads((folder / "open_clip_config.json").read_text())["model_cfg"]
        return open_clip.get_model_config(name)

    def image_size(self) -> int:
        size = self._config().get("vision_cfg", {}).get("image_size", 224)
        return int(size if isinstance(size, int) else min(size))

    def image_draft_size(self) -> int | None:
        return self.image_size()

    def _load(self) -> None:
        src = self.source
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                src.open_clip_name,
                pretrained=src.pretrained,
                device=self.device,
                cache_dir=self.cache_dir,
                weights_only=True,  # never unpickle arbitrary objects from a checkpoint
            )
        except pickle.UnpicklingError as exc:
            raise UnsafeWeights(
                f"refusing to load {src.local_file or src.pretrained}: the checkpoint holds arbitrary Python "
                f"objects, which could run code. Convert it to .safetensors or a plain state dict ({exc})"
            ) from None
        except RuntimeError as exc:
            if "download" in str(exc).lower():
                raise WeightsNotFound(
                    f"could not download weights for {self.model_name} ({self.pretrained}): {exc}. "
                    f"Copy the weights into {self.models_dir / self.model_name / str(self.pretrained)}/"
                ) from exc
            raise
        model.eval()
        self._model = model
        self._preprocess = preprocess
        self._tokenizer = open_clip.get_tokenizer(src.open_clip_name)

    def _unload(self) -> None:
        self._model = self._preprocess = self._tokenizer = None

    def preprocess_image(self, image: Image.Image) -> torch.Tensor:
        self.load()
        return self._preprocess(image)

    def encode_images(self, batch: Sequence[torch.Tensor]) -> np.ndarray:
        self.load()
        with torch.inference_mode():
            x = torch.stack(list(batch)).to(self.device)
            feats = self._model.encode_image(x)
        return l2_normalize(feats.float().cpu().numpy())

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        self.load()
        with torch.inference_mode():
            tokens = self._tokenizer(list(texts)).to(self.device)
            feats = self._model.encode_text(tokens)
        return l2_normalize(feats.float().cpu().numpy())

    def logit_scale(self) -> float:
        self.load()
        return float(self._model.logit_scale.detach().exp())
