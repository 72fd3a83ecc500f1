"""An anchor bridge: audio <-> image through a vocabulary of captions that both models can read.

How a vector crosses: a sound's CLAP vector is compared with the CLAP text embeddings of a few hundred
captions ("a dog barking", "waves crashing on a beach", ...). The closest captions, weighted by CLAP's own
softmax over them, stand for the sound; the same weights applied to the CLIP text embeddings of those
captions give a vector in CLIP's space, which then searches the photos exactly as a typed query would.
Image -> audio is the mirror image: CLIP reads the photo against the captions, CLAP's caption vectors
carry it over. The bridge is "fitted" by embedding the vocabulary once with both text encoders.

Why this and not a linear map (least squares / orthogonal Procrustes) fitted between the CLAP-text and
CLIP-text embeddings of the same captions:
- A few hundred captions cannot determine a 512x512 map: with n captions < d dimensions the fit is exact
  on their n-dimensional span and arbitrary outside it, so a linear map is no less bound to the vocabulary
  than anchors are, only less visibly so.
- A map fitted on text would be applied to sound and photo vectors, which sit apart from text in their own
  spaces (the "modality gap"); it would carry that gap over as an arbitrary offset. Here each model only
  does what it was trained for, matching its own modality to text, and the result is an ordinary
  text-side vector of the target space, so scores behave like those of a text query.
- It assumes nothing about the two text spaces being isometric, needs no training, is refitted in
  seconds when either model changes, serves both directions from one file, and can say why a photo
  matched a sound (the captions that carried it; see `explain`).
The price is coverage: a sound unlike every caption crosses poorly. The vocabulary (assets/bridge/
captions.txt) is plain text to extend; a changed vocabulary refits the bridge automatically.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal, Sequence

import numpy as np

from mmsearch.encoders.base import EmbeddingSpace, Encoder, l2_normalize
from mmsearch.errors import BridgeMismatch, MMSearchError

Direction = Literal["audio->image", "image->audio"]
FORMAT = 1
AUDIO_TEMPLATE = "the sound of {}"  # each side reads a caption the way its model was prompted in training
IMAGE_TEMPLATE = "a photo of {}"
TOP_K = 12  # captions that carry a vector across; the tail of the softmax is noise


def load_vocabulary(path: Path) -> tuple[list[str], str]:
    """Captions (one per line, '#' comments and blanks ignored, duplicates dropped) and their sha256."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise MMSearchError(f"cannot read the bridge vocabulary {path}: {exc.strerror or exc}") from None
    captions = list(dict.fromkeys(s.strip() for s in lines if s.strip() and not s.lstrip().startswith("#")))
    if len(captions) < 2:
        raise MMSearchError(f"the bridge vocabulary {path} needs at least two captions, one per line")
    return captions, hashlib.sha256("\n".join(captions).encode()).hexdigest()


def bridge_path(models_dir: Path, audio: EmbeddingSpace, image: EmbeddingSpace) -> Path:
    return Path(models_dir) / "bridges" / f"{audio.id}__{image.id}.npz"


