"""The Gradio app: layout and wiring. What each button does lives in actions.py, text in present.py."""

from __future__ import annotations

# Importing this module runs mmsearch/ui/__init__.py first, which turns telemetry off before gradio loads.
import sys
from pathlib import Path
from typing import Any

import gradio as gr

from mmsearch.ingest.indexer import Progress
from mmsearch.query.engine import FusedHit
from mmsearch.server.api import add_routes
from mmsearch.server.http import Running, create_app, start, warm_up_in_background
from mmsearch.service import MMSearch, WarmUp
from mmsearch.settings import SAMPLE_LIBRARY, Settings
from mmsearch.ui.actions import Actions, Found, Indexed
from mmsearch.ui.api import register_api
from mmsearch.ui.compose import ComposeActions, compose_tab
from mmsearch.ui.evaluate import evaluate_tab
from mmsearch.ui.present import EMPTY_LIBRARY, caption, detail_markdown, plain, status_markdown
from mmsearch.ui.sounds import SoundActions, sounds_tab
from mmsearch.ui.thumbs import thumbs_dir
from mmsearch.ui.workflow_tabs import workflow_tabs
from mmsearch.ui.uploads import ImageUpload
from mmsearch.ui.videos import moment_caption

TITLE = "mmsearch"
MAX_K = 100
PRIVATE = {"api_visibility": "private"}  # UI events are not part of the public API
INDEX_EVENT = {"concurrency_id": "index", "concurrency_limit": 1, **PRIVATE}  # one indexer at a time
NO_SELECTION = "*Click a result to see it larger.*"

CSS = """
#mms-banner { border: 1px solid var(--color-accent); border-radius: var(--radius-lg);
              background: var(--color-accent-soft); padding: 10px 16px; align-items: center; }
#mms-detail img { object-fit: contain; }
.mms-note { color: var(--body-text-color-subdued); }
"""


def build_demo(settings: Settings, service: MMSearch | None = None, *, sample_dir: Path | None = None) -> gr.Blocks:
    """The app for one library. Building it loads no model: the encoder loads on the first query."""
    service = service or MMSearch(settings)
    default_k = max(1, min(settings.default_k, MAX_K))
    with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
        actions = Actions(service, sample_dir or SAMPLE_LIBRARY, lambda paths: _expose(demo, paths, settings))
        gr.Markdown(f"# {TITLE}\nSearch your photos by describing them, or by showing a similar picture.")
        with gr.Row(visible=False, equal_height=True, elem_id="mms-banner") as banner:
            gr.Markdown(EMPTY_LIBRARY)
            sample_btn = gr.Button("Index the sample library", variant="primary", scale=0, min_width=240)
        with gr.Tabs():
            with gr.Tab("Search", id="search"):
                s = _search_tab(actions, default_k)
            with gr.Tab("Sounds", id="sounds"):
                sounds = sounds_tab(SoundActions(service, actions.renditions,
                                                 lambda paths: _expose(demo, paths, settings)), default_k, PRIVATE)
            with gr.Tab("Combine", id="combine"):
                compose_tab(ComposeActions(service, actions.renditions, lambda paths: _expose(demo, paths, settings)),
                            default_k, PRIVATE)
            with gr.Tab("Evaluate", id="evaluate"):
                evaluate_tab(service, PRIVATE)
            workflow_tabs(service, actions.renditions, lambda paths: _expose(demo, paths, settings), default_k, PRIVATE,
                          actions.policy)
            with gr.Tab("Index", id="index"):
                folder, index_btn, summary, skipped = _index_tab()
            with gr.Tab("Library", id="library"):
                status_md = gr.Markdown("Loading…", elem_id="mms-status")
                with gr.Row():
                    refresh_btn = gr.Button("Refresh", size="sm", scale=0, min_width=100)
        register_api(actions, default_k, s["image"], sounds["clip"])
        demo.mms_routes = lambda app: add_routes(app, service, actions.renditions, settings)  # /api/v1 beside the UI
        demo.mms_service = service

        def show_state() -> tuple[str, Any]:
            state = actions.library_state()
            return status_markdown(state.status), gr.update(visible=state.empty)

        def after_index(done: Indexed) -> tuple:
            ready = gr.update(value="Library updated: search away.") if done.ok else gr.update()
            return _index_outputs(done) + show_state() + (ready,)

        def index_typed(folder_text: str, progress: gr.Progress = gr.Progress()) -> tuple:
            return after_index(actions.index_folder(folder_text, _progress_reporter(progress)))

        def index_sample(progress: gr.Progress = gr.Progress()) -> tuple:
            return after_index(actions.index_sample(_progress_reporter(progress)))

        index_outputs = [summary, skipped, status_md, banner, s["message"]]
        index_btn.click(index_typed, folder, index_outputs, **INDEX_EVENT)
        folder.submit(index_typed, folder, index_outputs, **INDEX_EVENT)
        sample_btn.click(index_sample, None, index_outputs, **INDEX_EVENT)
        refresh_btn.click(show_state, None, [status_md, banner], **PRIVATE)
        demo.load(show_state, None, [status_md, banner], **PRIVATE)
    # Gradio runs one event at a time unless told otherwise. Searches run side by side (each holds the GIL only
    # between numpy/torch calls), indexing one at a time (INDEX_EVENT), and the queue is bounded.
    return demo.queue(default_concurrency_limit=settings.web_concurrency, max_size=settings.web_queue)


