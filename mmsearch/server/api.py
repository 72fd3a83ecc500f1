"""A plain, versioned HTTP JSON API beside the Gradio app, for curl, JavaScript and other services.

    GET  /api/v1/search?q=dog+on+a+beach&k=12&target=all        text search
    POST /api/v1/search   {"parts": [...], "k": 12, "targets": ["image"], "where": ["width>=1000"], ...}
    GET  /api/v1/thumb?file=/abs/path.jpg&edge=384                a rendition of an indexed photo (WebP)
    GET  /api/v1/thumb?file=/abs/clip.mp4&at=4.5                  a frame of an indexed video (WebP)
    GET  /api/v1/clip?moment=/abs/clip.mp4@4                      a small WebM around an indexed moment
    GET  /api/v1/status                                            tables, rows, models
    OpenAPI schema at /openapi.json, interactive docs at /docs.

Every answer is {"ok": bool, "message": str, ...}; a domain error is ok=false with a message (HTTP 200 for
a bad query, so a client reads one shape; 401/413 for auth and size, which come before any query).
Uploaded images and sounds travel base64-encoded inside the JSON and are decoded by mmsearch with its own
limits. The API runs the same query engine with the same options as the CLI and the web page.
No `from __future__ import annotations`: FastAPI reads the routes' annotations live.
"""


import base64
import logging
import binascii
import os
import secrets
import shutil
import tempfile
from typing import Any, Literal
from urllib.parse import urlencode

from pydantic import BaseModel, Field

from mmsearch.errors import BadQuery, MMSearchError
from mmsearch.query.textcache import TextQueueFull
from mmsearch.server.schema import api_record

log = logging.getLogger(__name__)
TARGETS = {"images": ("image",), "image": ("image",), "audio": ("audio",), "sounds": ("audio",),
           "videos": ("video",), "video": ("video",), "products": ("product",),
           "all": ("image", "audio", "video", "product")}


class PartIn(BaseModel):
    kind: Literal["text", "image", "audio", "like", "composed"]
    value: str | None = Field(None, description="The text; for `like`, an indexed file's path, or a video's "
                                                "moment as FILE@SECONDS (a result's `moment`)")
    data: str | None = Field(None, description="base64 bytes of an image or a sound (image, audio, composed)")
    name: str = Field("upload", description="The upload's file name, used in messages")
    instruction: str | None = Field(None, description="composed: what to change about the image")
    weight: float = 1.0


class SearchIn(BaseModel):
    parts: list[PartIn]
    k: int | None = None
    targets: list[Literal["image", "audio", "video", "product"]] = ["image", "audio", "video", "product"]
    method: Literal["rrf", "weighted"] = "rrf"
    rrf_k: float = 60.0
    norm: Literal["minmax", "zscore"] = "minmax"
    hybrid: bool = True
    rerank: bool = True
    shortlist: int = 100
    mmr: float | None = None
    min_score: float | None = None
    where: list[str] = []
    folder: str | None = None
    types: list[str] = []
    after: str | None = None
    before: str | None = None


def options_of(body: SearchIn, service: Any) -> Any:
    return service.options(body.k, tuple(body.targets), method=body.method, rrf_k=body.rrf_k, norm=body.norm,
                           hybrid=body.hybrid, rerank=body.rerank, shortlist=body.shortlist, mmr=body.mmr,
                           min_score=body.min_score, where=list(body.where), folder=body.folder,
                           types=list(body.types), after=body.after, before=body.before)


class Uploads:
    """Query uploads, decoded by mmsearch with its own limits (query/embed.py): images in memory, sounds in
    a temporary folder under the upload's own name (so a message names that file), removed after the query."""

    def __init__(self, max_pixels: int) -> None:
        self.max_pixels = max_pixels
        self._folders: list[str] = []

    @staticmethod
    def name_of(part: PartIn) -> str:
        """The upload's own file name, never a path: a client's name cannot point anywhere on the server."""
        name = os.path.basename(str(part.name).replace("\\", "/")).strip()
        name = "".join(c for c in name if c.isprintable() and c not in '<>:"|?*')
        return name.lstrip(".") or "upload"

    def _bytes(self, part: PartIn) -> bytes:
        name = self.name_of(part)
        if part.data is None:
            raise BadQuery(f"the {part.kind} part {name} needs `data` (the file's bytes, base64-encoded)")
        try:
            return base64.b64decode(part.data, validate=True)
        except (binascii.Error, ValueError):
            raise BadQuery(f"the {part.kind} part {name} is not valid base64; send the file's bytes "
                           f"base64-encoded") from None

    def image(self, part: PartIn):
        from mmsearch.query.embed import decode_query_image

        return decode_query_image(self._bytes(part), self.name_of(part), self.max_pixels)

    def sound(self, part: PartIn) -> str:
        from mmsearch.query.embed import check_query_sound

        data, name = self._bytes(part), self.name_of(part)
        folder = tempfile.mkdtemp(prefix="mmsearch-query-")
        self._folders.append(folder)
        path = os.path.join(folder, name)
        with open(path, "wb") as fh:
            fh.write(data)
        check_query_sound(path)  # before any model runs: the message names the upload, not this folder
        return path

    def clean(self, message: str) -> str:
        """A message without the temporary folders (they mean nothing to the caller)."""
        for folder in self._folders:
            message = message.replace(folder + os.sep, "")
        return message

    def close(self) -> None:
        for folder in self._folders:
            shutil.rmtree(folder, ignore_errors=True)


