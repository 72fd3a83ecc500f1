"""Indexing with a library's extra models: more image models (a table each), and captions through a text model.

The text that goes with an image (its caption or catalogue description) is embedded by a text model.

The text of `photo.jpg` is its sidecar `photo.jpg.txt` or `photo.txt` (the layout of captioned data sets
and of product exports), else its file and folder names. The rows are image rows of their own table (one
per text model), so a text query reaches them through the text model and fuses with the image model's
table; an image query passes them by.

A caption edited without touching its image is picked up when the image changes (the plan compares the
image's size and mtime); `touch` the image to re-embed it sooner.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import Executor
from pathlib import Path

from mmsearch.encoders.base import Encoder
from mmsearch.errors import BadMedia
from mmsearch.ingest.pipelines import MediaPipeline, Prepared
from mmsearch.media.files import FileEntry, keyword_text
from mmsearch.media.images import supported_extensions as image_extensions

MAX_CAPTION_BYTES = 64 * 1024


def caption_for(path: str) -> str:
    """The sidecar caption of an image, or its file and folder names."""
    p = Path(path)
    for sidecar in (p.with_name(p.name + ".txt"), p.with_suffix(".txt")):
        try:
            if sidecar.is_file():
                with open(sidecar, "rb") as fh:
                    text = fh.read(MAX_CAPTION_BYTES).decode("utf-8", errors="replace").strip()
                if text:
                    return text
        except OSError:
            continue
    return keyword_text(path)


class CaptionPipeline(MediaPipeline):
    modality = "image"
    optional = True  # no text model here: index the pictures anyway

    def __init__(self, encoder: Encoder) -> None:
        super().__init__(encoder)
        if not hasattr(encoder, "encode_documents"):
            raise TypeError(f"{encoder.name} has no document side (encode_documents); it cannot embed captions")

    def extensions(self) -> frozenset[str]:
        return image_extensions()

    def prepare(self, entry: FileEntry, known: set[str]) -> Prepared:
        text = caption_for(entry.path)
        digest = "text:" + hashlib.blake2b(text.encode(), digest_size=16).hexdigest()  # same text, same vector
        return Prepared(entry, digest, {}, None if digest in known else text)

    def embed(self, items: list[Prepared], pool: Executor) -> list[dict | BadMedia]:
        vectors = self.encoder.encode_documents([i.payload for i in items])
        # The caption joins the file's words in the keyword column, so hybrid search matches it too.
        return [{"vector": v, "text": f"{i.payload} {keyword_text(i.entry.path)}"} for i, v in zip(items, vectors)]


def zoo_pipelines(encoders: list[Encoder], max_pixels: int) -> list[MediaPipeline]:
    """One more image table per extra image model, one caption table per text model."""
    from mmsearch.ingest.pipelines import ImagePipeline

    out: list[MediaPipeline] = []
    for enc in encoders:
        if enc.supports("image"):
            out.append(ImagePipeline(enc, max_pixels))
        elif hasattr(enc, "encode_documents"):
            out.append(CaptionPipeline(enc))
    return out
