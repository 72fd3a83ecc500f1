"""The Sounds tab: find sounds by words, by a sound (uploaded or recorded) or by a photo, and photos by a sound.

SoundActions holds the logic without Gradio (the edge where errors become messages); sounds_tab lays out
the tab. Each sound found plays inline from its best-matching part: the player gets a short MP3 preview
cut from the stored offset, so an hour-long recording is never copied into Gradio's cache whole.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import gradio as gr

from mmsearch.errors import BadMedia
from mmsearch.search import SearchResult
from mmsearch.service import MMSearch
from mmsearch.ui.present import friendly, shown_message
from mmsearch.ui.thumbs import Renditions, write_atomically
from mmsearch.ui.uploads import ImageUpload, SoundUpload

MAX_PLAYERS = 12
PREVIEW_S = 20.0
PREVIEW_RATE = 44_100
TARGETS = {"sounds": "audio", "photos": "image"}


def sound_label(hit: SearchResult) -> str:
    """'0.412 · rain.wav · 1:05, from 0:30': score, name, duration and where the preview starts."""
    label = f"{hit.score:.3f} · {hit.name} · {_clock(hit.duration_s or 0.0)}"
    return label + (f", from {_clock(hit.offset_s)}" if hit.offset_s else "")


def _clock(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


class Previews:
    """MP3 previews of sounds, cached on disk like image renditions: keyed by (path, mtime, size, offset)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def get(self, hit: SearchResult) -> str | None:
        try:
            st = os.stat(hit.path)
        except OSError:
            return None
        start = float(hit.offset_s or 0.0)
        key = hashlib.sha1(f"{hit.path}\0{st.st_mtime_ns}\0{st.st_size}\0{start}".encode()).hexdigest()
        out = self.folder / key[:2] / f"{key}.mp3"
        if out.is_file():
            return str(out)
        import soundfile as sf

        from mmsearch.media.audio import excerpt

        try:
            samples = excerpt(hit.path, PREVIEW_RATE, start, PREVIEW_S)
        except BadMedia:
            return None
        # a concurrent request never plays half a file
        return write_atomically(out, lambda fh: sf.write(fh, samples, PREVIEW_RATE, format="MP3",
                                                        subtype="MPEG_LAYER_III"))


@dataclass
class Heard:
    hits: list[SearchResult] = field(default_factory=list)
    media: list[str] = field(default_factory=list)  # a preview (sound) or a thumbnail (photo) per hit
    message: str = ""
    ok: bool = True

    def sounds(self) -> list[tuple[str, str]]:
        return [(m, sound_label(h)) for h, m in zip(self.hits, self.media) if h.modality == "audio"]

    def photos(self) -> list[tuple[str, str]]:
        return [(m, f"{h.score:.3f} · {h.name}") for h, m in zip(self.hits, self.media) if h.modality == "image"]


class SoundActions:
    def __init__(self, service: MMSearch, renditions: Renditions, expose: Callable[[list[str]], None]) -> None:
        self.service = service
        self.renditions = renditions
        self.previews = Previews(renditions.folder / "audio")  # inside the folder the server already serves
        self._expose = expose

    def by_text(self, query: str, k: int) -> Heard:
        return self._run(lambda: self.service.search_text(query or "", int(k), modality="audio"),
                         f"“{(query or '').strip()}”")

    def by_sound(self, clip: Any, k: int, target: str = "sounds") -> Heard:
        if clip is None:
            return Heard(message="Upload or record a sound first.", ok=False)
        modality = TARGETS.get(target, "audio")
        return self._run(lambda: self.service.search_audio(clip, int(k), modality=modality), "your sound")

    def by_photo(self, image: Any, k: int) -> Heard:
        if image is None:
            return Heard(message="Upload or paste a photo first.", ok=False)
        return self._run(lambda: self.service.search_image(image, int(k), modality="audio"), "your photo")

    def _run(self, search: Callable[[], list[SearchResult]], what: str) -> Heard:
        try:
            hits = search()
            library = self.service.library()
        except Exception as exc:  # noqa: BLE001 - the edge: every error becomes a message
            return Heard(message=friendly(exc), ok=False)
        self._expose([str(self.renditions.folder)])
        out = Heard()
        for hit in hits:
            media = None
            if library.contains(hit.path):
                media = self.previews.get(hit) if hit.modality == "audio" else self.renditions.get(hit.path)
            if media is not None:  # moved, deleted or unreadable since indexing: not shown
                out.hits.append(hit)
                out.media.append(media)
        out.message = shown_message(len(out.hits), len(hits), what)
        return out


def sounds_tab(actions: SoundActions, default_k: int, private: dict) -> dict[str, Any]:
    gr.Markdown("Find sounds by describing them, by playing one or by picking a photo; or find the photos "
                "that fit a sound. Each sound plays from its best-matching part.", elem_classes="mms-note")
    with gr.Row():
        with gr.Column(scale=2, min_width=280):
            query = gr.Textbox(placeholder="Describe a sound, e.g. “rain on a tin roof”", show_label=False,
                               container=False, elem_id="mms-s-query")
            text_btn = gr.Button("Find sounds", variant="primary", elem_id="mms-s-text")
            clip = SoundUpload(sources=["upload", "microphone"], label="…or search by a sound",
                               elem_id="mms-s-clip")
            target = gr.Radio(list(TARGETS), value="sounds", label="Find", elem_id="mms-s-target")
            clip_btn = gr.Button("Search by this sound", elem_id="mms-s-clip-btn")
            photo = ImageUpload(sources=["upload", "clipboard"], label="…or find sounds for a photo",
                                height=180, elem_id="mms-s-photo")
            photo_btn = gr.Button("Find sounds for this photo", elem_id="mms-s-photo-btn")
            k = gr.Slider(1, MAX_PLAYERS, value=min(default_k, MAX_PLAYERS), step=1, label="Results",
                          elem_id="mms-s-k")
        with gr.Column(scale=3):
            message = gr.Markdown("", elem_id="mms-s-message")
            players = [gr.Audio(interactive=False, visible=False, elem_id=f"mms-s-player{i}")
                       for i in range(MAX_PLAYERS)]
            gallery = gr.Gallery(show_label=False, columns=4, height="auto", allow_preview=False,
                                 object_fit="cover", visible=False, elem_id="mms-s-gallery")

    def show(found: Heard) -> list:
        sounds, photos = found.sounds(), found.photos()
        updates = [gr.update(value=path, label=label, visible=True) for path, label in sounds]
        updates += [gr.update(value=None, visible=False)] * (MAX_PLAYERS - len(updates))
        note = found.message if found.ok else f"⚠️ {found.message}"
        return [note, *updates[:MAX_PLAYERS], gr.update(value=photos, visible=bool(photos))]

    outs = [message, *players, gallery]
    text_search = lambda q, n: show(actions.by_text(q, n))  # noqa: E731
    text_btn.click(text_search, [query, k], outs, **private)
    query.submit(text_search, [query, k], outs, **private)
    clip_btn.click(lambda c, t, n: show(actions.by_sound(c, n, t)), [clip, target, k], outs, **private)
    photo_btn.click(lambda p, n: show(actions.by_photo(p, n)), [photo, k], outs, **private)
    return {"clip": clip, "message": message}
