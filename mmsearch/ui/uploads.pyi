"""Upload components that hand mmsearch the uploaded file untouched.

gr.Image decodes every upload with Pillow (and Pillow's own limits) before our code runs, so a decompression
bomb, a text file named .png or an empty file ends in "The upstream Gradio app has raised an exception".
ImageUpload is the same component in the page (preview, paste, drag and drop) but passes the path of the
uploaded file to the action, which decodes it with mmsearch's limits and messages (query/embed.py).
Gradio's own check that the path lies in its upload folder still applies, so a client cannot name a server file.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from gradio.events import Dependency

class ImageUpload(gr.Image):
    """gr.Image in the browser; the uploaded file's path on the server, never decoded by Gradio."""

    @classmethod
    def get_block_name(cls) -> str:
        return "image"  # the browser side is Gradio's own image component

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("type", "filepath")
        kwargs.setdefault("sources", ["upload", "clipboard"])
        super().__init__(**kwargs)

    def get_config(self, cls: type | None = None) -> dict[str, Any]:
        return super().get_config(cls or gr.Image)  # the page's props come from gr.Image's signature

    def preprocess(self, payload: Any) -> str | None:
        return None if payload is None else payload.path
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component
class SoundUpload(gr.Audio):
    """gr.Audio in the browser (upload or record); the uploaded file's path, never decoded or converted."""

    @classmethod
    def get_block_name(cls) -> str:
        return "audio"  # the browser side is Gradio's own audio component

    def __init__(self, **kwargs: Any) -> None:
        kwargs["type"] = "filepath"
        kwargs["format"] = None  # a format would make Gradio decode the upload to convert it
        kwargs.setdefault("sources", ["upload", "microphone"])
        super().__init__(**kwargs)

    def get_config(self, cls: type | None = None) -> dict[str, Any]:
        return super().get_config(cls or gr.Audio)

    def preprocess(self, payload: Any) -> str | None:
        return None if payload is None else payload.path
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component

    