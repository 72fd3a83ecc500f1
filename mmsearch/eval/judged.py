"""Judged query files (JSONL or CSV) and caption benchmarks (Flickr30k / MSCOCO style).

JSONL, one query a line:
    {"query": "dog on a beach", "relevant": ["beach/dog1.jpg", "beach/dog2.jpg"]}
    {"image": "queries/red-dress.jpg", "query": "but in blue", "relevant": {"shop/blue.jpg": 2, "shop/navy.jpg": 1}}
    {"audio": "clips/rain.wav", "relevant": ["sounds/rain-roof.flac"], "type": "sound"}
CSV with a header: query,image,audio,relevant,type; `relevant` holds paths separated by `;`, each
optionally `path:grade`. Relative paths are resolved against the judged file's folder (or --root).
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from mmsearch.errors import BadQuery


@dataclass
class Judged:
    relevant: dict[str, float]
    text: str | None = None
    image: str | None = None
    audio: str | None = None
    type: str = ""
    line: int = 0

    def __post_init__(self) -> None:
        if not self.type:
            self.type = "+".join(k for k, v in (("text", self.text), ("image", self.image), ("audio", self.audio)) if v)

    def label(self) -> str:
        return self.text or os.path.basename(self.image or self.audio or "") or f"line {self.line}"


@dataclass
class JudgedSet:
    source: str
    queries: list[Judged] = field(default_factory=list)


def _abs(path: str, base: Path) -> str:
    p = Path(path).expanduser()
    return os.path.abspath(p if p.is_absolute() else base / p)


def _grades(raw: object, base: Path, where: str) -> dict[str, float]:
    if isinstance(raw, str):
        raw = [r for r in raw.split(";") if r.strip()]
    if isinstance(raw, list):
        out = {}
        for item in raw:
            path, sep, grade = str(item).strip().rpartition(":")
            if sep and grade.replace(".", "", 1).isdigit():
                out[_abs(path, base)] = float(grade)
            else:
                out[_abs(str(item).strip(), base)] = 1.0
        return out
    if isinstance(raw, dict):
        try:
            return {_abs(k, base): float(v) for k, v in raw.items()}
        except (TypeError, ValueError):
            raise BadQuery(f"{where}: relevance grades must be numbers") from None
    raise BadQuery(f"{where}: 'relevant' must be a list of paths or a {{path: grade}} object")


def _make(rec: dict, base: Path, where: str, line: int) -> Judged:
    text = (rec.get("query") or rec.get("text") or "").strip() or None
    image = _abs(rec["image"], base) if rec.get("image") else None
    audio = _abs(rec["audio"], base) if rec.get("audio") else None
    if not (text or image or audio):
        raise BadQuery(f"{where}: a judged query needs 'query' text, an 'image' or an 'audio' path")
    if "relevant" not in rec or not rec["relevant"]:
        raise BadQuery(f"{where}: no 'relevant' results listed")
    for path in (image, audio):
        if path and not os.path.isfile(path):
            raise BadQuery(f"{where}: query file {path} does not exist")
    return Judged(_grades(rec["relevant"], base, where), text, image, audio, (rec.get("type") or "").strip(), line)


def load_judged(path: Path, root: Path | None = None) -> JudgedSet:
    path = Path(path)
    if not path.is_file():
        raise BadQuery(f"judged query file {path} does not exist")
    base = Path(root) if root else path.parent
    out = JudgedSet(str(path))
    if path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BadQuery(f"{path}:{n}: not valid JSON ({exc.msg})") from None
            out.queries.append(_make(rec, base, f"{path}:{n}", n))
    elif path.suffix.lower() in (".csv", ".tsv"):
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
            if not reader.fieldnames or "relevant" not in reader.fieldnames:
                raise BadQuery(f"{path}: the CSV needs a header with a 'relevant' column")
            for n, rec in enumerate(reader, start=2):
                out.queries.append(_make(rec, base, f"{path}:{n}", n))
    else:
        raise BadQuery(f"{path}: use a .jsonl or .csv judged query file")
    if not out.queries:
        raise BadQuery(f"{path} holds no judged queries")
    return out


def load_caption_benchmark(captions: Path, images: Path, limit: int | None = None) -> JudgedSet:
    """Flickr30k/MSCOCO text->image retrieval as judged queries: each caption's one relevant item is its image.

    Reads COCO `captions_*.json` ({"images": [...], "annotations": [...]}), Karpathy-split JSON
    ({"images": [{"filename", "sentences": [{"raw"}]}]}), or Flickr's `results_20130124.token` /
    `captions.txt` (image#n<TAB>caption, or image,caption with a header).
    """
    captions, images = Path(captions), Path(images)
    if not captions.is_file():
        raise BadQuery(f"caption file {captions} does not exist")
    pairs: list[tuple[str, str]] = []
    text = captions.read_text(encoding="utf-8")
    if captions.suffix.lower() == ".json":
        data = json.loads(text)
        if "annotations" in data:
            names = {im["id"]: im["file_name"] for im in data["images"]}
            pairs = [(names[a["image_id"]], a["caption"]) for a in data["annotations"] if a["image_id"] in names]
        else:
            pairs = [(im["filename"], s["raw"]) for im in data["images"] for s in im.get("sentences", [])]
    else:
        for line in text.splitlines():
            if "\t" in line:
                name, cap = line.split("\t", 1)
                pairs.append((name.split("#", 1)[0], cap))
            elif "," in line and not line.startswith("image,"):
                name, cap = line.split(",", 1)
                pairs.append((name, cap))
    if not pairs:
        raise BadQuery(f"{captions}: no captions found (expected COCO JSON, Karpathy JSON or Flickr token lines)")
    out = JudgedSet(str(captions))
    for n, (name, cap) in enumerate(pairs[:limit] if limit else pairs, start=1):
        out.queries.append(Judged({os.path.abspath(images / name): 1.0}, cap.strip(), type="caption", line=n))
    return out