def _search_tab(actions: Actions, default_k: int) -> dict[str, Any]:
    with gr.Row(equal_height=True):
        query = gr.Textbox(placeholder="Describe a photo, e.g. “a red bicycle by the sea”", show_label=False,
                           scale=5, container=False, autofocus=True, elem_id="mms-query")
        search_btn = gr.Button("Search", variant="primary", scale=1, min_width=120, elem_id="mms-search")
    with gr.Row():
        with gr.Column(scale=1, min_width=240):
            image = ImageUpload(image_mode=None, label="…or search by image", sources=["upload", "clipboard"],
                                height=200, elem_id="mms-image")
            image_btn = gr.Button("Search by image", size="md")
            k = gr.Slider(1, MAX_K, value=default_k, step=1, label="Results (k)", elem_id="mms-k")
        with gr.Column(scale=4):
            message = gr.Markdown("", elem_id="mms-message")
            gallery = gr.Gallery(show_label=False, columns=4, height="auto", allow_preview=False,
                                 object_fit="cover", buttons=[], elem_id="mms-gallery")
        with gr.Column(scale=2, min_width=280, elem_id="mms-detail"):
            big = gr.Image(show_label=False, interactive=False, height=320, buttons=["fullscreen"],
                           elem_id="mms-big")
            player = gr.HTML("", elem_id="mms-player")  # a video result plays here from its moment
            details = gr.Markdown(NO_SELECTION, elem_id="mms-details")
            more_btn = gr.Button("More like this", interactive=False, elem_id="mms-more")
    results = gr.State([])
    selected = gr.State(None)

    def show(found: Found) -> tuple:
        # Problems go in the line above the gallery, where the results would have been; no toast.
        items = [(t, moment_caption(h.result) if h.result.modality == "video" else caption(h.result))
                 for h, t in zip(found.hits, found.thumbs)]
        note = found.message if found.ok else f"⚠️ {found.message}"
        return items, found.hits, note

    def on_select(hits: list[FusedHit], evt: gr.SelectData) -> tuple:
        if not hits or evt.index is None or not 0 <= evt.index < len(hits):
            return None, "", NO_SELECTION, None, gr.update(interactive=False, value="More like this")
        hit = hits[evt.index].result
        if hit.modality == "video":  # the player takes the picture's place; "more like" means this moment
            more = gr.update(interactive=True, value="More like this moment")
            return gr.update(value=None, visible=False), actions.player(hit), detail_markdown(hit), hit.moment, more
        return (gr.update(value=actions.preview(hit), visible=True), "", detail_markdown(hit), hit.path,
                gr.update(interactive=True, value="More like this"))

    outs = [gallery, results, message]
    text_search = lambda q, n: show(actions.search_text(q, n))  # noqa: E731
    image_search = lambda img, n: show(actions.search_image(img, n))  # noqa: E731
    search_btn.click(text_search, [query, k], outs, **PRIVATE)
    query.submit(text_search, [query, k], outs, **PRIVATE)
    image_btn.click(image_search, [image, k], outs, **PRIVATE)
    image.upload(image_search, [image, k], outs, **PRIVATE)
    more_btn.click(lambda p, n: show(actions.more_like_this(p, n)), [selected, k], outs, **PRIVATE)
    gallery.select(on_select, results, [big, player, details, selected, more_btn], **PRIVATE)
    return {"image": image, "message": message}


