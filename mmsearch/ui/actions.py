"""What the buttons do, without any Gradio in it: the edge where domain errors become messages.

Every action returns an outcome with a message instead of raising, so neither the web page nor an
API client ever sees a traceback. Results are filtered to files inside the library's indexed roots
that still exist, and they carry rendered thumbnails rather than paths to originals.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from PIL import Image

from mmsearch.errors import MMSearchError
from mmsearch.ingest import IndexReport
from mmsearch.ingest.indexer import Progress
from mmsearch.query.engine import Answer, FusedHit
from mmsearch.query.parts import QueryPart
from mmsearch.search import SearchResult
from mmsearch.server.policy import WebPolicy
from mmsearch.server.api import with_thumb
from mmsearch.server.schema import api_record
from mmsearch.service import MMSearch
from mmsearch.ui.present import friendly, is_empty, shown_message
from mmsearch.ui.thumbs import PREVIEW_EDGE, Renditions, thumbs_dir
from mmsearch.ui.tiles import sound_tile
from mmsearch.ui.videos import VideoRenditions, player_html

log = logging.getLogger(__name__)

ProgressFn = Callable[[Progress], None]


@dataclass
class Found:
    hits: list[FusedHit] = field(default_factory=list)
    thumbs: list[str] = field(default_factory=list)  # one rendition per hit (a tile for a sound)
    message: str = ""
    ok: bool = True

    def to_json(self) -> dict:
        return {"ok": self.ok, "message": self.message,
                "results": [with_thumb(api_record(h.to_dict())) for h in self.hits]}


@dataclass
class Indexed:
    report: IndexReport | None
    message: str
    ok: bool = True

    def to_json(self) -> dict:
        r = self.report
        return {
            "ok": self.ok,
            "message": self.message,
            "roots": r.roots if r else [],
            "embedded": r.embedded if r else 0,
            "reused": r.reused if r else 0,
            "unchanged": r.unchanged if r else 0,
            "removed": r.removed if r else 0,
            "skipped": [{"path": p, "reason": why} for p, why in (r.skipped if r else [])],
        }


@dataclass
class LibraryState:
    status: dict | None  # MMSearch.status(), or None when no library exists yet
    message: str = ""

    @property
    def empty(self) -> bool:
        return is_empty(self.status)


class Actions:
    def __init__(self, service: MMSearch, sample_dir: Path, expose: Callable[[list[str]], None]) -> None:
        self.service = service
        self.sample_dir = Path(sample_dir)
        self.renditions = Renditions(thumbs_dir(service.settings), service.settings.max_image_pixels)
        self.videos = VideoRenditions(self.renditions.folder / "video")  # inside the folder the server serves
        self._expose = expose  # lets the web server serve the renditions folder (never originals)

    # -- searching ------------------------------------------------------------------------------
    # The same QueryParts and options as `mmsearch search`: the page, the API and the CLI give one answer.
    # render=False: for a program (the JSON endpoints), whose results carry thumbnail URLs, not pictures.
    def search_text(self, query: str, k: int, render: bool = True) -> Found:
        return self._search(lambda: self.service.query([QueryPart("text", query or "")], self.service.options(k)),
                            f"“{(query or '').strip()}”", render)

    def search_image(self, image: Image.Image | str | None, k: int, render: bool = True) -> Found:
        if image is None:
            return Found(message="Upload or paste an image to search by it.", ok=False)
        return self._search(lambda: self.service.query([QueryPart("image", image)], self.service.options(k)),
                            "your image", render)

    def search_sound(self, clip: str | None, k: int, render: bool = True) -> Found:
        """Photos and sounds for an uploaded sound (a file path, decoded and cut by mmsearch)."""
        if clip is None:
            return Found(message="Upload a sound to search by it.", ok=False)
        return self._search(lambda: self.service.query([QueryPart("audio", clip)], self.service.options(k)),
                            "your sound", render)

    def more_like_this(self, path: str | None, k: int) -> Found:
        if not path:
            return Found(message="Click a result first, then ask for more like it.", ok=False)
        name = os.path.basename(path)  # a video's moment: "party.mp4@4"
        return self._search(lambda: self.service.like(path, k), f"more like {name}")

    def _search(self, run: Callable[[], Answer], what: str, render: bool = True) -> Found:
        try:
            answer = run()
            library = self.service.library()
        except Exception as exc:  # noqa: BLE001 - the edge: everything becomes a message
            return Found(message=self._message(exc), ok=False)
        self._expose([str(self.renditions.folder)])
        shown = Found()
        for hit in answer.hits:
            if hit.result.modality != "product" and not library.contains(hit.result.path):
                continue  # outside the roots
            if not render:  # a program fetches pictures by URL: only check the file is still there
                if os.path.isfile(hit.result.picture):
                    shown.hits.append(hit)
                continue
            thumb = self.rendition(hit.result)
            if thumb is not None:  # moved, deleted or unreadable since indexing
                shown.hits.append(hit)
                shown.thumbs.append(thumb)
        shown.message = shown_message(len(shown.hits), len(answer.hits), what)
        if answer.notes:
            shown.message += " · " + " · ".join(answer.notes)
        return shown

    def query(self, body: dict) -> dict:
        """A whole query as JSON (the /search endpoint and POST /api/v1/search take the same shape)."""
        from mmsearch.server.api import SearchIn, run_query

        try:
            parsed = SearchIn.model_validate(body or {})
        except Exception as exc:  # noqa: BLE001 - a malformed body is a message too
            return {"ok": False, "message": f"the query is not valid: {exc}".splitlines()[0], "results": []}
        return run_query(self.service, parsed)

    def rendition(self, result: SearchResult) -> str | None:
        """A thumbnail for a photo; a labelled tile for a sound (the Sounds tab plays them)."""
        if result.modality == "audio":
            return sound_tile(self.renditions.folder / "tiles", result) if os.path.exists(result.path) else None
        if result.modality == "video":  # the frame that stands for its best moment
            return self.videos.thumb(result)
        return self.renditions.get(result.picture)  # a product shows its catalog image

    def preview(self, hit: SearchResult) -> str | None:
        if hit.modality == "audio":
            return self.rendition(hit)
        if hit.modality == "video":
            return self.videos.thumb(hit, PREVIEW_EDGE)
        return self.renditions.get(hit.picture, PREVIEW_EDGE)

    def player(self, hit: SearchResult) -> str:
        """HTML of a player opened at a video result's moment ("" for photos and sounds, or when it cannot)."""
        if hit.modality != "video" or not self.service.library().contains(hit.path):
            return ""
        clip = self.videos.clip(hit)
        return player_html(clip, hit) if clip is not None else ""

    # -- indexing -------------------------------------------------------------------------------
    def index_folder(self, folder: str, on_progress: ProgressFn | None = None) -> Indexed:
        folder = (folder or "").strip()
        if not folder:
            return Indexed(None, "Type the path of a folder to index.", ok=False)
        path = os.path.abspath(os.path.expanduser(folder))
        if self.service.settings.library_uri:  # a replica of a shared library: indexing is a job of its own
            return Indexed(None, f"This server searches {self.service.settings.library_uri}; index it with "
                                 "`mmsearch --data-dir URI index SRC [--ray auto]`, then `mmsearch maintain`.", ok=False)
        try:
            path = self.policy().check_index(path)  # before looking: the answer must not reveal what exists
            if not os.path.isdir(path):
                return Indexed(None, f"{path} is not a folder on this machine.", ok=False)
            report = self.service.index([path], on_progress)
            self.service.maintain_index(background=True)
        except Exception as exc:  # noqa: BLE001
            return Indexed(None, self._message(exc), ok=False)
        return Indexed(report, report.summary()[:1].upper() + report.summary()[1:])

    def index_sample(self, on_progress: ProgressFn | None = None) -> Indexed:
        if not self.sample_dir.is_dir():
            return Indexed(None, f"The sample library is not installed ({self.sample_dir} is missing).", ok=False)
        return self.index_folder(str(self.sample_dir), on_progress)

    def policy(self) -> WebPolicy:
        """What a web request may index or write: the operator's roots, else the library's and the sample's."""
        return WebPolicy.from_settings(self.service.settings, self._roots(), self.sample_dir)

    # -- library --------------------------------------------------------------------------------
    def library_state(self) -> LibraryState:
        try:
            return LibraryState(self.service.status())
        except Exception as exc:  # noqa: BLE001
            return LibraryState(None, self._message(exc))

    def _roots(self) -> list[str]:
        try:
            return self.service.library().roots
        except MMSearchError:
            return []

    @staticmethod
    def _message(exc: Exception) -> str:
        if not isinstance(exc, MMSearchError):
            log.exception("unexpected error in the web app")
        return friendly(exc)
