"""BGE-VL (BAAI, MIT): CLIP-architecture retrieval models trained on MegaPairs, with composed queries.

BGE-VL-base and BGE-VL-large are transformers `CLIPModel`s (the repos' own modeling code,
modeling_MMRet_CLIP.py, is a copy of it with encode helpers), so they load here from the weights with
transformers' built-in class and no remote code. A composed query, an image plus an instruction ("this
dress but in red"), is embedded as in that code: the unnormalised projected text and image features are
added, then normalised.

`trust_remote_code=True` loads through the repository's own Python code instead (AutoModel); it is off
unless asked for, because that code runs with your user's rights. The LLaVA-NeXT based BGE-VL-MLLM-S1/S2
exist only as remote code and are not wired here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from mmsearch.encoders.base import EmbeddingSpace, l2_normalize
from mmsearch.encoders.device import HubEncoder
from mmsearch.encoders.hf_weights import HFFolder, resolve_hf_folder
from mmsearch.encoders.registry import register
from mmsearch.errors import BadQuery

DEFAULT_BGE_VL = "BAAI/BGE-VL-base"
KNOWN_BGE_VL = (DEFAULT_BGE_VL, "BAAI/BGE-VL-large")


@register("bge-vl")
class BGEVLEncoder(HubEncoder):
    modalities = frozenset({"image", "text", "composed"})

    def __init__(
        self,
        model: str = DEFAULT_BGE_VL,
        models_dir: str | Path = "models",
        cache_dir: str | None = None,
        offline: bool = False,
        device: str = "auto",
        precision: str = "fp32",
        trust_remote_code: bool = False,
    ) -> None:
        super().__init__(model, models_dir, cache_dir, offline, device, precision)
        self.trust_remote_code = trust_remote_code
        self._source: HFFolder | None = None
        self._model: Any = None
        self._images: Any = None  # CLIPImageProcessor
        self._tokenizer: Any = None

    @property
    def source(self) -> HFFolder:
        if self._source is None:
            self._source = resolve_hf_folder(self.model_name, "clip", self.models_dir, self.cache_dir,
                                             self.offline, KNOWN_BGE_VL)
        return self._source

    @property
    def space(self) -> EmbeddingSpace:
        src = self.source
        return EmbeddingSpace(self.name, src.model_label, src.label, int(src.config().get("projection_dim", 512)))

    def image_draft_size(self) -> int | None:
        return int(self.source.config().get("vision_config", {}).get("image_size", 224))

    def _load(self) -> None:
        import transformers
        from transformers import AutoModel, CLIPImageProcessor, CLIPModel, CLIPTokenizer

        transformers.utils.logging.disable_progress_bar()  # core code never prints
        src = self.source
        cls = AutoModel if self.trust_remote_code else CLIPModel
        model = cls.from_pretrained(src.folder, local_files_only=True, trust_remote_code=self.trust_remote_code,
                                    use_safetensors=True if src.safetensors else None, weights_only=True)
        self._model = model.to(self.device, self.dtype).eval()
        self._images = CLIPImageProcessor.from_pretrained(src.folder, local_files_only=True)
        self._tokenizer = CLIPTokenizer.from_pretrained(src.folder, local_files_only=True)

    def _unload(self) -> None:
        self._model = self._images = self._tokenizer = None

    # -- features (unnormalised, as the composed formula needs them) ------------------------------
    def _image_features(self, pixels: Any) -> Any:
        out = self._model.get_image_features(pixel_values=pixels.to(self.device, self.dtype))
        return out if not hasattr(out, "pooler_output") else out.pooler_output

    def _text_features(self, texts: Sequence[str]) -> Any:
        tokens = self._tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt").to(self.device)
        out = self._model.get_text_features(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
        return out if not hasattr(out, "pooler_output") else out.pooler_output

    # -- the Encoder contract -------------------------------------------------------------------
    def preprocess_image(self, image: Image.Image) -> Any:
        self.load()
        return self._images(images=image.convert("RGB"), return_tensors="pt")["pixel_values"][0]

    def encode_images(self, batch: Sequence[Any]) -> np.ndarray:
        import torch

        self.load()
        with torch.inference_mode():
            feats = self._image_features(torch.stack(list(batch)))
        return l2_normalize(feats.float().cpu().numpy())

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        self.load()
        with torch.inference_mode():
            feats = self._text_features(texts)
        return l2_normalize(feats.float().cpu().numpy())

    def encode_composed(self, images: Sequence[Image.Image], texts: Sequence[str]) -> np.ndarray:
        """Image + instruction pairs -> one vector each, searched against the image table."""
        import torch

        if len(images) != len(texts):
            raise BadQuery(f"a composed query pairs each image with one text; got {len(images)} images, {len(texts)} texts")
        if any(not str(t).strip() for t in texts):
            raise BadQuery("a composed query needs an instruction, e.g. 'the same dress but in red'")
        self.load()
        pixels = torch.stack([self.preprocess_image(im) for im in images])
        with torch.inference_mode():
            feats = self._image_features(pixels) + self._text_features(texts)
        return l2_normalize(feats.float().cpu().numpy())

    def logit_scale(self) -> float:
        self.load()
        return float(self._model.logit_scale.detach().float().exp())
