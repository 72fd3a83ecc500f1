"""Watch-lists: concepts a moderator looks for, as text prompts and/or example files, each with a threshold;
a scan of the library that flags every item above a concept's threshold; threshold calibration.

Text prompts and example files get separate thresholds because their similarities live on different
scales: CLIP text-to-image cosines sit around 0.2-0.35, image-to-image ones around 0.5-1.0. A concept's
score for an item is its best-matching prompt or example; the item is flagged when that passes.

The watch-list is a JSON file in the library folder (people edit it, diff it, keep it in git); the flags
and the decisions on them live in LanceDB (review.py).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from mmsearch.encoders.base import Encoder
from mmsearch.errors import BadQuery, MMSearchError
from mmsearch.media.audio import supported_extensions as audio_extensions
from mmsearch.query.embed import embed_part
from mmsearch.query.parts import QueryPart
from mmsearch.store.library import Library
from mmsearch.store.table import SpaceTable

WATCHLIST_FILE = "watchlist.json"
TEXT_THRESHOLD = 0.25
EXAMPLE_THRESHOLD = 0.85


class ModerationError(MMSearchError):
    pass


@dataclass
class Concept:
    name: str
    texts: list[str] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)  # image or sound files
    threshold: float = TEXT_THRESHOLD  # cosine, for the text prompts
    example_threshold: float = EXAMPLE_THRESHOLD  # cosine, for the example files

    def check(self) -> None:
        if not self.name.strip():
            raise ModerationError("a concept needs a name, e.g. knife")
        if not self.texts and not self.examples:
            raise ModerationError(f"concept {self.name!r} has neither text nor examples: add --text or --example")
        for t in (self.threshold, self.example_threshold):
            if not -1.0 <= t <= 1.0:
                raise ModerationError(f"concept {self.name!r}: a threshold is a cosine between -1 and 1, got {t}")
        for e in self.examples:
            if not os.path.isfile(e):
                raise ModerationError(f"concept {self.name!r}: example file {e} does not exist")


@dataclass
class WatchList:
    concepts: list[Concept] = field(default_factory=list)

    @classmethod
    def load(cls, path: str | Path) -> "WatchList":
        p = Path(path)
        if not p.is_file():
            return cls()
        try:
            raw = json.loads(p.read_text())
            return cls([Concept(**c) for c in raw.get("concepts", [])])
        except (ValueError, TypeError) as exc:
            raise ModerationError(f"cannot read watch-list {p}: {exc}") from None

    def save(self, path: str | Path) -> None:
        p = Path(path)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(json.dumps({"version": 1, "concepts": [asdict(c) for c in self.concepts]}, indent=2))
        os.replace(tmp, p)

    def get(self, name: str) -> Concept:
        for c in self.concepts:
            if c.name == name:
                return c
        have = ", ".join(c.name for c in self.concepts) or "none yet"
        raise ModerationError(f"no concept named {name!r} in the watch-list (concepts: {have})")

    def put(self, concept: Concept) -> None:
        concept.check()
        self.concepts = [c for c in self.concepts if c.name != concept.name] + [concept]

    def remove(self, name: str) -> None:
        self.get(name)
        self.concepts = [c for c in self.concepts if c.name != name]


def watchlist_path(library: Library) -> Path:
    return library.data_dir / WATCHLIST_FILE


@dataclass
class Flag:
    path: str
    modality: str
    concept: str
    score: float
    threshold: float
    matched: str  # the prompt or example that scored highest
    table: str


@dataclass
class _Probe:
    concept: str
    label: str
    threshold: float
    vector: np.ndarray


class Scanner:
    """Scores library items against concepts. Receives the library and encoders; builds none of them."""

    def __init__(self, library: Library, encoders: Sequence[Encoder]) -> None:
        self.library = library
        self.encoders = list(encoders)

    def tables(self) -> list[tuple[SpaceTable, Encoder]]:
        out = []
        for modality in ("image", "audio"):
            for space in self.library.spaces(modality):
                table = self.library.table(modality, space)
                enc = next((e for e in self.encoders if e.space == space), None)
                if table is not None and enc is not None and table.count() > 0:
                    out.append((table, enc))
        return out

    def probes(self, concepts: Iterable[Concept], encoder: Encoder, modality: str) -> list[_Probe]:
        """The vectors a table of this modality is compared with: every prompt, every example it can embed."""
        out = []
        for c in concepts:
            if c.texts and encoder.supports("text"):
                vecs = encoder.encode_text(list(c.texts))
                out += [_Probe(c.name, f"text:{t}", c.threshold, v) for t, v in zip(c.texts, vecs)]
            for e in c.examples:
                kind = "audio" if Path(e).suffix.lower() in audio_extensions() else "image"
                if kind == modality and encoder.supports(kind):
                    vec = embed_part(encoder, QueryPart(kind, e))
                    out.append(_Probe(c.name, f"example:{Path(e).name}", c.example_threshold, vec))
        return out

    def scan(self, watchlist: WatchList, on_progress: Callable[[int, int], None] | None = None) -> list[Flag]:
        if not watchlist.concepts:
            raise ModerationError("the watch-list is empty: add a concept first "
                                  "(`mmsearch moderate watch add knife --text 'a knife'`)")
        best: dict[tuple[str, str], Flag] = {}
        tables = self.tables()
        for n, (table, enc) in enumerate(tables, 1):
            probes = self.probes(watchlist.concepts, enc, table.modality)
            if probes:
                for flag in self._scan_table(table, probes):
                    key = (flag.path, flag.concept)
                    if key not in best or flag.score - flag.threshold > best[key].score - best[key].threshold:
                        best[key] = flag
            if on_progress:
                on_progress(n, len(tables))
        return sorted(best.values(), key=lambda f: (f.concept, -f.score))

    @staticmethod
    def _scan_table(table: SpaceTable, probes: list[_Probe]) -> list[Flag]:
        matrix = np.stack([p.vector for p in probes]).astype(np.float32)
        thresholds = np.array([p.threshold for p in probes], np.float32)
        flags = []
        for batch, vectors in table.iter_vectors():
            scores = vectors @ matrix.T  # (rows, probes)
            margin = scores - thresholds
            paths = batch.column("path").to_pylist()
            for concept in dict.fromkeys(p.concept for p in probes):
                cols = [i for i, p in enumerate(probes) if p.concept == concept]
                pick = np.array(cols)[margin[:, cols].argmax(axis=1)]
                for row in np.nonzero(margin[np.arange(len(paths)), pick] >= 0)[0]:
                    p = probes[pick[row]]
                    flags.append(Flag(paths[row], table.modality, concept, float(scores[row, pick[row]]),
                                      p.threshold, p.label, table.name))
        return flags

    def scores(self, concept: Concept, paths: Sequence[str], kind: str) -> dict[str, float]:
        """A concept's score for some indexed files, from their stored vectors: prompts or examples only."""
        only = Concept(concept.name, concept.texts if kind == "text" else [],
                       concept.examples if kind == "examples" else [], -1.0, -1.0)
        out: dict[str, float] = {}
        for table, enc in self.tables():
            probes = self.probes([only], enc, table.modality)
            rows = table.rows_for_paths(paths, with_vector=True)
            if not probes or not rows:
                continue
            matrix = np.stack([p.vector for p in probes])
            for path, row in rows.items():
                score = float((np.asarray(row["vector"], np.float32) @ matrix.T).max())
                out[path] = max(score, out.get(path, -1.0))
        missing = [p for p in paths if p not in out]
        if missing:
            raise BadQuery(f"{len(missing)} labelled file(s) are not in the library, e.g. {missing[0]}; "
                           f"index their folder first")
        return out


