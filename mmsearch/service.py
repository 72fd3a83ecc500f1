"""Wires settings, encoder, library, indexer and searcher together for the CLI and the UI."""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

from PIL import Image

from mmsearch.bridge import BridgeProvider
from mmsearch.encoders import Encoder, create_encoder
from mmsearch.encoders.factory import build_encoder, extra_encoders_from_settings
from mmsearch.errors import LibraryBusy, LibraryNotFound, MMSearchError
from mmsearch.ingest import Indexer, IndexReport
from mmsearch.ingest.audio import AudioPipeline
from mmsearch.ingest.captions import zoo_pipelines
from mmsearch.ingest.indexer import ProgressFn, SkipFn
from mmsearch.query.embed import Projector
from mmsearch.query.engine import Answer, QueryEngine
from mmsearch.query.parts import SEARCHABLE, QueryOptions, QueryPart, like_targets
from mmsearch.query.textcache import fronted
from mmsearch.search import SearchResult, Searcher
from mmsearch.settings import Settings
from mmsearch.store import Library
from mmsearch.store.table import space_of

if TYPE_CHECKING:
    from mmsearch.workflows.catalog_search import WithCatalogs


def like_target(path: str) -> str:
    """What "more like this" searches: photos for a photo, sounds for a sound, videos for a video (or FILE@SECONDS)."""
    from mmsearch.media.video import supported_extensions as video_extensions
    from mmsearch.store.video_table import split_at

    suffix = Path(split_at(path)[0]).suffix.lower()
    return "audio" if suffix in audio_extensions() else "video" if suffix in video_extensions() else "image"


def encoder_from_settings(settings: Settings) -> Encoder:
    return build_encoder(settings.encoder, settings, model=settings.model, pretrained=settings.pretrained)


def audio_encoder_from_settings(settings: Settings) -> Encoder:
    return create_encoder(
        settings.audio_encoder,
        model=settings.audio_model,
        models_dir=str(settings.models_dir),
        offline=settings.is_offline,
        device=settings.device,
        query_overlap=settings.audio_overlap,
        max_query_s=settings.max_query_audio_s,
    )


@dataclass
class Maintenance:
    """The last index maintenance: what the status (and so the UI) shows after "updated"."""

    state: str = "never run"  # "running", "done", "skipped" (another writer holds the library), "failed"
    done: list[str] = field(default_factory=list)
    error: str | None = None  # why it failed, in words
    note: str | None = None  # why it was skipped
    finished_at: str | None = None  # ISO time, UTC
    seconds: float | None = None


@dataclass
class WarmUp:
    """Loading what the first search needs before anyone asks (a server does it once it listens)."""

    state: str = "not started"  # "loading", "ready", "skipped" (nothing indexed yet), "failed"
    seconds: float | None = None
    error: str | None = None  # why it failed, in words: the first search would say the same


WARM_UP_QUERY = "a photo"


