"""Turning one query part into a vector of a given space: directly, or through a bridge."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from mmsearch.encoders.base import EmbeddingSpace, Encoder
from mmsearch.errors import BadMedia, BadQuery
from mmsearch.media.images import decode_image, flatten
from mmsearch.query.parts import QueryPart

MAX_QUERY_PIXELS = 178_956_970
MIN_QUERY_EDGE = 8  # a smaller picture carries no content the model could match


class Projector(Protocol):
    """Maps vectors of one space into another (e.g. the CLAP-CLIP bridge)."""

    source: EmbeddingSpace
    target: EmbeddingSpace

    def project(self, vectors: np.ndarray) -> np.ndarray: ...


IMAGE_HINT = "use a picture file (JPEG, PNG, WebP, GIF, BMP or TIFF)"
SOUND_HINT = "use a sound file (WAV, FLAC, MP3, OGG or AIFF)"


def load_query_image(value: object, max_pixels: int = MAX_QUERY_PIXELS, what: str = "query image") -> Image.Image:
    """A query picture (a path or a PIL image), decoded with mmsearch's limits. Messages name the file by its
    own name (an upload's path is a server temp folder nobody needs to see) and say what to do."""
    if isinstance(value, Image.Image):
        return flatten(value)
    path = Path(str(value))
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadQuery(f"cannot read {what} {path.name} ({exc.strerror or exc}); upload it again") from None
    return decode_query_image(data, path.name, max_pixels, what)


def decode_query_image(data: bytes, name: str, max_pixels: int = MAX_QUERY_PIXELS,
                       what: str = "query image") -> Image.Image:
    """Bytes of a query picture -> the picture; BadQuery (one line: the file, why, what to do) otherwise."""
    try:
        decoded = decode_image(data, name, max_pixels)
    except BadMedia as bad:
        raise BadQuery(f"{what} {name}: {_image_problem(bad.reason, max_pixels)}") from None
    if min(decoded.width, decoded.height) < MIN_QUERY_EDGE:
        raise BadQuery(f"{what} {name} is only {decoded.width}x{decoded.height} pixels: too small to "
                       f"search by; use a picture at least {MIN_QUERY_EDGE} pixels on each side")
    return decoded.image


def _image_problem(reason: str, max_pixels: int) -> str:
    """Why a picture cannot be used and what to do, in one line; a too-large one in our words, not Pillow's."""
    reason = " ".join(reason.split())
    smaller = f"use a smaller copy (at most {max_pixels:,} pixels)"
    dims = re.match(r"(\d+)x(\d+) exceeds", reason)
    if dims:
        return f"{dims[1]}x{dims[2]} pixels is over the {max_pixels:,}-pixel limit; {smaller}"
    claimed = re.search(r"\((\d+) pixels\)", reason)
    if "bomb" in reason and claimed:
        return (f"its header claims {int(claimed[1]):,} pixels, over the {max_pixels:,}-pixel limit "
                f"(a decompression bomb?); {smaller}")
    if "bomb" in reason or "too large" in reason:
        return f"too large to decode; {smaller}"
    return f"{reason}; {IMAGE_HINT}"


def check_query_sound(value: object) -> None:
    """A query sound given as a file: refuse what no decoder here can read before any model runs, with one
    line naming the file and what to use instead. Reads the header only (a long file is cut later)."""
    if not isinstance(value, (str, Path)):
        return
    from mmsearch.media.audio import probe

    path = Path(value)
    try:
        probe(path)
    except BadMedia as bad:
        raise BadQuery(f"query sound {path.name}: {' '.join(bad.reason.split())}; {SOUND_HINT}") from None


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
    check_query_sound(part.value)
    return encode_audio(part.value)
