"""A text query without torch: the query engine over exported ONNX text towers.

A cold `mmsearch search "a cat"` used to import torch and load the whole model (seconds) to embed a few words.
When the library is indexed, each OpenCLIP text tower is exported to ONNX next to the image tower's cache
(encoders/onnx_text_export.py). A text-only query on a library whose every searched table has such an export
runs here on ONNX Runtime and the `tokenizers` package alone, through the same engine, so it gets the same
answer. Anything else (a sound table in CLAP's space, a caption model, an image part) returns None and the
caller takes the full path.

LanceDB is imported without pandas (lazy_imports.py: pyarrow asks pandas about a value at import time,
0.3-0.4 s). The two slow steps of a cold query overlap: ONNX Runtime reads the newest exported towers (about a second for
ViT-B-32's 250 MB, mostly outside the GIL) on a thread while the main thread imports LanceDB and lists the
library's tables. A preloaded tower whose space no searched table has is dropped unused.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from mmsearch.errors import MMSearchError
from mmsearch.query.parts import QueryPart

if TYPE_CHECKING:
    from mmsearch.encoders.onnx_text import OnnxTextEncoder
    from mmsearch.location import Location
    from mmsearch.query.engine import QueryEngine

PRELOAD = 2  # newest exports read ahead; a library rarely has more spaces with text than this


def export_folder(models_dir: Path) -> Path:
    return Path(models_dir).expanduser() / "onnx"


class Preload:
    """The newest exported text towers, loading on a thread from the moment this is made."""

    def __init__(self, folder: Path, most: int = PRELOAD) -> None:
        from mmsearch.encoders.onnx_text import OnnxTextEncoder, newest_exports

        self.encoders: dict[str, OnnxTextEncoder] = {}
        for manifest in newest_exports(folder)[:most]:
            try:
                encoder = OnnxTextEncoder(manifest)
            except MMSearchError:
                continue
            self.encoders.setdefault(encoder.manifest["space_id"], encoder)
        self._thread = threading.Thread(target=self._load, name="mmsearch-text-preload", daemon=True)
        self._thread.start()

    def _load(self) -> None:
        for encoder in self.encoders.values():
            try:
                encoder.load()
            except Exception:  # noqa: BLE001 - the query's own load raises it again, with its message
                pass

    def take(self, space_id: str) -> OnnxTextEncoder | None:
        return self.encoders.get(space_id)


def light_engine(data_dir: "Path | Location", models_dir: Path, targets: Sequence[str], ann_threshold: int,
                 parts: Sequence[QueryPart]) -> QueryEngine | None:
    if not parts or any(p.kind != "text" for p in parts):
        return None
    folder = export_folder(models_dir)
    if not folder.is_dir():
        return None
    preload = Preload(folder)  # before the imports below: they take as long as reading the tower
    from mmsearch.lazy_imports import arrow_without_pandas

    arrow_without_pandas()  # this process answers one query and converts nothing to pandas
    from mmsearch.encoders.onnx_text import OnnxTextEncoder, find_text_export
    from mmsearch.query.engine import QueryEngine
    from mmsearch.search.vector import VectorSearch
    from mmsearch.store.library import Library

    try:
        library = Library(data_dir, create=False)
    except MMSearchError:
        return None
    scope = library
    if "product" in targets and any(n.startswith("catalog__") for n in library.table_names()):
        from mmsearch.workflows.catalog_search import WithCatalogs  # the same products as the full path

        scope = WithCatalogs(library)
    encoders: dict[str, OnnxTextEncoder] = {}
    for modality in targets:
        for table in scope.tables(modality):
            space_id = table.space.id
            if space_id in encoders:
                continue
            encoder = preload.take(space_id)
            if encoder is None:
                manifest = find_text_export(folder, space_id)
                if manifest is None:
                    return None  # a table this query would reach has no exported text tower
                encoder = OnnxTextEncoder(manifest)
            encoders[space_id] = encoder
    if not encoders:
        return None
    return QueryEngine(scope, list(encoders.values()), VectorSearch(ann_threshold, one_shot=True), [])
