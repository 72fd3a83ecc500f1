"""Wires settings, encoder, library, indexer and searcher together for the CLI and the UI."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Iterable, Sequence

from PIL import Image

from mmsearch.encoders import Encoder, create_encoder
from mmsearch.ingest import Indexer, IndexReport
from mmsearch.ingest.indexer import ProgressFn, SkipFn
from mmsearch.query.embed import Projector
from mmsearch.query.engine import Answer, QueryEngine
from mmsearch.query.parts import QueryOptions, QueryPart
from mmsearch.search import SearchResult, Searcher
from mmsearch.settings import Settings
from mmsearch.store import Library
from mmsearch.store.table import space_of


def encoder_from_settings(settings: Settings) -> Encoder:
    return create_encoder(
        settings.encoder,
        model=settings.model,
        pretrained=settings.pretrained,
        models_dir=str(settings.models_dir),
        offline=settings.is_offline,
        device=settings.device,
    )


class MMSearch:
    def __init__(self, settings: Settings, encoder: Encoder | None = None) -> None:
        self.settings = settings
        self.encoder = encoder or encoder_from_settings(settings)
        self._library: Library | None = None
        self._searcher: Searcher | None = None
        self._lock = threading.Lock()
        self.extra_encoders: list[Encoder] = []
        self.projectors: list[Projector] = []

    def library(self, create: bool = False) -> Library:
        with self._lock:
            if self._library is None:
                self._library = Library(self.settings.data_dir, create=create)
            return self._library

    @property
    def searcher(self) -> Searcher:
        if self._searcher is None:
            self._searcher = Searcher(
                self.library(), self.encoder, self.settings.ann_threshold, self.settings.max_image_pixels
            )
        return self._searcher

    def index(
        self, roots: Iterable[str | Path], on_progress: ProgressFn | None = None, on_skip: SkipFn | None = None
    ) -> IndexReport:
        s = self.settings
        self.encoder.load()  # missing weights fail here, before a library folder is created
        indexer = Indexer(self.library(create=True), self.encoder, s.batch_size, s.workers, s.commit_every,
                          s.max_image_pixels)
        return indexer.index(roots, on_progress, on_skip)

    def maintain_index(self, background: bool = False) -> threading.Thread | list[str]:
        """Keyword and ANN indexes; in the app this runs in the background and never blocks a search."""
        if background:
            t = threading.Thread(target=self.searcher.maintain, name="mmsearch-maintain", daemon=True)
            t.start()
            return t
        return self.searcher.maintain()

    def encoders(self) -> list[Encoder]:
        """Every encoder whose space may have a table here: the main one plus extra configured ones."""
        return [self.encoder] + [e for e in self.extra_encoders if e is not self.encoder]

    def query(self, parts: Sequence[QueryPart], options: QueryOptions | None = None) -> Answer:
        engine = QueryEngine(self.library(), self.encoders(), self.searcher.vectors, self.projectors)
        return engine.run(parts, options or QueryOptions(k=self.settings.default_k))

    def search_text(self, text: str, k: int | None = None) -> list[SearchResult]:
        return self.searcher.by_text(text, self.settings.default_k if k is None else k)

    def search_image(self, image: Image.Image | str | Path, k: int | None = None) -> list[SearchResult]:
        return self.searcher.by_image(image, self.settings.default_k if k is None else k)

    def more_like_this(self, path: str, k: int | None = None) -> list[SearchResult]:
        return self.searcher.like(path, self.settings.default_k if k is None else k)

    def status(self) -> dict:
        lib = self.library()
        tables = []
        for name in lib.table_names():
            tbl = lib.db.open_table(name)
            found = space_of(tbl.schema)
            if found:
                modality, space = found
                tables.append({"table": name, "modality": modality, "rows": tbl.count_rows(),
                               **space.metadata()})
        return {"data_dir": str(lib.data_dir), "roots": lib.roots, "tables": tables,
                "size_bytes": lib.size_on_disk()}
