"""Video results on the page: a thumbnail of the best moment's frame, and a player that starts at the moment.

Both are renditions written under the library's thumbs folder, the only folder the web server sends files
from (server/policy.py): the thumbnail is the moment's `frame_s` frame as WebP; the player plays a short
WebM clip around the moment (media/clips.py) with an HTML media fragment, `#t=FROM,TO`, so it opens at the
moment and stops at its end. Cached by (path, mtime, size, what), like image renditions.
"""

from __future__ import annotations

import hashlib
import html
import os
from pathlib import Path
from urllib.parse import quote

from mmsearch.errors import BadMedia
from mmsearch.media.clips import clip_window, write_clip
from mmsearch.media.timecode import clock
from mmsearch.media.video import frame_at
from mmsearch.search import SearchResult
from mmsearch.ui.thumbs import THUMB_EDGE, write_atomically


class VideoRenditions:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def _out(self, hit: SearchResult, what: str, suffix: str) -> Path | None:
        try:
            st = os.stat(hit.path)
        except OSError:
            return None
        key = hashlib.sha1(f"{hit.path}\0{st.st_mtime_ns}\0{st.st_size}\0{what}".encode()).hexdigest()
        return self.folder / key[:2] / f"{key}{suffix}"

    def thumb(self, hit: SearchResult, edge: int = THUMB_EDGE) -> str | None:
        """The best moment's frame, or None when the file is gone or unreadable."""
        at = hit.frame_s if hit.frame_s is not None else hit.start_s or 0.0
        out = self._out(hit, f"frame {at} {edge}", ".webp")
        if out is None:
            return None
        if out.is_file():
            return str(out)
        try:
            image = frame_at(hit.path, at, size=edge)
        except BadMedia:
            return None
        image.thumbnail((edge, edge))
        return write_atomically(out, lambda fh: image.save(fh, format="WEBP", quality=82))

    def clip(self, hit: SearchResult) -> tuple[str, float, float] | None:
        """(clip file, the moment's start and end in the clip's own time), or None."""
        start, end = float(hit.start_s or 0.0), float(hit.end_s or 0.0)
        lo, hi = clip_window(start, end, float(hit.duration_s or end))
        out = self._out(hit, f"clip {lo} {hi}", ".webm")
        if out is None:
            return None
        if not out.is_file():
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_suffix(f".{os.getpid()}.tmp.webm")
            try:
                write_clip(hit.path, tmp, lo, hi)
                os.replace(tmp, out)  # a concurrent request never plays half a clip
            except BadMedia:
                tmp.unlink(missing_ok=True)
                return None
        return str(out), round(start - lo, 3), round(end - lo, 3)


def player_html(clip: tuple[str, float, float], hit: SearchResult) -> str:
    """A muted, autoplaying player opened at the moment (media fragment), with its range and score."""
    path, a, b = clip
    src = f"gradio_api/file={quote(path)}#t={a:g},{b:g}"
    label = f"{clock(hit.start_s or 0.0)}–{clock(hit.end_s or 0.0)} · score {hit.score:.3f}"
    return (f'<figure class="mms-moment"><video id="mms-video" src="{html.escape(src)}" controls muted autoplay '
            f'playsinline preload="auto" data-start="{a:g}" data-end="{b:g}" style="width:100%"></video>'
            f'<figcaption>{html.escape(hit.name)} · {html.escape(label)}</figcaption></figure>')


def moment_caption(hit: SearchResult) -> str:
    """'0.412 · party.mp4 · 0:04–0:08'."""
    return f"{hit.score:.3f} · {hit.name} · {clock(hit.start_s or 0.0)}–{clock(hit.end_s or 0.0)}"
