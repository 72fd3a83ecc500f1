"""Optional: Meta's ImageBind, one space for images, text and sound (and three more modalities).

Behind the `imagebind` extra because its code is not on PyPI in an official release and its weights are
CC-BY-NC 4.0 (non-commercial). Loading never downloads and never unpickles objects: the checkpoint
`imagebind_huge.pth` must be in `models/imagebind/` and is read with torch.load(weights_only=True).
Untested offline: no ImageBind weights can be had here, so only the guards are covered by tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from mmsearch.encoders.base import EmbeddingSpace, Encoder, l2_normalize
from mmsearch.encoders.registry import register
from mmsearch.encoders.weights import file_digest
from mmsearch.errors import MissingExtra, WeightsNotFound

CHECKPOINT = "imagebind_huge.pth"
INSTALL = ("ImageBind is optional: install mmsearch[imagebind] (Meta's `imagebind` package and torchaudio); "
           "its weights are CC-BY-NC 4.0, for non-commercial use")


def require_imagebind() -> Any:
    try:
        from imagebind import data
        from imagebind.models import imagebind_model
    except ImportError:
        raise MissingExtra(INSTALL) from None
    return imagebind_model, data


@register("imagebind")
class ImageBindEncoder(Encoder):
    modalities = frozenset({"image", "text", "audio"})

    def __init__(self, model: str = "imagebind_huge", models_dir: str | Path = "models", device: str = "cpu",
                 **_: Any) -> None:
        super().__init__()
        if model != "imagebind_huge":
            raise MissingExtra(f"ImageBind comes in one size here, imagebind_huge (got {model!r})")
        self.folder = Path(models_dir) / "imagebind"
        self.device = device
        self._model: Any = None
        self._data: Any = None

    def _checkpoint(self) -> Path:
        path = self.folder / CHECKPOINT
        if not path.is_file():
            raise WeightsNotFound(f"ImageBind weights are not on this machine: copy {CHECKPOINT} into {self.folder}/")
        return path

    @property
    def space(self) -> EmbeddingSpace:
        return EmbeddingSpace(self.name, "imagebind_huge", f"sha256:{file_digest(self._checkpoint())[:16]}", 1024)

    def _load(self) -> None:
        import torch

        imagebind_model, data = require_imagebind()
        model = imagebind_model.imagebind_huge(pretrained=False)  # pretrained=True would download and unpickle
        model.load_state_dict(torch.load(self._checkpoint(), map_location="cpu", weights_only=True))
        self._model, self._data = model.eval().to(self.device), data

    def _unload(self) -> None:
        self._model = self._data = None

    def _embed(self, kind: str, inputs: Any) -> np.ndarray:
        import torch

        from imagebind.models.imagebind_model import ModalityType

        with torch.inference_mode():
            out = self._model({getattr(ModalityType, kind): inputs})[getattr(ModalityType, kind)]
        return l2_normalize(out.float().cpu().numpy())

    def preprocess_image(self, image: Image.Image) -> Any:
        from torchvision import transforms

        self.load()
        # ImageBind's own vision transform, applied to an image already decoded by our loader.
        return transforms.Compose([
            transforms.Resize(224, interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.CenterCrop(224), transforms.ToTensor(),
            transforms.Normalize((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
        ])(image.convert("RGB"))

    def encode_images(self, batch: Sequence[Any]) -> np.ndarray:
        import torch

        self.load()
        return self._embed("VISION", torch.stack(list(batch)).to(self.device))

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        self.load()
        return self._embed("TEXT", self._data.load_and_transform_text(list(texts), self.device))

    def encode_audio_query(self, value: Any) -> np.ndarray:
        self.load()
        return self._embed("AUDIO", self._data.load_and_transform_audio_data([str(value)], self.device))[0]
