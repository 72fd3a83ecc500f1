"""A text query without torch: the query engine over exported ONNX text towers.

A cold `mmsearch search "a cat"` used to import torch and load the whole model (seconds) to embed a few words.
When the library is indexed, each OpenCLIP text tower is exported to ONNX next to the image tower's cache
(encoders/onnx_text_export.py). A text-only query on a library whose every searched table has such an export
runs here on ONNX Runtime and the `tokenizers` package alone, through the same engine, so it gets the same
answer. Anything else (a sound table in CLAP's space, a caption model, an image part) returns None and the
caller takes the full path.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from mmsearch.errors import MMSearchError
from mmsearch.query.engine import QueryEngine
from mmsearch.query.parts import QueryPart

if TYPE_CHECKING:
    from mmsearch.location import Location


def export_folder(models_dir: Path) -> Path:
    return Path(models_dir).expanduser() / "onnx"


def light_engine(data_dir: "Path | Location", models_dir: Path, targets: Sequence[str], ann_threshold: int,
                 parts: Sequence[QueryPart]) -> QueryEngine | None:
    if not parts or any(p.kind != "text" for p in parts):
        return None
    from mmsearch.encoders.onnx_text import OnnxTextEncoder, find_text_export
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
            if table.space.id in encoders:
                continue
            manifest = find_text_export(export_folder(models_dir), table.space.id)
            if manifest is None:
                return None  # a table this query would reach has no exported text tower
            encoders[table.space.id] = OnnxTextEncoder(manifest)
    if not encoders:
        return None
    return QueryEngine(scope, list(encoders.values()), VectorSearch(ann_threshold, one_shot=True), [])
