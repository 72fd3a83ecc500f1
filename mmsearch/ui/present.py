"""Text the UI shows: captions, the detail card, the library card and friendly error messages."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from mmsearch.errors import LibraryNotFound, MMSearchError, WeightsNotFound
from mmsearch.search import SearchResult

EMPTY_LIBRARY = (
    "Your library is empty. Index a folder of photos in the **Index** tab, "
    "or index the sample library to try mmsearch."
)


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def caption(hit: SearchResult) -> str:
    if hit.product:  # labelled as a product, with its price
        price = hit.product.get("price")
        shown = f" · {price:,.2f}" if isinstance(price, (int, float)) else (f" · {price}" if price else "")
        # title first: a gallery tile shows only the caption's start
        return f"{hit.score:.3f} · {hit.product.get('title') or hit.product.get('product_id')}{shown} · product"
    return f"{hit.score:.3f} · {hit.name}"


def shown_message(shown: int, found: int, what: str) -> str:
    """What a result list says about itself, including hits hidden since indexing."""
    msg = f"{shown} result{'s' if shown != 1 else ''} for {what}"
    if found > shown:
        msg += f" ({found - shown} hidden: moved or deleted since indexing; index the folder again)"
    return msg


def detail_markdown(hit: SearchResult) -> str:
    if hit.product:
        p = hit.product
        fields = "  \n".join(f"**{_escape(str(k))}** {_escape(str(v))}" for k, v in p.get("fields", {}).items()
                             if v is not None)
        return (f"### {_escape(p.get('title') or str(p.get('product_id')))}\n"
                f"**Product** `{p.get('product_id')}` in catalog **{_escape(str(p.get('catalog')))}**  \n"
                f"**Score** {hit.score:.3f}  \n" + fields)
    dims = f"{hit.width} × {hit.height} px" if hit.width and hit.height else "unknown size"
    if hit.modality == "video":
        from mmsearch.ui.videos import clock

        return (
            f"### {_escape(hit.name)}\n"
            f"**Moment** {clock(hit.start_s or 0.0)}–{clock(hit.end_s or 0.0)} · **score** {hit.score:.3f}  \n"
            f"**Video** {clock(hit.duration_s or 0.0)} · {dims} · {hit.fps or 0:g} fps · "
            f"{_escape(hit.codec or 'unknown codec')} · {human_bytes(hit.size)}  \n"
            f"**Path** `{hit.path}`"
        )
    return (
        f"### {_escape(hit.name)}\n"
        f"**Score** {hit.score:.3f}  \n"
        f"**Size** {dims} · {human_bytes(hit.size)} · {_escape(hit.format or 'unknown format')}  \n"
        f"**Path** `{hit.path}`"
    )


def status_markdown(status: dict | None) -> str:
    if status is None:
        return f"**No library yet.** {EMPTY_LIBRARY}"
    lines = [f"**Library** `{status['data_dir']}` · {human_bytes(status['size_bytes'])} on disk", ""]
    roots = status["roots"]
    lines.append("**Folders:** " + (", ".join(f"`{r}`" for r in roots) if roots else "none yet"))
    lines.append("")
    if not status["tables"]:
        lines.append("No images indexed yet.")
    for t in status["tables"]:
        noun = {"audio": "sounds", "video": "video moments"}.get(t["modality"], f"{t['modality']}s")
        lines.append(f"- **{t['rows']:,}** {noun} · {t['encoder']} `{t['model']}` "
                     f"({_escape(t['weights'])}, {t['dim']}-d)")
    warm = _warm_line(status.get("warm_up") or {})
    if warm:
        lines += ["", warm]
    return "\n".join(lines)


def _warm_line(warm: dict) -> str:
    """What the server's warm-up (loading the models ahead of the first search) has come to."""
    state = warm.get("state")
    if state == "loading":
        return "*Loading the search models: a search asked now waits until they are in memory.*"
    if state == "ready":
        return f"Search models loaded ({warm['seconds']:.1f} s)."
    if state == "failed":
        return f"⚠️ The search models could not be loaded: {one_line(warm.get('error') or '')}"
    return ""


def is_empty(status: dict | None) -> bool:
    return status is None or not status["roots"] or not any(t["rows"] for t in status["tables"])


def friendly(exc: BaseException) -> str:
    """One line a person can act on. Core messages name CLI flags; the UI speaks of its own tabs. An uploaded
    file is named by its own name, not by the server's upload folder."""
    if isinstance(exc, LibraryNotFound):
        return EMPTY_LIBRARY
    if isinstance(exc, WeightsNotFound):
        return one_line(f"The search model's weights are not available: {exc}")
    if isinstance(exc, MMSearchError):
        msg = str(exc).lstrip()
        return one_line(msg[:1].upper() + msg[1:])  # before the folders go: a file's name keeps its case
    return f"Something went wrong ({type(exc).__name__}). The server log has the details."


def one_line(text: str) -> str:
    return without_upload_folders(" ".join(str(text).split()))


def upload_folders() -> list[str]:
    """Where Gradio keeps uploads (gradio.utils.get_upload_folder, without importing gradio): each upload
    lies in <folder>/<content hash>/<its own name>."""
    folder = os.environ.get("GRADIO_TEMP_DIR") or str(Path(tempfile.gettempdir()) / "gradio")
    return list(dict.fromkeys([folder.rstrip(os.sep), str(Path(folder).resolve())]))


def without_upload_folders(text: str) -> str:
    """'/tmp/gradio/3f…/cat.png: …' -> 'cat.png: …'."""
    for folder in upload_folders():
        text = re.sub(re.escape(folder + os.sep) + r"[^/\s]+/", "", text)
    return text


def upload_name(path: object) -> str:
    """An uploaded file's own name (Gradio keeps it as the last part of the path)."""
    return os.path.basename(str(path))


def plain(markdown: str) -> str:
    """For toasts, which render text, not Markdown."""
    return markdown.replace("**", "").replace("`", "")


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("*", "\\*").replace("_", "\\_")