class MMSearch:
    def __init__(self, settings: Settings, encoder: Encoder | None = None,
                 audio_encoder: Encoder | None = None) -> None:
        self.settings = settings
        self.encoder = encoder or encoder_from_settings(settings)
        self.audio_encoder = audio_encoder or (audio_encoder_from_settings(settings) if settings.audio else None)
        self._bridge: BridgeProvider | None = None
        self._library: Library | None = None
        self._searcher: Searcher | None = None
        self._scope: "WithCatalogs | None" = None
        self._lock = threading.Lock()
        # Its own lock: building the searcher opens the library, which takes self._lock.
        self._searcher_lock = threading.Lock()
        self.maintenance = Maintenance()
        self.warmth = WarmUp()
        self.extra_encoders: list[Encoder] = extra_encoders_from_settings(settings)  # more image models, captions
        self.projectors: list[Projector] = []
        self.text_export_problem: str | None = None  # why the text tower could not be exported, if it could not

    def library(self, create: bool = False) -> Library:
        with self._lock:
            if self._library is None:
                self._library = Library(self.settings.library_location(), create=create,
                                        consistency_s=self.settings.read_consistency_s)
            return self._library

    def scope(self) -> "WithCatalogs":
        """What a query searches: the library's tables and its catalogs' products (one view, kept)."""
        from mmsearch.workflows.catalog_search import WithCatalogs

        library = self.library()
        scope = self._scope
        if scope is None or scope._library is not library:
            scope = self._scope = WithCatalogs(library)
        return scope

    @property
    def searcher(self) -> Searcher:
        """One searcher (and one in-memory copy of the vectors) however many threads ask first."""
        searcher = self._searcher
        if searcher is None:
            with self._searcher_lock:
                if self._searcher is None:
                    s = self.settings
                    self._searcher = Searcher(self.library(), self.encoder, s.ann_threshold, s.max_image_pixels,
                                              vectors=s.vectors, rerank=s.vectors_rerank)
                searcher = self._searcher
        return searcher

    @property
    def last_maintenance_error(self) -> str | None:
        return self.maintenance.error

    def index(
        self, roots: Iterable[str | Path], on_progress: ProgressFn | None = None, on_skip: SkipFn | None = None
    ) -> IndexReport:
        s = self.settings
        _ = self.encoder.space  # missing weights fail here, before a library folder is created (loads nothing)
        running = getattr(self, "_maintainer", None)
        if running is not None and running.is_alive():  # our own background maintenance holds the writer
            running.join()  # lock for a moment: wait for it rather than refuse the user's second index
        audio = [AudioPipeline(self.audio_encoder, s.audio_overlap, s.audio_batch_size, s.workers)] \
            if self.audio_encoder is not None else []
        audio += zoo_pipelines(self.extra_encoders, s.max_image_pixels)
        audio += self._video_pipelines()
        indexer = Indexer(self.library(create=True), self.encoder, s.batch_size, s.workers, s.commit_every,
                          s.max_image_pixels, extra_pipelines=audio, source_options=s.storage_options)
        report = indexer.index(roots, on_progress, on_skip)
        if report.embedded or not self._text_exported():  # an unchanged re-run leaves the model unloaded
            self.export_text_tower()
        if s.ocr:  # text inside images joins the keyword index (optional, slow: see workflows/ocr.py)
            from mmsearch.workflows.ocr import OcrPass

            report.notes.append(OcrPass.for_service(self).run().summary())
        return report

    def _text_exported(self) -> bool:
        """True when this encoder's text tower is already exported (or is never exported): nothing to do."""
        if not self.settings.text_export or self.settings.encoder != "open-clip":
            return True
        from mmsearch.encoders.onnx_text import find_text_export
        from mmsearch.query.light import export_folder

        try:
            return find_text_export(export_folder(self.settings.models_dir), self.encoder.space.id) is not None
        except MMSearchError:
            return False

    def _video_pipelines(self) -> list:
        """Picture, then sound (which cuts the soundtrack at the moments the picture side found)."""
        s = self.settings
        if not s.video:
            return []
        from mmsearch.ingest.video import VideoPipeline, VideoSoundPipeline

        pipes = [VideoPipeline(self.encoder, s.video_limits(), s.video_rules(), s.batch_size)]
        if self.audio_encoder is not None:
            library = self.library(create=True)
            pipes.append(VideoSoundPipeline(self.audio_encoder, lambda: library.table("video", self.encoder.space),
                                            s.audio_overlap, s.audio_batch_size, s.workers))
        return pipes

    def export_text_tower(self) -> Path | None:
        """The text tower in ONNX next to the image tower's cache, so a cold CLI text query needs no torch
        (query/light.py). Best effort: a model that cannot be exported keeps its text queries on torch."""
        if not self.settings.text_export or self.settings.encoder != "open-clip":
            return None
        try:
            from mmsearch.encoders.onnx_text_export import export_text_query_path
            from mmsearch.query.light import export_folder

            return export_text_query_path(self.encoder, export_folder(self.settings.models_dir))
        except (MMSearchError, ImportError) as exc:
            self.text_export_problem = str(exc)
            return None

    def text_tower(self, encoder: Encoder) -> Encoder | None:
        """The exported ONNX text tower of this encoder's space, for its text queries (settings.text_backend)."""
        backend = self.settings.text_backend
        if backend == "torch" or not encoder.supports("text"):
            return None
        if backend == "auto":
            from mmsearch.encoders.device import pick_device

            if pick_device(self.settings.device).type != "cpu":
                return None  # a GPU's torch text tower is faster than ONNX Runtime on the CPU
        from mmsearch.encoders.onnx_text import OnnxTextEncoder, find_text_export
        from mmsearch.query.light import export_folder

        manifest = find_text_export(export_folder(self.settings.models_dir), encoder.space.id)
        return OnnxTextEncoder(manifest, spin=False) if manifest is not None else None

    def maintain_index(self, background: bool = False) -> threading.Thread | list[str]:
        """Keyword and ANN indexes, under the library's writer lock; in the app this runs in the
        background and never blocks a search. Its outcome, failure included, is kept in
        `self.maintenance` and shown by status(): in the background nobody else would see it."""
        if background:
            t = threading.Thread(target=self._maintain, args=(False,), name="mmsearch-maintain", daemon=True)
            self._maintainer = t
            t.start()
            return t
        return self._maintain(True)

    def _maintain(self, raise_errors: bool) -> list[str]:
        started = time.perf_counter()
        self.maintenance = Maintenance("running")
        outcome = Maintenance("done")
        try:
            outcome.done = self.searcher.maintain()
        except LibraryBusy as busy:  # the writer holding the library maintains the indexes when it is done
            outcome = Maintenance("skipped", note=f"index maintenance left to the current writer: {busy}")
            outcome.done = [outcome.note]
        except Exception as exc:  # noqa: BLE001 - recorded for the status; re-raised when a caller waits
            outcome = Maintenance("failed", error=f"index maintenance failed: {exc}")
            if raise_errors:
                raise
        finally:
            outcome.seconds = round(time.perf_counter() - started, 3)
            outcome.finished_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
            self.maintenance = outcome
        return outcome.done

    def warm_up(self) -> WarmUp:
        """Load the library's models and its resident vectors by running one text query through the path every
        search takes, so the first person to search does not wait for the loads (8.4-8.6 s at 100k rows with
        ViT-B-32 on 2 cores, bench/results/first_search.md). Skipped while nothing is indexed: the indexer loads
        the model itself. Never raises: the outcome is kept in `self.warmth` and shown by status()."""
        self.warmth = WarmUp("loading")
        started = time.perf_counter()
        outcome = WarmUp("ready")
        try:
            if not any(self.library().tables(m) for m in ("image", "audio", "video")):
                outcome = WarmUp("skipped")
            else:
                self.query([QueryPart("text", WARM_UP_QUERY)], QueryOptions(k=1))
        except LibraryNotFound:
            outcome = WarmUp("skipped")
        except Exception as exc:  # noqa: BLE001 - recorded for the status; the first search reports it again
            outcome = WarmUp("failed", error=str(exc) if isinstance(exc, MMSearchError) else repr(exc))
        outcome.seconds = round(time.perf_counter() - started, 3)
        self.warmth = outcome
        return outcome

    def encoders(self) -> list[Encoder]:
        """Every encoder whose space may have a table here: the main one plus extra configured ones."""
        extra = self.extra_encoders + self.audio_encoders()
        return [self.encoder] + [e for e in extra if e is not self.encoder]

    def audio_encoders(self) -> list[Encoder]:
        """The audio encoder, when its weights can be found here (a photo-only machine has none)."""
        return [self.audio_encoder] if self.audio_encoder is not None and self._audio_problem() is None else []

    def _audio_problem(self) -> MMSearchError | None:
        """Why the audio encoder cannot be used, or None. Resolves where its weights are; loads nothing."""
        if self.audio_encoder is None:
            return MMSearchError("audio is turned off (MMSEARCH_AUDIO=false); sounds need the audio model")
        try:
            _ = self.audio_encoder.space
        except MMSearchError as exc:
            return exc
        return None

    def bridge(self) -> BridgeProvider:
        """The audio <-> image bridge for the configured pair of models (fitted on first use)."""
        problem = self._audio_problem()
        if problem is not None:
            raise problem
        with self._lock:
            if self._bridge is None:
                self._bridge = BridgeProvider(self.audio_encoder, self.encoder, self.settings.models_dir,
                                              self.settings.bridge_vocabulary)
            return self._bridge

    def query(self, parts: Sequence[QueryPart], options: QueryOptions | None = None) -> Answer:
        projectors = list(self.projectors) + (self.bridge().projectors() if self.audio_encoders() else [])
        # Text goes through each encoder's front: an LRU cache per (space, text) and batching of concurrent calls.
        engine = QueryEngine(self.scope(), fronted(self.encoders(), tower=self.text_tower), self.searcher.vectors,
                             projectors)
        return engine.run(parts, options or QueryOptions(k=self.settings.default_k))

    # Every surface (CLI verbs, the web tabs, the JSON APIs) asks through query(): one path, one answer.
    def search_text(self, text: str, k: int | None = None, modality: str = "image") -> list[SearchResult]:
        return self._results(QueryPart("text", text), k, (modality,))

    def search_image(self, image: Image.Image | str | Path, k: int | None = None,
                     modality: str = "image") -> list[SearchResult]:
        """modality="audio": sounds that fit the picture, through the bridge."""
        return self._results(QueryPart("image", image), k, (modality,))

    def search_audio(self, clip: object, k: int | None = None, modality: str = "audio") -> list[SearchResult]:
        """Sounds like the clip (a path, or (rate, samples)); modality="image": photos that fit it."""
        return self._results(QueryPart("audio", clip), k, (modality,))

    def more_like_this(self, path: str, k: int | None = None) -> list[SearchResult]:
        return [h.result for h in self.like(path, k).hits]

    def like(self, path: str, k: int | None = None, targets: Sequence[str] | None = None) -> Answer:
        """More like an indexed file, from its stored vectors (photos for a photo, sounds for a sound)."""
        if targets is None:
            targets = like_targets(path)
        return self.query([QueryPart("like", path)], self.options(k, targets))

    def options(self, k: int | None = None, targets: Sequence[str] = SEARCHABLE, **more) -> QueryOptions:
        """The defaults every surface shares (the CLI's flags and the web's controls start from these)."""
        return QueryOptions(k=self.settings.default_k if k is None else int(k), targets=tuple(targets), **more)

    def _results(self, part: QueryPart, k: int | None, targets: Sequence[str]) -> list[SearchResult]:
        return [hit.result for hit in self.query([part], self.options(k, targets)).hits]

    def vector_setting(self) -> str:
        """The resident codec setting searches use: this process's (flag/env), else the library's, else auto."""
        return self.settings.vectors or self.library().vector_setting

    def set_vectors(self, value: str, create: bool = False, indexing: bool = False) -> None:
        """Store the library's codec setting. Running searchers re-encode from the stored float32 vectors
        within seconds (search/choice.py); nothing is embedded again. A Matryoshka length (int8@256) is
        refused, naming the table, when one of the library's models was not trained for it."""
        from mmsearch.encoders.matryoshka import TRAINED
        from mmsearch.search.codecs import BadVectorSetting, check_dims, parse_setting

        lib = self.library(create=create)
        dims = parse_setting(value)[1]
        if indexing and dims is not None and self.settings.encoder not in TRAINED:  # the model about to embed
            raise BadVectorSetting(f"--dims {dims}: encoder {self.settings.encoder} ({self.settings.model}) was not "
                                   f"trained for Matryoshka truncation; only {', '.join(sorted(TRAINED))} is. "
                                   f"Leave out --dims (or use a compressed codec, e.g. --vectors int8)")
        for modality in ("image", "audio", "video"):
            for space in lib.spaces(modality):
                table = lib.table(modality, space)
                if table is not None:
                    check_dims(table.name, space, dims)
        lib.set_vector_setting(value)
        self.settings.vectors = None if self.settings.vectors is None else value

    def vector_status(self, measure: bool = False) -> list[dict]:
        """Per table: the codec, bytes per item resident and (measure) recall@10 against float32 exact."""
        from mmsearch.search.choice import table_report

        lib, setting = self.library(), self.vector_setting()
        searcher = self._searcher
        out = []
        for modality in ("image", "audio"):
            for space in lib.spaces(modality):
                table = lib.table(modality, space)
                if table is None or table.count() == 0:
                    continue
                snap = searcher.vectors.loaded(table) if searcher is not None else None
                out.append(table_report(table, setting, snap, self.settings.vectors_rerank, measure))
        return out

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
        return {"data_dir": str(lib.location), "roots": lib.roots, "tables": tables,
                "vectors": self.vector_setting(),
                "size_bytes": lib.size_on_disk(), "maintenance": asdict(self.maintenance),
                "warm_up": asdict(self.warmth),
                "last_maintenance_error": self.maintenance.error}