# -- calibration ---------------------------------------------------------------------------------
@dataclass
class Point:
    threshold: float
    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float


@dataclass
class Calibration:
    concept: str
    kind: str  # "text" or "examples": which threshold it calibrates
    points: list[Point]
    best: Point
    scores: dict[str, float]
    labels: dict[str, bool]


def pr_points(scores: Sequence[float], labels: Sequence[bool]) -> list[Point]:
    """Precision and recall at every threshold that changes them (each distinct score), highest first."""
    s = np.asarray(scores, np.float64)
    y = np.asarray(labels, bool)
    if len(s) != len(y) or len(s) == 0:
        raise ModerationError("calibration needs labelled examples: at least one flagged and one fine")
    if y.all() or not y.any():
        raise ModerationError("calibration needs both kinds of example: some that should be flagged, some not")
    out = []
    for t in sorted(set(s.tolist()), reverse=True):
        pred = s >= t
        tp, fp, fn = int((pred & y).sum()), int((pred & ~y).sum()), int((~pred & y).sum())
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out.append(Point(round(t, 6), tp, fp, fn, round(precision, 4), round(recall, 4), round(f1, 4)))
    return out


def best_point(points: Sequence[Point], min_precision: float | None = None) -> Point:
    """The highest F1 (ties: the higher threshold); with min_precision, the best recall that keeps it."""
    if min_precision is not None:
        ok = [p for p in points if p.precision >= min_precision]
        if not ok:
            raise ModerationError(f"no threshold reaches precision {min_precision} on these examples")
        return max(ok, key=lambda p: (p.recall, p.threshold))
    return max(points, key=lambda p: (p.f1, p.threshold))


def calibrate(scanner: Scanner, concept: Concept, labels: dict[str, bool], kind: str | None = None,
              min_precision: float | None = None) -> Calibration:
    kind = kind or ("text" if concept.texts else "examples")
    if kind not in ("text", "examples"):
        raise ModerationError(f"calibrate the text or the examples threshold, not {kind!r}")
    if not (concept.texts if kind == "text" else concept.examples):
        raise ModerationError(f"concept {concept.name!r} has no {kind} to calibrate")
    paths = list(labels)
    scores = scanner.scores(concept, paths, kind)
    points = pr_points([scores[p] for p in paths], [labels[p] for p in paths])
    return Calibration(concept.name, kind, points, best_point(points, min_precision), scores, labels)


POSITIVE = {"1", "true", "yes", "y", "reject", "rejected", "flag", "bad", "violation", "positive"}
NEGATIVE = {"0", "false", "no", "n", "approve", "approved", "ok", "fine", "good", "negative"}


def read_labels(path: str | Path, root: str | Path | None = None) -> dict[str, bool]:
    """A CSV or JSON lines file of path,label (1/0, yes/no, reject/approve ...); relative paths from root."""
    import csv

    p = Path(path)
    base = Path(root) if root else p.parent
    rows: list[dict] = []
    if p.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        rows = [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
    else:
        with open(p, newline="") as fh:
            rows = list(csv.DictReader(fh))
    out = {}
    for n, r in enumerate(rows, 2):
        raw = str(r.get("label", "")).strip().lower()
        if raw not in POSITIVE | NEGATIVE or not r.get("path"):
            raise ModerationError(f"{p.name} line {n}: need a path and a label (1/0, yes/no, reject/approve), "
                                  f"got {r!r}")
        f = Path(str(r["path"])).expanduser()
        out[os.path.abspath(f if f.is_absolute() else base / f)] = raw in POSITIVE
    return out
