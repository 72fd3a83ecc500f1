"""Upload components that hand mmsearch the uploaded file untouched.

gr.Image decodes every upload with Pillow (and Pillow's own limits) before our code runs, so a decompression
bomb, a text file named .png or an empty file ends in "The upstream Gradio app has raised an exception".
ImageUpload is the same component in the page (preview, paste, drag and drop) but passes the path of the
uploaded file to the action, which decodes it with mmsearch's limits and messages (query/embed.py).
SoundUpload does the same for gr.Audio: a type="numpy" or format="wav" gr.Audio would decode (or convert)
the whole upload with Gradio's own decoder first; this one never does, so a 60-minute sound is streamed
and cut by mmsearch, and a broken one gets mmsearch's message.
Gradio's own check that the path lies in its upload folder still applies, so a client cannot name a server file.
Gradio builds a component's props for the page from the signature of its class's __init__; these take
**kwargs, so get_config reads the parent's signature (without it the page gets no label, id or sources, and
no upload box at all).
"""

from __future__ import annotations

from typing import Any

import gradio as gr


class ImageUpload(gr.Image):
    """gr.Image in the browser; the uploaded file's path on the server, never decoded by Gradio."""

    @classmethod
    def get_block_name(cls) -> str:
        return "image"  # the browser side is Gradio's own image component

    # No __init__ of its own: Gradio builds the browser props from gr.Image.__init__'s signature.

    def get_config(self, cls: type | None = None) -> dict[str, Any]:
        return super().get_config(cls or gr.Image)  # the page's props come from gr.Image's signature

    def preprocess(self, payload: Any) -> str | None:
        return None if payload is None else payload.path


class SoundUpload(gr.Audio):
    """gr.Audio in the browser (upload or record); the uploaded file's path, never decoded or converted."""

    @classmethod
    def get_block_name(cls) -> str:
        return "audio"  # the browser side is Gradio's own audio component

    # No __init__ of its own: Gradio builds the browser props from gr.Audio.__init__'s signature. Keep
    # format=None (the default): a format would make Gradio decode the upload to convert it.

    def get_config(self, cls: type | None = None) -> dict[str, Any]:
        return super().get_config(cls or gr.Audio)

    def preprocess(self, payload: Any) -> str | None:
        return None if payload is None else payload.path
