"""The Mood tab: a palette of moods (each a prompt ensemble) over images and sounds, combinable with
example files; results pinned into named boards; "more like this board"; a board exported as files or a
contact sheet; results exported as CSV / JSON lines.

MoodActions holds the logic without Gradio; mood_tab lays out the tab.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import gradio as gr

from mmsearch.query.engine import Answer, FusedHit
from mmsearch.query.parts import QueryOptions
from mmsearch.server.policy import WebPolicy
from mmsearch.service import MMSearch
from mmsearch.ui.present import friendly
from mmsearch.ui.thumbs import Renditions
from mmsearch.ui.videos import VideoRenditions, moment_caption
from mmsearch.workflows.boards import Boards, contact_sheet, export_folder, more_like_board
from mmsearch.workflows.export import export
from mmsearch.workflows.mood import MOODS, MoodSearch

EXAMPLE_SLOTS = 3


@dataclass
class Moody:
    hits: list[FusedHit] = field(default_factory=list)
    thumbs: list[str | None] = field(default_factory=list)
    message: str = ""
    ok: bool = True

    def gallery(self) -> list[tuple[str, str]]:
        return [(t, moment_caption(h.result) if h.result.modality == "video" else f"{h.result.score:.3f} · {h.result.name}")
                for h, t in zip(self.hits, self.thumbs) if t]

    def table(self) -> list[list[Any]]:
        return [[i, h.result.modality, h.result.path, round(h.score, 4), h.explain()] for i, h in enumerate(self.hits, 1)]


class MoodActions:
    def __init__(self, service: MMSearch, renditions: Renditions, expose: Callable[[list[str]], None],
                 policy: Callable[[], WebPolicy]) -> None:
        self.service = service
        self.renditions = renditions
        self.videos = VideoRenditions(renditions.folder / "video")  # the folder the search page's player uses
        self._expose = expose
        self._policy = policy  # where the web app may copy files

    def _options(self, k: int, target: str) -> QueryOptions:
        targets = {"images": ("image",), "audio": ("audio",), "videos": ("video",)}
        return QueryOptions(k=int(k), targets=targets.get(target, ("image", "audio", "video")))

    def search(self, moods: list[str], strength: float, examples: list[Any], target: str, k: int) -> Moody:
        try:
            given = [str(e) for e in examples if e]
            if not moods and not given:
                return Moody(message="Pick a mood from the palette, or give an example.", ok=False)
            search = MoodSearch.for_service(self.service, with_bridge=bool(given) and target != "images")
            parts = [p for e in given for p in search.example(e)]  # a video: an indexed moment, FILE@SECONDS
            answer = search.run([(m, float(strength)) for m in moods], parts, self._options(k, target))
        except Exception as exc:  # noqa: BLE001 - the edge
            return Moody(message=friendly(exc), ok=False)
        return self._shown(answer, " + ".join(moods) or "your examples")

    def like_board(self, board: str | None, moods: list[str], strength: float, target: str, k: int) -> Moody:
        if not board:
            return Moody(message="Pick a board first.", ok=False)
        try:
            search = MoodSearch.for_service(self.service, with_bridge=target != "images")
            answer = more_like_board(search, Boards(self.service.library()), board,
                                     [(m, float(strength)) for m in moods], self._options(k, target))
        except Exception as exc:  # noqa: BLE001
            return Moody(message=friendly(exc), ok=False)
        return self._shown(answer, f"more like board {board}")

    def _shown(self, answer: Answer, what: str) -> Moody:
        self._expose([str(self.renditions.folder)])
        thumbs = [self.renditions.get(h.result.path) if h.result.modality == "image" else
                  self.videos.thumb(h.result) if h.result.modality == "video" else None for h in answer.hits]
        return Moody(answer.hits, thumbs, f"{len(answer.hits)} results for {what}")

    def boards(self) -> list[str]:
        try:
            return list(Boards(self.service.library()).names())
        except Exception:  # noqa: BLE001 - no library yet
            return []

    def pin(self, board: str, paths: list[str]) -> str:
        try:
            n = Boards(self.service.library()).pin(board or "", paths)
        except Exception as exc:  # noqa: BLE001
            return f"⚠️ {friendly(exc)}"
        return f"Pinned {n} to board **{board.strip()}**."

    def sheet(self, board: str | None) -> tuple[str, str | None]:
        try:
            pins = Boards(self.service.library()).items(board or "")
            out = Path(tempfile.mkdtemp(prefix="mmsearch-board-")) / f"{board}.png"
            return f"Contact sheet of {len(pins)} items.", str(contact_sheet(pins, out, title=board))
        except Exception as exc:  # noqa: BLE001
            return f"⚠️ {friendly(exc)}", None

    def copy(self, board: str | None, folder: str) -> str:
        if not (folder or "").strip():
            return "⚠️ Type the folder to copy the board into."
        try:
            target = self._policy().export_folder(folder)
            pins = Boards(self.service.library()).items(board or "")
            return f"Copied {len(export_folder(pins, target))} files to `{target}`."
        except Exception as exc:  # noqa: BLE001
            return f"⚠️ {friendly(exc)}"

    @staticmethod
    def export(hits: list[FusedHit], fmt: str) -> str | None:
        if not hits:
            return None
        return str(export(hits, Path(tempfile.mkdtemp(prefix="mmsearch-export-")) / f"results.{fmt}"))


def mood_tab(actions: MoodActions, default_k: int, private: dict) -> None:
    gr.Markdown("Find pictures and sounds by how they feel. Each mood is several prompts averaged; add examples "
                "for “more like these, but calmer”. Pin what fits into a board.", elem_classes="mms-note")
    with gr.Row():
        with gr.Column(scale=2):
            moods = gr.CheckboxGroup(sorted(MOODS), label="Mood palette", elem_id="mms-m-moods")
            strength = gr.Slider(0.25, 4, value=1, step=0.25, label="Mood weight (against the examples)")
            with gr.Row():
                examples = [gr.File(label=f"example {i + 1}", type="filepath", height=90, elem_id=f"mms-m-ex{i}")
                            for i in range(EXAMPLE_SLOTS)]
        with gr.Column(scale=1, min_width=240):
            target = gr.Radio(["all", "images", "audio", "videos"], value="all", label="Search in",
                              elem_id="mms-m-target")
            k = gr.Slider(1, 100, value=default_k, step=1, label="Results (k)")
            run_btn = gr.Button("Search by mood", variant="primary", elem_id="mms-m-run")
    message = gr.Markdown("", elem_id="mms-m-message")
    gallery = gr.Gallery(show_label=False, columns=6, height="auto", allow_preview=False, object_fit="cover",
                         elem_id="mms-m-gallery")
    table = gr.Dataframe(headers=["#", "type", "file", "fused", "matched by"], value=[], interactive=False,
                         wrap=True, elem_id="mms-m-table")
    with gr.Row(equal_height=True):
        board = gr.Dropdown(actions.boards(), label="Board", allow_custom_value=True, scale=2, elem_id="mms-m-board")
        pin_btn = gr.Button("Pin all results", scale=1, elem_id="mms-m-pin")
        like_btn = gr.Button("More like this board", scale=1, elem_id="mms-m-like")
        sheet_btn = gr.Button("Contact sheet", scale=1, elem_id="mms-m-sheet")
    with gr.Row(equal_height=True):
        folder = gr.Textbox(label="Copy the board to a folder (inside the server's export folder)",
                            placeholder="handoff", scale=3)
        copy_btn = gr.Button("Copy files", scale=1)
        fmt = gr.Radio(["csv", "jsonl"], value="csv", label="Export results as", scale=1)
        export_btn = gr.Button("Export results", scale=1, elem_id="mms-m-export")
    board_note = gr.Markdown("", elem_id="mms-m-board-note")
    with gr.Row():
        sheet = gr.Image(label="Contact sheet", interactive=False, height=300, elem_id="mms-m-sheet-img")
        download = gr.File(label="Download", interactive=False, elem_id="mms-m-download")
    results = gr.State([])

    def shown(found: Moody) -> tuple:
        note = found.message if found.ok else f"⚠️ {found.message}"
        return note, found.gallery(), found.table(), found.hits

    def run(chosen: list[str], w: float, *rest: Any) -> tuple:
        files, (tgt, n) = list(rest[:EXAMPLE_SLOTS]), rest[EXAMPLE_SLOTS:]
        return shown(actions.search(chosen or [], w, files, tgt, n))

    def pin(name: str | None, hits: list[FusedHit]) -> tuple:
        note = actions.pin(name or "", [h.result.moment or h.result.path for h in hits]) if hits else \
            "⚠️ Search first, then pin."  # a video is pinned as the moment that matched
        return note, gr.update(choices=actions.boards(), value=name)

    outs = [message, gallery, table, results]
    run_btn.click(run, [moods, strength, *examples, target, k], outs, **private)
    like_btn.click(lambda b, m, w, t, n: shown(actions.like_board(b, m or [], w, t, n)),
                   [board, moods, strength, target, k], outs, **private)
    pin_btn.click(pin, [board, results], [board_note, board], **private)
    sheet_btn.click(actions.sheet, board, [board_note, sheet], **private)
    copy_btn.click(actions.copy, [board, folder], board_note, **private)
    export_btn.click(actions.export, [results, fmt], download, **private)
