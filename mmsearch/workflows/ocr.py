"""OCR at index time: the text inside each image joins its row's keyword `text` column, so BM25 and
hybrid fusion find a photo of a sign, a screenshot or a scanned page by the words on it.

Off by default (MMSEARCH_OCR=true or `mmsearch index --ocr`): RapidOCR took about 0.9 s per 512-px photo
and 2.5 s per 1000x700 page here on 2 CPU cores, far more than embedding the image. Text found is cached
by content hash in the `ocr_text` table, so a renamed or copied file is not read again, and a re-index that
rewrites a row's text (the file changed) gets its OCR text back from the cache or a new read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import pyarrow as pa

from mmsearch.errors import BadMedia
from mmsearch.ingest.pipelines import read_file
from mmsearch.media.files import keyword_text
from mmsearch.media.images import decode_image
from mmsearch.media.ocr import OCR
from mmsearch.store.library import Library
from mmsearch.store.sql import in_clauses
from mmsearch.store.table import SpaceTable

if TYPE_CHECKING:
    from mmsearch.service import MMSearch

OCR_TABLE = "ocr_text"
SCHEMA = pa.schema([pa.field("hash", pa.string(), nullable=False), pa.field("text", pa.string()),
                    pa.field("seconds", pa.float32())])


@dataclass
class OcrReport:
    images: int = 0
    read: int = 0  # images OCR'd in this run
    cached: int = 0
    updated: int = 0  # rows whose keyword text changed
    with_text: int = 0
    seconds: float = 0.0
    ocr_seconds: float = 0.0
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        per = self.ocr_seconds / self.read if self.read else 0.0
        return (f"OCR: {self.images} images, {self.read} read ({per:.2f} s each), {self.cached} from cache, "
                f"{self.with_text} with text, {self.updated} rows updated in {self.seconds:.1f}s")


def searchable_text(path: str, ocr_text: str) -> str:
    return f"{keyword_text(path)} {ocr_text}".strip()


class OcrPass:
    """Receives the library, the image table and the OCR engine; builds none of them."""

    def __init__(self, library: Library, table: SpaceTable, ocr: OCR, max_pixels: int = 178_956_970) -> None:
        self.library = library
        self.table = table
        self.ocr = ocr
        self.max_pixels = max_pixels
        self.cache = library.db.create_table(OCR_TABLE, schema=SCHEMA, exist_ok=True)

    @classmethod
    def for_service(cls, service: "MMSearch") -> "OcrPass":
        return cls(service.library(), service.searcher.table(), OCR(threads=service.settings.workers),
                   service.settings.max_image_pixels)

    def run(self, on_progress: Callable[[int, int], None] | None = None) -> OcrReport:
        started = time.perf_counter()
        report = OcrReport()
        rows = self.table.table.search().select(["path", "hash", "text"]).limit(None).to_arrow().to_pylist()
        report.images = len(rows)
        known = self._cached({r["hash"] for r in rows})
        todo = {r["hash"]: r["path"] for r in rows if r["hash"] not in known}
        report.cached = len(rows) - len([r for r in rows if r["hash"] in todo])
        fresh = []
        for n, (digest, path) in enumerate(todo.items(), 1):
            try:
                image = decode_image(read_file(path), path, self.max_pixels).image
            except BadMedia as bad:
                report.skipped.append((bad.path, bad.reason))
                continue
            found = self.ocr.read(image)
            report.read += 1
            report.ocr_seconds += found.seconds
            known[digest] = found.text
            fresh.append({"hash": digest, "text": found.text, "seconds": found.seconds})
            if len(fresh) >= 64:  # an interrupted run keeps what it read
                self.cache.add(pa.Table.from_pylist(fresh, schema=SCHEMA))
                fresh = []
            if on_progress:
                on_progress(n, len(todo))
        if fresh:
            self.cache.add(pa.Table.from_pylist(fresh, schema=SCHEMA))
        report.with_text = sum(1 for r in rows if known.get(r["hash"]))
        stale = {r["path"]: searchable_text(r["path"], known[r["hash"]]) for r in rows
                 if r["hash"] in known and r["text"] != searchable_text(r["path"], known[r["hash"]])}
        self._update(stale)
        report.updated = len(stale)
        report.seconds = time.perf_counter() - started
        return report

    def _cached(self, hashes: set[str]) -> dict[str, str]:
        out = {}
        for where in in_clauses("hash", hashes):
            for r in self.cache.search().where(where).select(["hash", "text"]).limit(None).to_list():
                out[r["hash"]] = r["text"] or ""
        return out

    def _update(self, texts: dict[str, str]) -> None:
        if not texts:
            return
        paths = list(texts)
        for start in range(0, len(paths), 512):
            rows = self.table.table.search().where(
                next(in_clauses("path", paths[start:start + 512], 512))).limit(None).to_arrow()
            updated = rows.set_column(rows.schema.get_field_index("text"), "text",
                                      pa.array([texts[p] for p in rows.column("path").to_pylist()], pa.string()))
            self.table.upsert(updated)
        self.table.maintain(ann_threshold=10**12)  # fold the new text into the keyword index