def _index_tab() -> tuple:
    gr.Markdown("Add a folder of photos and sounds to the library. Indexing again only embeds new or changed "
                "files.",
                elem_classes="mms-note")
    with gr.Row(equal_height=True):
        folder = gr.Textbox(placeholder="/home/me/Pictures", show_label=False, scale=5, container=False,
                            elem_id="mms-folder")
        index_btn = gr.Button("Index", variant="primary", scale=1, min_width=120, elem_id="mms-index")
    summary = gr.Markdown("", elem_id="mms-summary")
    skipped = gr.Dataframe(headers=["skipped file", "reason"], value=[], visible=False, interactive=False,
                           wrap=True, max_height=320)
    return folder, index_btn, summary, skipped


def _index_outputs(done: Indexed) -> tuple:
    (gr.Info if done.ok else gr.Warning)(plain(done.message))
    rows = [[p, why] for p, why in done.report.skipped] if done.report else []
    note = done.message if done.ok else f"⚠️ {done.message}"
    return note, gr.update(value=rows, visible=bool(rows))


def _progress_reporter(progress: gr.Progress):
    desc = ["Indexing"]

    def report(p: Progress) -> None:
        if p.message:
            desc[0] = p.message
        if p.total:
            progress((p.done, p.total), desc=desc[0], unit="files")

    return report


def _expose(demo: gr.Blocks, paths: list[str], settings: Settings) -> None:
    """Let the server send files from the renditions folder, and from nothing else: originals are never
    served by path, whatever a caller asks (an indexed folder may hold keys, notes, anything)."""
    renditions = str(thumbs_dir(settings))
    for p in paths:
        if p == renditions and p not in demo.allowed_paths:
            demo.allowed_paths.append(p)


def allowed_paths(settings: Settings) -> list[str]:
    """Only what mmsearch renders (thumbnails, previews, sound excerpts): never an indexed root."""
    return [str(thumbs_dir(settings))]


def launch_options(settings: Settings) -> dict[str, Any]:
    """Options of gr.mount_gradio_app (the host and port belong to our own server, see mmsearch/server)."""
    return {
        "allowed_paths": allowed_paths(settings),
        "theme": gr.themes.Soft(primary_hue="indigo", secondary_hue="slate"),
        "css": CSS,
        "footer_links": ["api"],
        "auth": settings.auth_pair(),
        "max_file_size": f"{settings.max_upload_mb}mb",
    }


def launch(settings: Settings, *, demo: gr.Blocks | None = None, block: bool = True) -> Running:
    """Serve the app on settings.host:settings.port (loopback by default). block=False returns the running
    server (its url, and close()); block=True serves until Ctrl-C."""
    demo = demo or build_demo(settings)
    asgi = create_app(settings, demo, launch_options(settings), routes=getattr(demo, "mms_routes", None))
    running = start(settings, asgi, demo, record_in=Path(settings.data_dir).expanduser())
    service = getattr(demo, "mms_service", None)
    if settings.warm_up and service is not None:
        running.warming = warm_up_in_background(service, say=_say_warm if block else None)
    if block:
        print(f"mmsearch is serving on {running.url}", flush=True)
        running.wait()
    return running


def _say_warm(done: WarmUp) -> None:
    if done.state == "ready":
        print(f"models and vectors loaded in {done.seconds:.1f} s: searches answer at full speed", flush=True)
    elif done.state == "failed":
        print(f"warning: loading the models ahead of the first search failed: {done.error}", file=sys.stderr,
              flush=True)
