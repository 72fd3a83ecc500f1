"""The Combine tab: several query parts with weights (negative ones subtract), filters, fusion settings,
one ranked list across images and sounds with a badge per modality and an explanation per result.

ComposeActions holds the logic without Gradio (the edge where errors become messages); compose_tab
lays out the tab.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import gradio as gr

from mmsearch.errors import BadQuery
from mmsearch.query.engine import FusedHit
from mmsearch.query.parts import SEARCHABLE, QueryOptions, QueryPart
from mmsearch.service import MMSearch
from mmsearch.ui.present import friendly
from mmsearch.ui.sounds import Previews
from mmsearch.ui.thumbs import Renditions
from mmsearch.ui.uploads import ImageUpload, SoundUpload

TEXT_SLOTS, IMAGE_SLOTS, AUDIO_SLOTS = 3, 2, 1
BADGE = {"image": "🖼 image", "audio": "🔊 audio"}
TABLE_HEADERS = ["#", "type", "file", "similarity", "fused", "matched by"]

TARGETS = {"all": SEARCHABLE, "images": ("image",), "audio": ("audio",), "videos": ("video",),
           "products": ("product",)}


@dataclass
class Composed:
    hits: list[FusedHit] = field(default_factory=list)
    thumbs: list[str | None] = field(default_factory=list)
    message: str = ""
    ok: bool = True

    def gallery(self) -> list[tuple[str, str]]:
        return [(t, f"{h.result.score:.3f} · {h.result.name}") for h, t in zip(self.hits, self.thumbs) if t]

    def table(self) -> list[list[Any]]:
        return [[i, BADGE.get(h.result.modality, h.result.modality), h.result.path, round(h.result.score, 3),
                 round(h.score, 4), h.explain()] for i, h in enumerate(self.hits, 1)]

    previews: list[str] = field(default_factory=list)  # excerpts of the sounds found, best first

    def sounds(self) -> list[str]:
        return self.previews


def _split(text: str) -> list[str]:
    return [p.strip() for chunk in (text or "").splitlines() for p in chunk.split(",") if p.strip()]


class ComposeActions:
    def __init__(self, service: MMSearch, renditions: Renditions, expose: Callable[[list[str]], None]) -> None:
        self.service = service
        self.renditions = renditions
        self.previews = Previews(renditions.folder / "audio")  # excerpts, never the originals
        self._expose = expose

    def run(self, texts: list[tuple[str, float]], images: list[tuple[Any, float]], audios: list[tuple[Any, float]],
            target: str, k: int, method: str, hybrid: bool, rerank: bool, mmr: float, min_score: float | None,
            where: str, folder: str, types: str, after: str, before: str,
            composed: list[tuple[Any, str, float]] = ()) -> Composed:
        try:
            parts = [QueryPart("text", t.strip(), float(w)) for t, w in texts if t and t.strip()]
            for image, instruction, w in composed:  # an image changed by words (models such as BGE-VL)
                if image is not None or (instruction or "").strip():
                    if image is None:
                        raise BadQuery("add the reference image for “" + instruction.strip() + "”")
                    parts.append(QueryPart("composed", (image, (instruction or "").strip()), float(w or 1.0)))
            parts += [QueryPart("image", img, float(w)) for img, w in images if img is not None]
            parts += [QueryPart("audio", snd, float(w)) for snd, w in audios if snd is not None]
            options = QueryOptions(
                k=int(k), targets=TARGETS.get(target, SEARCHABLE),
                method=method, hybrid=bool(hybrid), rerank=bool(rerank), mmr=None if mmr >= 1 else float(mmr),
                min_score=min_score, where=_split(where), folder=(folder or "").strip() or None,
                types=_split(types), after=(after or "").strip() or None, before=(before or "").strip() or None)
            answer = self.service.query(parts, options)
            library = self.service.library()
        except Exception as exc:  # noqa: BLE001 - the edge: every error becomes a message
            return Composed(message=friendly(exc), ok=False)
        self._expose([str(self.renditions.folder)])
        out = Composed()
        for hit in answer.hits:
            if hit.result.modality != "product" and not library.contains(hit.result.path):
                continue
            out.hits.append(hit)
            pictured = hit.result.modality in ("image", "product")  # a product shows its catalog image
            out.thumbs.append(self.renditions.get(hit.result.picture) if pictured else None)
            if hit.result.modality == "audio" and not out.previews:
                preview = self.previews.get(hit.result)
                if preview is not None:
                    out.previews.append(preview)
        n = len(out.hits)
        out.message = f"{n} result{'s' if n != 1 else ''} from {answer.lists} ranked lists in {answer.seconds * 1000:.0f} ms"
        if answer.notes:
            out.message += " · " + " · ".join(answer.notes)
        return out


def compose_tab(actions: ComposeActions, default_k: int, private: dict) -> None:
    gr.Markdown("Combine text, images and sounds. A negative weight pushes matching results down "
                "(e.g. *beach* + photo − *people*).", elem_classes="mms-note")
    with gr.Row():
        with gr.Column(scale=2):
            texts = []
            for i in range(TEXT_SLOTS):
                with gr.Row(equal_height=True):
                    texts.append(gr.Textbox(placeholder=["beach at sunset", "dog", "people"][i], show_label=False,
                                            container=False, scale=4, elem_id=f"mms-c-text{i}"))
                    texts.append(gr.Number(value=1.0 if i < 2 else -1.0, step=0.5, show_label=False, container=False,
                                           scale=1, min_width=70, elem_id=f"mms-c-textw{i}"))
            with gr.Row():
                images = []
                for i in range(IMAGE_SLOTS):
                    with gr.Column(min_width=160):
                        images.append(ImageUpload(label=f"image {i + 1}", height=140,
                                                  sources=["upload", "clipboard"], elem_id=f"mms-c-image{i}"))
                        images.append(gr.Number(value=1.0, step=0.5, label="weight", elem_id=f"mms-c-imagew{i}"))
                audios = []
                for i in range(AUDIO_SLOTS):
                    with gr.Column(min_width=200):
                        audios.append(SoundUpload(sources=["upload", "microphone"], label="sound",
                                                  elem_id=f"mms-c-audio{i}"))
                        audios.append(gr.Number(value=1.0, step=0.5, label="weight", elem_id=f"mms-c-audiow{i}"))
            with gr.Accordion("An image changed by words (needs a composed-query model such as bge-vl)",
                              open=False):
                with gr.Row():
                    c_image = ImageUpload(label="reference image", height=140, sources=["upload", "clipboard"],
                                          elem_id="mms-c-cimage")
                    with gr.Column():
                        c_text = gr.Textbox(label="what to change", placeholder="the same dress but in red",
                                            elem_id="mms-c-ctext")
                        c_weight = gr.Number(value=1.0, step=0.5, label="weight", elem_id="mms-c-cweight")
        with gr.Column(scale=1, min_width=260):
            target = gr.Radio(list(TARGETS), value="all", label="Search in", elem_id="mms-c-target")
            k = gr.Slider(1, 100, value=default_k, step=1, label="Results (k)")
            with gr.Accordion("Filters", open=False):
                where = gr.Textbox(label="Conditions", placeholder="width>=1000, format=PNG, tags~beach",
                                   elem_id="mms-c-where")
                folder = gr.Textbox(label="Folder", placeholder="/home/me/Pictures/2024")
                types = gr.Textbox(label="File types", placeholder="jpg, png, wav")
                with gr.Row():
                    after = gr.Textbox(label="Modified after", placeholder="2024-01-01")
                    before = gr.Textbox(label="Modified before", placeholder="2025-01-01")
            with gr.Accordion("Ranking", open=False):
                method = gr.Radio(["rrf", "weighted"], value="rrf", label="Fusion")
                hybrid = gr.Checkbox(value=True, label="Keyword matches (file names, tags)")
                rerank = gr.Checkbox(value=True, label="Exact rerank of the shortlist")
                mmr = gr.Slider(0, 1, value=1, step=0.05, label="Diversity (1 = off, lower = more varied)")
                min_score = gr.Number(value=None, label="Minimum similarity (blank = none)")
            run_btn = gr.Button("Search", variant="primary", elem_id="mms-c-run")
    message = gr.Markdown("", elem_id="mms-c-message")
    gallery = gr.Gallery(show_label=False, columns=6, height="auto", allow_preview=False, object_fit="cover",
                         elem_id="mms-c-gallery")
    player = gr.Audio(label="Top sound", interactive=False, visible=False, elem_id="mms-c-player")
    table = gr.Dataframe(headers=TABLE_HEADERS, value=[], interactive=False, wrap=True, elem_id="mms-c-table")

    def run(*values: Any) -> tuple:
        t, rest = values[: 2 * TEXT_SLOTS], values[2 * TEXT_SLOTS:]
        im, rest = rest[: 2 * IMAGE_SLOTS], rest[2 * IMAGE_SLOTS:]
        au, rest = rest[: 2 * AUDIO_SLOTS], rest[2 * AUDIO_SLOTS:]
        composed, rest = [tuple(rest[:3])], rest[3:]
        pairs = lambda xs: [(xs[i], xs[i + 1] if xs[i + 1] is not None else 1.0) for i in range(0, len(xs), 2)]  # noqa: E731
        found = actions.run(pairs(t), pairs(im), pairs(au), *rest, composed=composed)
        note = found.message if found.ok else f"⚠️ {found.message}"
        sounds = found.sounds()
        return (note, found.gallery(), gr.update(value=sounds[0] if sounds else None, visible=bool(sounds)),
                found.table())

    inputs = texts + images + audios + [c_image, c_text, c_weight] + [target, k, method, hybrid, rerank, mmr, min_score, where, folder, types,
                                        after, before]
    run_btn.click(run, inputs, [message, gallery, player, table], **private)
