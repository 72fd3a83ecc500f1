"""Turning one query part into a vector of a given space: directly, or through a bridge."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from mmsearch.encoders.base import EmbeddingSpace, Encoder
from mmsearch.errors import BadMedia, BadQuery
from mmsearch.media.images import decode_image, flatten
from mmsearch.query.parts import QueryPart

MAX_QUERY_PIXELS = 178_956_970


class Projector(Protocol):
    """Maps vectors of one space into another (e.g. the CLAP-CLIP bridge)."""

    source: EmbeddingSpace
    target: EmbeddingSpace

    def project(self, vectors: np.ndarray) -> np.ndarray: ...


def load_query_image(value: object) -> Image.Image:
    if isinstance(value, Image.Image):
        return flatten(value)
    path = Path(str(value))
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadQuery(f"cannot read query image {path}: {exc.strerror or exc}") from None
    try:
        return decode_image(data, str(path), MAX_QUERY_PIXELS).image
    except BadMedia as bad:
        raise BadQuery(f"query image {bad}") from None


def embed_part(encoder: Encoder, part: QueryPart) -> np.ndarray:
    """One normalised vector of the encoder's space for the part."""
    if part.kind == "text":
        return encoder.encode_text([str(part.value)])[0]
    if part.kind == "image":
        return encoder.encode_images([encoder.preprocess_image(load_query_image(part.value))])[0]
    if part.kind == "composed":
        encode_composed = getattr(encoder, "encode_composed", None)
        if encode_composed is None:
            raise BadQuery(f"{encoder.name} cannot embed an image together with an instruction")
        image, text = part.value
        return encode_composed([load_query_image(image)], [str(text)])[0]
    encode_audio = getattr(encoder, "encode_audio_query", None)
    if encode_audio is None:
        raise BadQuery(f"{encoder.name} cannot embed audio")
    return encode_audio(part.value)
