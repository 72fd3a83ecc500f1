"""Query parts: what the user gives (text, images, sounds), each with a weight; negative weights subtract."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mmsearch.defaults import DEFAULT_K
from mmsearch.errors import BadQuery, EmptyQuery

# Here rather than in fusion (which needs numpy): a CLI that only builds a query for a server imports no numpy.
Method = Literal["rrf", "weighted"]
Norm = Literal["minmax", "zscore"]

PartKind = Literal["text", "image", "audio", "composed", "like"]
# composed: (image, instruction) for BGE-VL; like: the path of an indexed file, searched by its stored vectors
KINDS: tuple[str, ...] = ("text", "image", "audio", "composed", "like")
MAX_PARTS = 16
MODALITIES: tuple[str, ...] = ("image", "audio", "video")  # what a query can target (tables by modality)
_WEIGHTED = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*:(.*)$", re.S)


@dataclass
class QueryPart:
    kind: PartKind
    value: Any  # text; a path or PIL image; a path or (samples, rate) for audio; (image, text) when composed
    weight: float = 1.0
    label: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise BadQuery(f"unknown query part kind {self.kind!r}; use one of {', '.join(KINDS)}")
        if self.weight == 0:
            raise BadQuery(f"{self.describe()} has weight 0, which would do nothing; drop it or give it a weight")
        if self.kind == "text" and not str(self.value or "").strip():
            raise EmptyQuery("the query is empty: type some words to search for")
        if self.kind == "composed":
            _check_composed(self.value)
            if not self.label:
                image, text = self.value
                self.label = f"composed:{_shown(image)}+{text}"
        if not self.label:
            shown = self.value if self.kind == "text" else Path(str(self.value)).name if isinstance(self.value, (str, Path)) else "upload"
            self.label = f"{self.kind}:{shown}"

    @property
    def negative(self) -> bool:
        return self.weight < 0

    def describe(self) -> str:
        sign = "-" if self.weight < 0 else "+"
        return f"{sign}{abs(self.weight):g} {self.label}" if self.label else f"{self.kind} part"


def parse_weighted(raw: str) -> tuple[float, str]:
    """'2:beach' -> (2.0, 'beach'); '-1:people' -> (-1.0, 'people'); 'beach' -> (1.0, 'beach').

    Only for closed vocabularies (mood names), where no name holds a colon. Free text and paths are
    never parsed this way: "12:30 meeting" and "16:9 wallpaper" are text; weights come from --weight.
    """
    m = _WEIGHTED.match(raw)
    if not m:
        return 1.0, raw
    return float(m.group(1)), m.group(2)


def part_from_cli(kind: PartKind, value: str, weight: float = 1.0) -> QueryPart:
    """A part from a command-line value, taken as written (a WEIGHT: prefix is part of the text or path)."""
    if kind != "text":
        path = Path(value).expanduser()
        if not path.is_file():
            raise BadQuery(f"{kind} query file {value!r} does not exist{_weight_hint(kind, value)}")
        value = str(path)
    return QueryPart(kind, value, weight)


def _weight_hint(kind: str, value: str) -> str:
    """The old WEIGHT:PATH form, when the rest names a file: say how weights are given now."""
    weight, rest = parse_weighted(value)
    if rest == value or not Path(rest).expanduser().is_file():
        return ""
    return f"; to weight a part, write --{kind} {rest} --weight {weight:g}"


# What a query can search: the library's photos and sounds, and the products of its catalogs.
SEARCHABLE = MODALITIES + ("product",)


def product_key(catalog_file: str, product_id: str) -> str:
    """How a catalog's product is named in results and in "more like this": `<catalog file>#<id>`."""
    return f"{catalog_file}#{product_id}"


def is_product_key(path: str) -> bool:
    """A `<catalog file>#<id>` key rather than a file (a photo may have # in its name: it exists as a whole)."""
    base, hash_, pid = str(path).rpartition("#")
    return bool(hash_ and pid) and Path(base).is_file() and not Path(path).exists()


def like_targets(path: str) -> tuple[str, ...]:
    """What "more like this" searches by default: products for a product, sounds for a sound, videos for a video
    (or FILE@SECONDS), else photos."""
    from mmsearch.media.audio import supported_extensions

    from mmsearch.media.video import supported_extensions as video_extensions
    from mmsearch.store.video_table import split_at

    if is_product_key(path):
        return ("product",)
    suffix = Path(split_at(path)[0]).suffix.lower()  # FILE@SECONDS: a video's moment
    return ("audio",) if suffix in supported_extensions() else ("video",) if suffix in video_extensions() else ("image",)


@dataclass
class QueryOptions:
    k: int = DEFAULT_K
    targets: tuple[str, ...] = SEARCHABLE
    method: Method = "rrf"
    rrf_k: float = 60.0
    norm: Norm = "minmax"
    hybrid: bool = True
    rerank: bool = True
    shortlist: int = 100
    mmr: float | None = None  # lambda: 1.0 = pure relevance, lower = more diverse
    min_score: float | None = None  # cosine; candidates whose best dense match is lower are cut
    where: list[str] = field(default_factory=list)
    folder: str | None = None
    types: list[str] = field(default_factory=list)
    after: str | None = None
    before: str | None = None

    def validate(self) -> None:
        if not 1 <= self.k <= 1000:
            raise BadQuery(f"k must be between 1 and 1000, got {self.k}")
        if not self.rrf_k > 0:
            raise BadQuery(f"RRF k must be positive, got {self.rrf_k}")
        if self.shortlist < self.k:
            self.shortlist = self.k
        if self.shortlist > 5000:
            raise BadQuery(f"shortlist must be at most 5000, got {self.shortlist}")
        if self.mmr is not None and not 0.0 <= self.mmr <= 1.0:
            raise BadQuery(f"MMR lambda must be between 0 and 1, got {self.mmr}")
        unknown = [t for t in self.targets if t not in SEARCHABLE]
        if unknown or not self.targets:
            raise BadQuery(f"search targets must be some of {', '.join(SEARCHABLE)}, "
                           f"got {', '.join(self.targets) or 'none'}")


def _shown(value: Any) -> str:
    return Path(str(value)).name if isinstance(value, (str, Path)) else "upload"


def _check_composed(value: Any) -> None:
    if not (isinstance(value, (tuple, list)) and len(value) == 2):
        raise BadQuery("a composed part is (image, text): a reference image and what to change about it")
    if not str(value[1] or "").strip():
        raise EmptyQuery("a composed query needs an instruction, e.g. 'the same dress but in red'")


def composed_from_cli(raw: str, weight: float = 1.0) -> QueryPart:
    """'PATH::INSTRUCTION' -> a composed part (BGE-VL: this image, changed as the text says)."""
    path, sep, text = raw.partition("::")
    if not sep:
        raise BadQuery(f"write a composed part as IMAGE::INSTRUCTION (e.g. dress.jpg::but in red), got {raw!r}")
    if not Path(path).expanduser().is_file():
        raise BadQuery(f"composed query image {path!r} does not exist")
    return QueryPart("composed", (str(Path(path).expanduser()), text.strip()), weight)
