"""Watch-lists: concepts a moderator looks for, as text prompts and/or example files, each with a threshold;
a scan of the library that flags every item above a concept's threshold; threshold calibration.

Text prompts and example files get separate thresholds because their similarities live on different
scales: CLIP text-to-image cosines sit around 0.2-0.35, image-to-image ones around 0.5-1.0. A concept's
score for an item is its best-matching prompt or example; the item is flagged when that passes.

Thresholds are per (concept, kind, embedding space) for the same reason: a CLIP image table, a CLAP
sound table and a MiniLM caption table all read the prompt "a knife", and their cosines are different
numbers. A concept's `threshold` / `example_threshold` are the defaults for every space until that space
is calibrated; calibration measures each space on its own and stores its threshold under the space's id
(`space_thresholds`), so a watch-list saved before per-space thresholds loads unchanged.

Videos are scanned moment by moment: a video table's rows are moments (store/video_table.py), the picture
side in the image model's space and the soundtrack in the audio model's, so image prompts and examples meet
what a moment shows and sound prompts and examples what it sounds like. A video is one item of the queue per
concept (a reviewer decides on the file), flagged at its moment with the largest margin over the threshold;
the flag's path is that moment's key (`FILE#t=S,E`), so the queue and the page know where to play it.

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
from mmsearch.store.video_table import VideoTable

WATCHLIST_FILE = "watchlist.json"
TEXT_THRESHOLD = 0.25
EXAMPLE_THRESHOLD = 0.85
THRESHOLD_KINDS = ("text", "examples")


class ModerationError(MMSearchError):
    pass


@dataclass
class Concept:
    name: str
    texts: list[str] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)  # image or sound files
    threshold: float = TEXT_THRESHOLD  # cosine, for the text prompts, in a space not calibrated yet
    example_threshold: float = EXAMPLE_THRESHOLD  # cosine, for the example files, likewise
    # space id -> {"text": cosine, "examples": cosine}: what calibration found in that space
    space_thresholds: dict[str, dict[str, float]] = field(default_factory=dict)

    def threshold_for(self, kind: str, space: str | None) -> float:
        """The cut for prompts ("text") or examples ("examples") in one embedding space."""
        default = self.threshold if kind == "text" else self.example_threshold
        return float(self.space_thresholds.get(space or "", {}).get(kind, default))

    def set_threshold(self, kind: str, value: float, space: str | None = None) -> None:
        """space=None sets the default for every space that has not been calibrated."""
        if kind not in THRESHOLD_KINDS:
            raise ModerationError(f"a threshold is for {' or '.join(THRESHOLD_KINDS)}, not {kind!r}")
        if space is not None:
            self.space_thresholds.setdefault(space, {})[kind] = float(value)
        elif kind == "text":
            self.threshold = float(value)
        else:
            self.example_threshold = float(value)

    def check(self) -> None:
        if not self.name.strip():
            raise ModerationError("a concept needs a name, e.g. knife")
        if not self.texts and not self.examples:
            raise ModerationError(f"concept {self.name!r} has neither text nor examples: add --text or --example")
        if not isinstance(self.space_thresholds, dict):
            raise ModerationError(f"concept {self.name!r}: space_thresholds must map a space id to thresholds")
        cuts = [("", self.threshold), ("", self.example_threshold)]
        for space, kinds in self.space_thresholds.items():
            if not isinstance(kinds, dict) or set(kinds) - set(THRESHOLD_KINDS):
                raise ModerationError(f"concept {self.name!r}: the thresholds of space {space} must be "
                                      f"{{\"text\": cosine, \"examples\": cosine}}, got {kinds!r}")
            cuts += [(f" in space {space}", t) for t in kinds.values()]
        for where, t in cuts:
            if not isinstance(t, (int, float)) or not -1.0 <= t <= 1.0:
                raise ModerationError(f"concept {self.name!r}: a threshold is a cosine between -1 and 1, "
                                      f"got {t!r}{where}")
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
            # A file written before per-space thresholds has none: its thresholds stay every space's default.
            return cls([Concept(**c) for c in raw.get("concepts", [])])
        except (ValueError, TypeError, AttributeError) as exc:
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
    file: str = ""  # a video's file; its moment is `path` (FILE#t=S,E). Empty for photos and sounds.

    @property
    def item(self) -> str:
        """What a reviewer decides on: the file (a video's moments are one item)."""
        return self.file or self.path


_SIDES = {"image": " (picture)", "audio": " (sound)"}  # which side of a video moment matched


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
        for modality in ("image", "audio", "video"):
            for space in self.library.spaces(modality):
                table = self.library.table(modality, space)
                enc = next((e for e in self.encoders if e.space == space), None)
                if table is not None and enc is not None and table.count() > 0:
                    out.append((table, enc))
        return out

    @staticmethod
    def kind(table: SpaceTable, encoder: Encoder) -> str:
        """What a table's vectors are of: a video table in an image model's space holds moments' pictures,
        one in an audio model's space their soundtrack."""
        if table.modality != "video":
            return table.modality
        return "image" if encoder.supports("image") else "audio"

    def probes(self, concepts: Iterable[Concept], encoder: Encoder, modality: str) -> list[_Probe]:
        """The vectors a table of this kind (image or audio) is compared with: every prompt, every example
        it can embed."""
        out = []
        space = encoder.space.id  # thresholds are per space: this table's cosines are its own numbers
        for c in concepts:
            if c.texts and encoder.supports("text"):
                vecs = encoder.encode_text(list(c.texts))
                cut = c.threshold_for("text", space)
                out += [_Probe(c.name, f"text:{t}", cut, v) for t, v in zip(c.texts, vecs)]
            for e in c.examples:
                kind = "audio" if Path(e).suffix.lower() in audio_extensions() else "image"
                if kind == modality and encoder.supports(kind):
                    vec = embed_part(encoder, QueryPart(kind, e))
                    out.append(_Probe(c.name, f"example:{Path(e).name}", c.threshold_for("examples", space), vec))
        return out

    def scan(self, watchlist: WatchList, on_progress: Callable[[int, int], None] | None = None) -> list[Flag]:
        if not watchlist.concepts:
            raise ModerationError("the watch-list is empty: add a concept first "
                                  "(`mmsearch moderate watch add knife --text 'a knife'`)")
        best: dict[tuple[str, str], Flag] = {}
        moments: dict[tuple[str, str], set[str]] = {}  # a video's flagged moments, picture and sound together
        tables = self.tables()
        for n, (table, enc) in enumerate(tables, 1):
            kind = self.kind(table, enc)
            probes = self.probes(watchlist.concepts, enc, kind)
            if probes:
                for flag in self._scan_table(table, probes, kind):
                    key = (flag.item, flag.concept)
                    if flag.file:
                        moments.setdefault(key, set()).add(flag.path)
                    if key not in best or flag.score - flag.threshold > best[key].score - best[key].threshold:
                        best[key] = flag
            if on_progress:
                on_progress(n, len(tables))
        for key, found in moments.items():
            if len(found) > 1:
                best[key].matched += f"; {len(found)} moments flagged"
        return sorted(best.values(), key=lambda f: (f.concept, -f.score))

    @staticmethod
    def _scan_table(table: SpaceTable, probes: list[_Probe], kind: str) -> list[Flag]:
        matrix = np.stack([p.vector for p in probes]).astype(np.float32)
        thresholds = np.array([p.threshold for p in probes], np.float32)
        side = _SIDES[kind] if table.modality == "video" else ""
        flags = []
        for batch, vectors in table.iter_vectors():
            scores = vectors @ matrix.T  # (rows, probes)
            margin = scores - thresholds
            paths = batch.column("path").to_pylist()
            files = batch.column("file").to_pylist() if table.modality == "video" else [""] * len(paths)
            for concept in dict.fromkeys(p.concept for p in probes):
                cols = [i for i, p in enumerate(probes) if p.concept == concept]
                pick = np.array(cols)[margin[:, cols].argmax(axis=1)]
                for row in np.nonzero(margin[np.arange(len(paths)), pick] >= 0)[0]:
                    p = probes[pick[row]]
                    flags.append(Flag(paths[row], table.modality, concept, float(scores[row, pick[row]]),
                                      p.threshold, p.label + side, table.name, files[row] or ""))
        return flags

    def scores_by_space(self, concept: Concept, paths: Sequence[str], kind: str) -> dict[str, dict[str, float]]:
        """space id -> {path: score}: a concept's score for some indexed files in each space that holds
        them, from their stored vectors, prompts or examples only. Never maxed across spaces."""
        only = Concept(concept.name, concept.texts if kind == "text" else [],
                       concept.examples if kind == "examples" else [], -1.0, -1.0)
        out: dict[str, dict[str, float]] = {}
        for table, enc in self.tables():
            probes = self.probes([only], enc, self.kind(table, enc))
            vectors = _labelled_vectors(table, paths)
            if not probes or not vectors:
                continue
            matrix = np.stack([p.vector for p in probes])
            mine = out.setdefault(enc.space.id, {})
            for path, vecs in vectors.items():  # tables of one space (images and sounds): one scale
                score = float((np.asarray(vecs, np.float32) @ matrix.T).max())
                mine[path] = max(score, mine.get(path, -1.0))
        seen = {p for found in out.values() for p in found}
        missing = [p for p in paths if p not in seen]
        if missing:
            raise BadQuery(f"{len(missing)} labelled file(s) are not in the library, e.g. {missing[0]}; "
                           f"index their folder first")
        return out

    def scores(self, concept: Concept, paths: Sequence[str], kind: str, space: str | None = None
               ) -> dict[str, float]:
        """A concept's scores in one space (the only one that holds the files, when space is None)."""
        by_space = self.scores_by_space(concept, paths, kind)
        if space is None and len(by_space) == 1:
            space = next(iter(by_space))
        if space not in by_space:
            have = ", ".join(by_space) or "none"
            raise ModerationError(f"scores are per embedding space; name one of: {have}")
        return by_space[space]

    def space_names(self) -> dict[str, str]:
        return {enc.space.id: enc.space.describe() for _, enc in self.tables()}


def _labelled_vectors(table: SpaceTable, paths: Sequence[str]) -> dict[str, list]:
    """path -> the stored vectors that stand for it: a file's own; a video moment's (its key, as the queue
    holds it); every moment of a video named by its file (it scores as its best moment)."""
    out = {p: [row["vector"]] for p, row in table.rows_for_paths(paths, with_vector=True).items()}
    if isinstance(table, VideoTable):
        for file, vecs in table.vectors_of_files([p for p in paths if p not in out]).items():
            out[file] = vecs
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
    space: str = ""  # the embedding space (id) the scores and the threshold are in
    space_name: str = ""

    def apply(self, concept: Concept) -> None:
        """Store the suggested threshold for this space only; other spaces keep theirs."""
        concept.set_threshold(self.kind, self.best.threshold, self.space or None)


def pr_points(scores: Sequence[float], labels: Sequence[bool]) -> list[Point]:
    """Precision and recall at every threshold that changes them (each distinct score), highest first."""
    s = np.asarray(scores, np.float64)
    y = np.asarray(labels, bool)
    if len(s) != len(y):
        raise ModerationError(f"calibration got {len(s)} scores for {len(y)} labels")
    _need_both(labels)
    out = []
    for t in sorted(set(s.tolist()), reverse=True):
        pred = s >= t
        tp, fp, fn = int((pred & y).sum()), int((pred & ~y).sum()), int((~pred & y).sum())
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out.append(Point(round(t, 6), tp, fp, fn, round(precision, 4), round(recall, 4), round(f1, 4)))
    return out


def _need_both(labels: Sequence[bool]) -> None:
    if len(labels) == 0:
        raise ModerationError("calibration needs labelled examples: at least one flagged and one fine")
    if len(set(bool(v) for v in labels)) < 2:
        raise ModerationError("calibration needs both kinds of example: some that should be flagged, some not")


def best_point(points: Sequence[Point], min_precision: float | None = None) -> Point:
    """The highest F1 (ties: the higher threshold); with min_precision, the best recall that keeps it."""
    if min_precision is not None:
        ok = [p for p in points if p.precision >= min_precision]
        if not ok:
            raise ModerationError(f"no threshold reaches precision {min_precision} on these examples")
        return max(ok, key=lambda p: (p.recall, p.threshold))
    return max(points, key=lambda p: (p.f1, p.threshold))


def calibrate_spaces(scanner: Scanner, concept: Concept, labels: dict[str, bool], kind: str | None = None,
                     min_precision: float | None = None) -> list[Calibration]:
    """One calibration per embedding space that holds labelled files of both kinds.

    Each space's threshold is measured on that space's own cosines: one number fitted to the best
    score across a CLIP, a CLAP and a MiniLM table would be no space's threshold."""
    kind = kind or ("text" if concept.texts else "examples")
    if kind not in THRESHOLD_KINDS:
        raise ModerationError(f"calibrate the text or the examples threshold, not {kind!r}")
    if not (concept.texts if kind == "text" else concept.examples):
        raise ModerationError(f"concept {concept.name!r} has no {kind} to calibrate")
    _need_both(list(labels.values()))
    names = scanner.space_names()
    order = {enc.space.id: n for n, enc in enumerate(scanner.encoders)}  # the library's main model first
    out = []
    by_space = scanner.scores_by_space(concept, list(labels), kind)
    for space, scores in sorted(by_space.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])):
        paths = [p for p in labels if p in scores]
        if len({labels[p] for p in paths}) < 2:
            continue  # this space holds labelled files of one kind only: nothing to measure here
        points = pr_points([scores[p] for p in paths], [labels[p] for p in paths])
        out.append(Calibration(concept.name, kind, points, best_point(points, min_precision), scores,
                               {p: labels[p] for p in paths}, space, names.get(space, space)))
    if not out:
        raise ModerationError("calibration needs both kinds of example in one embedding space: some files that "
                              "should be flagged and some that should not, indexed by the same model")
    return out


def calibrate(scanner: Scanner, concept: Concept, labels: dict[str, bool], kind: str | None = None,
              min_precision: float | None = None, space: str | None = None) -> Calibration:
    """The calibration of one space: `space`, or the only one that holds the labelled files."""
    found = calibrate_spaces(scanner, concept, labels, kind, min_precision)
    if space is None and len(found) == 1:
        return found[0]
    for cal in found:
        if cal.space == space:
            return cal
    have = "; ".join(f"{c.space} ({c.space_name})" for c in found)
    raise ModerationError(f"the labelled files are in {len(found)} embedding spaces, each calibrated on its own; "
                          f"pick one of: {have}")


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