def parts_of(body: SearchIn, uploads: Uploads) -> list[Any]:
    from mmsearch.query.parts import QueryPart

    parts = []
    for p in body.parts:
        if p.kind in ("text", "like"):
            parts.append(QueryPart(p.kind, p.value or "", p.weight))
        elif p.kind == "image":
            parts.append(QueryPart("image", uploads.image(p), p.weight, label=f"image:{uploads.name_of(p)}"))
        elif p.kind == "audio":
            parts.append(QueryPart("audio", uploads.sound(p), p.weight, label=f"audio:{uploads.name_of(p)}"))
        else:
            parts.append(QueryPart("composed", (uploads.image(p), p.instruction or ""), p.weight))
    return parts


def run_query(service: Any, body: SearchIn) -> dict[str, Any]:
    """One query from JSON to JSON, for every program-facing surface."""
    uploads = Uploads(service.settings.max_image_pixels)
    try:
        return answer_json(service.query(parts_of(body, uploads), options_of(body, service)))
    except Exception as exc:  # noqa: BLE001 - the edge: every error becomes a message
        if not isinstance(exc, MMSearchError):
            log.exception("unexpected error in the JSON API")
        out = failure(exc)
        out["message"] = uploads.clean(out["message"])
        if isinstance(exc, TextQueueFull):
            out["busy"] = True
        return out
    finally:
        uploads.close()


def answer_json(answer: Any) -> dict[str, Any]:
    n = len(answer.hits)
    message = f"{n} result{'s' if n != 1 else ''} from {answer.lists} ranked lists"
    if answer.notes:
        message += " · " + " · ".join(answer.notes)
    return {"ok": True, "message": message, "took_ms": round(answer.seconds * 1000, 2),
            "results": [with_thumb(api_record(h.to_dict())) for h in answer.hits]}


def with_thumb(record: dict[str, Any]) -> dict[str, Any]:
    """Where a program fetches a photo result's picture (a rendition, never the original)."""
    if record.get("modality") in ("image", "product"):  # a product's thumb is its image's
        record["thumb"] = "/api/v1/thumb?" + urlencode({"file": record["file"]})
    if record.get("modality") == "video" and record.get("moment"):  # its moment's frame, and a clip opened at it
        from mmsearch.media.clips import clip_window

        at = record.get("frame_s") if record.get("frame_s") is not None else record.get("start_s") or 0.0
        record["thumb"] = "/api/v1/thumb?" + urlencode({"file": record["file"], "at": at})
        lo, _ = clip_window(record["start_s"], record["end_s"], record.get("duration_s") or record["end_s"])
        record["clip"] = (f"/api/v1/clip?{urlencode({'moment': record['moment']})}"
                          f"#t={record['start_s'] - lo:g},{record['end_s'] - lo:g}")
    return record


def failure(exc: Exception) -> dict[str, Any]:
    from mmsearch.ui.present import friendly

    return {"ok": False, "message": friendly(exc), "results": []}