@dataclass
class AnchorBridge:
    audio_space: EmbeddingSpace
    image_space: EmbeddingSpace
    captions: list[str]
    audio_text: np.ndarray  # (n, d_audio): the captions in the audio model's text space
    image_text: np.ndarray  # (n, d_image): the same captions in the image model's text space
    audio_scale: float  # each model's learned logit scale: its own softmax over the captions
    image_scale: float
    vocabulary_sha: str
    top_k: int = TOP_K

    @classmethod
    def fit(cls, audio: Encoder, image: Encoder, captions: Sequence[str], vocabulary_sha: str,
            batch_size: int = 64) -> "AnchorBridge":
        def embed(enc: Encoder, template: str) -> np.ndarray:
            texts = [template.format(c) for c in captions]
            return np.concatenate([enc.encode_text(texts[i:i + batch_size]) for i in range(0, len(texts), batch_size)])

        return cls(audio.space, image.space, list(captions), embed(audio, AUDIO_TEMPLATE), embed(image, IMAGE_TEMPLATE),
                   audio.logit_scale(), image.logit_scale(), vocabulary_sha)

    # -- crossing -------------------------------------------------------------------------------
    def weights(self, vectors: np.ndarray, direction: Direction) -> np.ndarray:
        """(m, n) caption weights: each row a softmax over the top-k captions of the source side."""
        anchors, scale = (self.audio_text, self.audio_scale) if direction == "audio->image" else \
            (self.image_text, self.image_scale)
        sims = np.atleast_2d(np.asarray(vectors, np.float32)) @ anchors.T
        k = min(self.top_k, sims.shape[1])
        kth = np.partition(sims, -k, axis=1)[:, -k][:, None]
        logits = np.where(sims >= kth, scale * (sims - sims.max(axis=1, keepdims=True)), -np.inf)
        w = np.exp(logits)
        return w / w.sum(axis=1, keepdims=True)

    def project(self, vectors: np.ndarray, direction: Direction) -> np.ndarray:
        """Source-space vectors -> unit vectors of the target space."""
        target = self.image_text if direction == "audio->image" else self.audio_text
        return l2_normalize(self.weights(vectors, direction) @ target)

    def explain(self, vector: np.ndarray, direction: Direction, n: int = 5) -> list[tuple[str, float]]:
        """The captions that carried one vector across, with their weights."""
        w = self.weights(vector, direction)[0]
        top = np.argsort(-w)[:n]
        return [(self.captions[i], round(float(w[i]), 4)) for i in top if w[i] > 0]

    # -- storage --------------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        meta = {"format": FORMAT, "audio_space": {**self.audio_space.metadata(), "id": self.audio_space.id},
                "image_space": {**self.image_space.metadata(), "id": self.image_space.id},
                "audio_scale": self.audio_scale, "image_scale": self.image_scale, "top_k": self.top_k,
                "vocabulary_sha256": self.vocabulary_sha, "templates": [AUDIO_TEMPLATE, IMAGE_TEMPLATE],
                "fitted_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        buf = io.BytesIO()
        np.savez(buf, meta=np.array(json.dumps(meta)), captions=np.array(self.captions),
                 audio_text=self.audio_text, image_text=self.image_text)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(buf.getvalue())
        os.replace(tmp, path)  # a crash leaves the old bridge or the new one, never half of one

    @classmethod
    def load(cls, path: Path, audio: EmbeddingSpace, image: EmbeddingSpace) -> "AnchorBridge":
        """Read a saved bridge; refuse it unless it was fitted for exactly this pair of models."""
        try:
            with np.load(path, allow_pickle=False) as npz:  # plain arrays only: loading runs no code
                meta = json.loads(str(npz["meta"]))
                captions = [str(c) for c in npz["captions"]]
                audio_text, image_text = npz["audio_text"], npz["image_text"]
        except (OSError, ValueError, KeyError) as exc:
            raise MMSearchError(f"cannot read the bridge {path} ({exc}); refit it with `mmsearch bridge fit`") from None
        fitted = (meta["audio_space"]["id"], meta["image_space"]["id"])
        if fitted != (audio.id, image.id) or meta.get("format") != FORMAT:
            raise BridgeMismatch(
                f"the bridge {path} was fitted for {_describe(meta['audio_space'])} <-> "
                f"{_describe(meta['image_space'])}, not {audio.describe()} <-> {image.describe()}; "
                f"refusing to map between other models' spaces. Run `mmsearch bridge fit` for this pair"
            )
        return cls(audio, image, captions, audio_text.astype(np.float32), image_text.astype(np.float32),
                   float(meta["audio_scale"]), float(meta["image_scale"]), meta["vocabulary_sha256"],
                   int(meta["top_k"]))


def _describe(meta: dict) -> str:
    return EmbeddingSpace.from_metadata(meta).describe()
