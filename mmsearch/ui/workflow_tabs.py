"""The workflow tabs (Catalog, Review, Mood), laid out inside the app's gr.Tabs by one call from app.py."""

from __future__ import annotations

from typing import Callable

import gradio as gr

from mmsearch.server.policy import WebPolicy
from mmsearch.service import MMSearch
from mmsearch.ui.catalog_tab import CatalogActions, catalog_tab
from mmsearch.ui.mood_tab import MoodActions, mood_tab
from mmsearch.ui.review_tab import ReviewActions, review_tab
from mmsearch.ui.thumbs import Renditions


def workflow_tabs(service: MMSearch, renditions: Renditions, expose: Callable[[list[str]], None], default_k: int,
                  private: dict, policy: Callable[[], WebPolicy]) -> None:
    with gr.Tab("Catalog", id="catalog"):
        catalog_tab(CatalogActions(service, renditions, expose), default_k, private)
    with gr.Tab("Review", id="review"):
        review_tab(ReviewActions(service, renditions, expose), private)
    with gr.Tab("Mood", id="mood"):
        mood_tab(MoodActions(service, renditions, expose, policy), default_k, private)
