"""OpenCLIP encoder: any open_clip model name + pretrained tag, local file or local folder.

Covers the families open_clip builds: CLIP ViTs (B-32 ... L-14), SigLIP / SigLIP 2 (timm towers, HF
tokenizers), MobileCLIP / MobileCLIP2 (FastViT towers, reparameterised after loading) and multilingual
CLIP (an HF xlm-roberta text tower). Everything open_clip would fetch from the hub at build time (weights,
tokenizer, text-tower config) is resolved to local files first, so offline loads work or fail at once.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
from PIL import Image

from mmsearch.encoders.base import EmbeddingSpace, Encoder, l2_normalize
from mmsearch.encoders.device import Placed, pick_device
from mmsearch.encoders.openclip_configs import model_config
from mmsearch.encoders.hf_aux import resolve_hub_folder
from mmsearch.encoders.registry import register
from mmsearch.encoders.weights import WeightsSource, resolve_weights
from mmsearch.errors import MMSearchError, UnsafeWeights, WeightsNotFound

if TYPE_CHECKING:  # imported when the model loads: learning the space (an unchanged re-run) must not import torch
    import torch

    from mmsearch.encoders.causal_text import CausalText

__all__ = ["OpenCLIPEncoder", "pick_device"]
BACKENDS = ("torch", "onnx", "onnx-int8")
_PREPROCESS_KEYS = ("mean", "std", "interpolation", "resize_mode")


@register("open-clip")
class OpenCLIPEncoder(Placed, Encoder):
    modalities = frozenset({"image", "text"})

    def __init__(
        self,
        model: str = "ViT-B-32",
        pretrained: str | None = "laion2b_s34b_b79k",
        models_dir: str | Path = "models",
        cache_dir: str | None = None,
        offline: bool = False,
        device: str = "auto",
        precision: str = "fp32",
        backend: str = "torch",
        tokenizer: str | None = None,
    ) -> None:
        super().__init__()
        if backend not in BACKENDS:
            raise MMSearchError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
        self.model_name = model
        self.pretrained = pretrained
        self.models_dir = Path(models_dir)
        self.cache_dir = cache_dir
        self.offline = offline
        self._place(device, precision)
        self.backend = backend
        self.tokenizer_dir = tokenizer  # a local tokenizer folder, for models whose tokenizer lives on the hub
        self._source: WeightsSource | None = None
        self._model: Any = None
        self._preprocess: Any = None
        self._tokenizer: Any = None
        self._onnx: Any = None
        self._causal: CausalText | None = None  # set for causal towers: they run on the real token length

    @property
    def source(self) -> WeightsSource:
        if self._source is None:
            self._source = resolve_weights(
                self.model_name, self.pretrained, self.models_dir, self.cache_dir, self.offline
            )
        return self._source

    @property
    def space(self) -> EmbeddingSpace:
        model_label = Path(self.model_name).name if self._local_dir() else self.model_name
        return EmbeddingSpace(self.name, model_label, self.source.label, self._config()["embed_dim"])

    def _local_dir(self) -> Path | None:
        name = self.source.open_clip_name
        return Path(name.removeprefix("local-dir:")) if name.startswith("local-dir:") else None

    def _config(self) -> dict:
        folder = self._local_dir()
        if folder is not None:
            return json.loads((folder / "open_clip_config.json").read_text())["model_cfg"]
        return model_config(self.source.open_clip_name)

    def image_size(self) -> int:
        size = self._config().get("vision_cfg", {}).get("image_size", 224)
        return int(size if isinstance(size, int) else min(size))

    def image_draft_size(self) -> int | None:
        return self.image_size()

    # -- loading --------------------------------------------------------------------------------
    def _near(self) -> list[Path]:
        """Folders that may hold the model's own tokenizer / text config, most specific first."""
        out = [Path(self.tokenizer_dir).expanduser()] if self.tokenizer_dir else []
        weights_dir = self._local_dir() or (self.source.local_file.parent if self.source.local_file else None)
        if weights_dir is not None and "snapshots" not in weights_dir.parts:
            out += [weights_dir, weights_dir / "tokenizer"]
        elif weights_dir is not None:  # an HF cache snapshot: the repo's tokenizer sits beside its weights
            out.append(weights_dir)
        return out

    def _text_cfg_override(self) -> dict:
        """Point an HF text tower at a local config folder: open_clip would fetch it from the hub."""
        text_cfg = dict(self._config().get("text_cfg", {}))
        if "hf_model_name" not in text_cfg:
            return {}
        text_cfg["hf_model_name"] = resolve_hub_folder(
            text_cfg["hf_model_name"], "config", self.models_dir, self.cache_dir, self.offline,
            needed_by=f"{self.model_name}'s text tower")
        text_cfg["hf_model_pretrained"] = False  # its weights come from the CLIP checkpoint, never the hub
        return {"text_cfg": text_cfg}

    def _preprocess_override(self) -> dict:
        """A tag's mean/std/resize travel with the tag, not the file: keep them when loading from a file."""
        if not self.pretrained or self._local_dir() is not None:
            return {}
        import open_clip

        cfg = open_clip.get_pretrained_cfg(self.model_name, self.pretrained) or {}
        return {f"image_{k}": cfg[k] for k in _PREPROCESS_KEYS if k in cfg}

    def _make_tokenizer(self) -> Any:
        import open_clip

        text_cfg = self._config().get("text_cfg", {})
        hf_name = text_cfg.get("hf_tokenizer_name")
        if not hf_name:
            return open_clip.get_tokenizer(self.source.open_clip_name, cache_dir=self.cache_dir)
        folder = resolve_hub_folder(hf_name, "tokenizer", self.models_dir, self.cache_dir, self.offline,
                                    self._near(), needed_by=self.model_name)
        return open_clip.tokenizer.HFTokenizer(
            folder, context_length=text_cfg.get("context_length", 77), cache_dir=self.cache_dir,
            tokenizer_mode=text_cfg.get("tokenizer_mode"), **text_cfg.get("tokenizer_kwargs", {}))

    def _load(self) -> None:
        from mmsearch.encoders.causal_text import causal_text

        src = self.source
        tokenizer = self._make_tokenizer()  # before the weights: a missing tokenizer fails fast
        model, preprocess = self._create(src)
        model = _reparameterize(model).to(self.device, self.dtype).eval()
        self._model, self._preprocess, self._tokenizer = model, preprocess, tokenizer
        self._causal = causal_text(model)
        if self.backend != "torch":
            from mmsearch.encoders.onnx_backend import image_tower

            if self.device.type != "cpu":
                raise MMSearchError(f"the {self.backend} backend runs on the CPU; use --device cpu or --backend torch")
            self._onnx = image_tower(self, int8=self.backend == "onnx-int8")

    def _create(self, src: WeightsSource) -> tuple[Any, Any]:
        import open_clip

        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                src.open_clip_name,
                pretrained=src.pretrained,
                device="cpu",
                cache_dir=self.cache_dir,
                **self._preprocess_override(),
                weights_only=True,  # never unpickle arbitrary objects from a checkpoint
                **self._text_cfg_override(),
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
        return model, preprocess

    def _unload(self) -> None:
        self._model = self._preprocess = self._tokenizer = self._onnx = self._causal = None

    # -- encoding -------------------------------------------------------------------------------
    def preprocess_image(self, image: Image.Image) -> torch.Tensor:
        self.load()
        return self._preprocess(image)

    def encode_images(self, batch: Sequence[torch.Tensor]) -> np.ndarray:
        import torch

        self.load()
        if self._onnx is not None:
            return l2_normalize(self._onnx(torch.stack(list(batch)).numpy()))
        with torch.inference_mode():
            x = torch.stack(list(batch)).to(self.device, self.dtype)
            feats = self._model.encode_image(x)
        return l2_normalize(feats.float().cpu().numpy())

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        self.load()
        with torch.inference_mode():
            tokens = self._tokenizer(list(texts)).to(self.device)
            feats = self._causal.encode(tokens) if self._causal is not None else self._model.encode_text(tokens)
        return l2_normalize(feats.float().cpu().numpy())

    def logit_scale(self) -> float:
        self.load()
        return float(self._model.logit_scale.detach().float().exp())

    @property
    def torch_model(self) -> Any:
        """The loaded open_clip model (for export and benchmarks)."""
        self.load()
        return self._model


def _reparameterize(model: torch.nn.Module) -> torch.nn.Module:
    """MobileCLIP's FastViT blocks train with parallel branches and fold them into one conv for inference."""
    if not any(hasattr(m, "reparameterize") for m in model.modules()):
        return model
    from timm.utils import reparameterize_model

    return reparameterize_model(model, inplace=True)