def add_routes(app: Any, service: Any, renditions: Any, settings: Any = None) -> None:
    """Mount /api/v1 on a FastAPI app; service: MMSearch, renditions: ui.thumbs.Renditions, settings: the
    server's (auth, upload cap), by default the service's."""
    from fastapi import Depends, HTTPException, Query, Request
    from fastapi.concurrency import run_in_threadpool
    from fastapi.responses import FileResponse
    from fastapi.security import HTTPBasic, HTTPBasicCredentials

    settings = settings or service.settings
    basic = HTTPBasic(auto_error=False)
    max_bytes = settings.max_upload_mb * 1024 * 1024

    def authorised(request: Request, creds: HTTPBasicCredentials | None = Depends(basic)) -> None:
        declared = int(request.headers.get("content-length") or 0)
        if declared > max_bytes:
            raise HTTPException(413, f"the request is larger than the {settings.max_upload_mb} MB upload limit")
        pair = settings.auth_pair()
        if pair is None:
            return
        if creds is None or not (secrets.compare_digest(creds.username, pair[0])
                                 and secrets.compare_digest(creds.password, pair[1])):
            raise HTTPException(401, "sign in with the server's user and password (HTTP basic auth)",
                                headers={"WWW-Authenticate": 'Basic realm="mmsearch"'})

    guard = [Depends(authorised)]

    def run(body: SearchIn) -> Any:
        answer = run_query(service, body)
        if answer.get("busy"):  # the text model's queue is full: say so now rather than queue without end
            from fastapi.responses import JSONResponse

            return JSONResponse(answer, status_code=429, headers={"Retry-After": "1"})
        return answer

    @app.get("/api/v1/search", dependencies=guard, tags=["search"])
    async def search_get(q: str = Query(..., description="What to look for, in words"),
                         k: int | None = Query(None, ge=1, le=1000),
                         target: Literal["all", "images", "audio", "videos", "products"] = "all",
                         where: list[str] = Query([]), folder: str | None = None) -> Any:
        """Text search: the same answer as `mmsearch search "q"` and the Search tab."""
        body = SearchIn(parts=[PartIn(kind="text", value=q)], k=k, targets=list(TARGETS[target]),
                        where=where, folder=folder)
        return await run_in_threadpool(run, body)

    @app.post("/api/v1/search", dependencies=guard, tags=["search"])
    async def search_post(body: SearchIn) -> Any:
        """Any query: weighted text, image, sound, composed and more-like-this parts, filters and ranking."""
        return await run_in_threadpool(run, body)

    @app.get("/api/v1/thumb", dependencies=guard, tags=["files"])
    async def thumb(file: str, edge: int = Query(384, ge=16, le=1280), at: float | None = Query(None, ge=0)) -> Any:
        """A WebP rendition of an indexed photo, or of a video's frame at `at` seconds; 404 for anything that
        is not an indexed row."""
        path = await run_in_threadpool(_rendition, service, renditions, file, edge, at)
        if path is None:
            raise HTTPException(404, "not an indexed photo")
        return FileResponse(path, media_type="image/webp")

    @app.get("/api/v1/clip", dependencies=guard, tags=["files"])
    async def clip(moment: str) -> Any:
        """A short WebM around an indexed video moment (FILE@SECONDS, a result's `moment`); the moment starts
        where the result's `clip` URL fragment says. 404 for anything that is not an indexed moment."""
        path = await run_in_threadpool(_clip, service, renditions, moment)
        if path is None:
            raise HTTPException(404, "not an indexed video moment")
        return FileResponse(path, media_type="video/webm")

    @app.get("/api/v1/status", dependencies=guard, tags=["library"])
    async def status() -> dict[str, Any]:
        try:
            return {"ok": True, "message": "", **(await run_in_threadpool(service.status))}
        except MMSearchError as exc:
            return failure(exc)


def _video_row(service: Any, value: str) -> tuple[Any, dict] | None:
    """(library, the picture-side row) of an indexed video moment (FILE@SECONDS), checked against the library."""
    from mmsearch.store.video_table import split_at

    try:
        library = service.library()
    except MMSearchError:
        return None
    file = split_at(value)[0]
    if not os.path.isabs(file) or not library.contains(file):
        return None
    for space in library.spaces("video"):
        table = library.table("video", space)
        row = table.like_row(value) if table is not None else None
        if row is not None and row.get("frame_s") is not None:
            return library, row
    return None


def _clip(service: Any, renditions: Any, moment: str) -> str | None:
    from mmsearch.search.results import SearchResult
    from mmsearch.ui.videos import VideoRenditions

    found = _video_row(service, moment)
    if found is None:
        return None
    made = VideoRenditions(renditions.folder / "video").clip(SearchResult.from_row(found[1], 0.0, "video"))
    return made[0] if made else None


def _rendition(service: Any, renditions: Any, file: str, edge: int, at: float | None = None) -> str | None:
    if at is not None:  # a video's frame
        from mmsearch.search.results import SearchResult
        from mmsearch.ui.videos import VideoRenditions

        found = _video_row(service, f"{file}@{at:g}")
        if found is None:
            return None
        hit = SearchResult.from_row({**found[1], "frame_s": at}, 0.0, "video")
        return VideoRenditions(renditions.folder / "video").thumb(hit, edge)
    try:
        library = service.library()
    except MMSearchError:
        return None
    if not os.path.isabs(file):
        return None
    if library.contains(file):
        for table in library.tables("image"):
            if table.rows_for_paths([file]):
                return renditions.get(file, edge)
    for table in service.scope().tables("product"):  # a product's key: the image its catalog row names
        row = table.rows_for_paths([file]).get(file)
        if row is not None and row.get("image_file"):
            return renditions.get(row["image_file"], edge)
    return None
