"""JSON endpoints for gradio_client and other programs: /search_text, /search_image, /search_sound, /search,
/index_folder.

Every endpoint answers {"ok": bool, "message": str, ...}; a domain error is ok=False with a message,
never an HTTP error. No `from __future__ import annotations` here: gr.api reads the return type from
the live signature, and a string annotation would not describe the JSON.
"""

from typing import Any

import gradio as gr

from mmsearch.ui.actions import Actions


def register_api(actions: Actions, default_k: int, image_input: gr.Image, sound_input: gr.Audio) -> None:
    """Add the endpoints to the Blocks being built. image_input and sound_input are the page's own upload
    components, so a client uploads its query file exactly as the browser does (never names a server path)
    and mmsearch, not Gradio, decodes it."""

    def search_text(query: str, k: int = default_k) -> dict[str, Any]:
        """Images that match a text description, best first, with cosine scores."""
        return actions.search_text(query, k, render=False).to_json()

    def index_folder(folder: str) -> dict[str, Any]:
        """Index (or update) the images under a folder on the server."""
        return actions.index_folder(folder).to_json()

    def search_image(image: str | None, k: float) -> dict[str, Any]:
        return actions.search_image(image, int(k), render=False).to_json()

    def search_sound(clip: str | None, k: float) -> dict[str, Any]:
        return actions.search_sound(clip, int(k), render=False).to_json()

    def search(query: dict) -> dict[str, Any]:
        """Any query, as POST /api/v1/search takes it: {"parts": [{"kind": "text", "value": "beach"},
        {"kind": "image", "data": "<base64>", "weight": 0.5}], "k": 12, "targets": ["image"], "where": [...]}."""
        return actions.query(query)

    gr.api(search_text, api_name="search_text")
    gr.api(search, api_name="search")
    gr.api(index_folder, api_name="index_folder", concurrency_id="index", concurrency_limit=1)
    with gr.Column(visible=False):
        k_input = gr.Number(value=default_k, precision=0, label="k")
        out = gr.JSON(label="results")
        trigger = gr.Button("search_image")
        sound_trigger = gr.Button("search_sound")
    trigger.click(search_image, [image_input, k_input], out, api_name="search_image",
                  api_description="Images that look like the uploaded one, best first, with cosine scores.")
    sound_trigger.click(search_sound, [sound_input, k_input], out, api_name="search_sound",
                        api_description="Sounds like the uploaded one and photos that fit it, best first.")
