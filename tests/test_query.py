"""The query engine on constructed libraries whose ground truth is known by construction.

Random-weight models cannot judge similarity, so these tests use a keyed encoder: each word maps to
a fixed direction, and stored items are built from those directions.
"""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest
from PIL import Image

from mmsearch.encoders import EmbeddingSpace, Encoder
from mmsearch.errors import BadQuery, EmptyQuery
from mmsearch.query.engine import QueryEngine
from mmsearch.query.parts import QueryOptions, QueryPart, parse_weighted
from mmsearch.search.vector import VectorSearch
from mmsearch.store import Library

DIM = 32
WORDS = ["beach", "dog", "people", "car", "forest", "night"]


def basis(word: str) -> np.ndarray:
    v = np.zeros(DIM, np.float32)
    if word in WORDS:
        v[WORDS.index(word)] = 1.0
    else:  # unknown words land somewhere no item lives
        v[DIM - 1] = 1.0
    return v


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


class KeyedEncoder(Encoder):
    """Text: sum of word directions. Images: the direction named by the image's red value."""

    name = "keyed"

    def __init__(self, model: str = "keyed", modalities: frozenset = frozenset({"text", "image"})) -> None:
        super().__init__()
        self.model = model
        self.modalities = modalities  # type: ignore[misc]

    @property
    def space(self) -> EmbeddingSpace:
        return EmbeddingSpace("keyed", self.model, "w", DIM)

    def _load(self) -> None: ...

    def _unload(self) -> None: ...

    def encode_text(self, texts):
        return np.stack([unit(sum(basis(w) for w in t.split()) + 1e-3) for t in texts])

    def preprocess_image(self, image):
        return WORDS[image.getpixel((0, 0))[0] % len(WORDS)]

    def encode_images(self, batch):
        return np.stack([unit(basis(w) + 1e-3) for w in batch])


def row(path: str, vec: np.ndarray, **meta) -> dict:
    base = {"path": path, "folder": path.rsplit("/", 1)[0], "name": path.rsplit("/", 1)[1], "hash": path,
            "size": 1000, "mtime_ns": 0, "format": "JPEG", "width": 100, "height": 100, "text": "", "tags": []}
    base.update(meta)
    base["vector"] = vec
    return base


@pytest.fixture
def lib(tmp_path) -> Library:
    return Library(tmp_path / "lib")


def make_table(lib: Library, rows: list[dict], model: str = "keyed", modality: str = "image"):
    table = lib.table(modality, KeyedEncoder(model).space, create=True)
    table.upsert_rows(rows)
    table.maintain(ann_threshold=10**9)  # keyword index
    return table


def scene(rng: np.random.Generator, *words: str, noise: float = 0.15) -> np.ndarray:
    return unit(sum(basis(w) for w in words) + noise * rng.normal(size=DIM).astype(np.float32))


@pytest.fixture
def photos(lib) -> Library:
    rng = np.random.default_rng(0)
    rows = [row(f"/lib/beach{i}.jpg", scene(rng, "beach")) for i in range(2)]
    rows += [row(f"/lib/dog{i}.jpg", scene(rng, "dog")) for i in range(2)]
    # everyday photos: a little of everything, so single-topic photos sit at the bottom of other lists
    rows += [row(f"/lib/other{i}.jpg", unit(scene(rng, WORDS[3 + i % 3]) + 0.15 * (basis("beach") + basis("dog"))))
             for i in range(10)]
    rows += [row("/lib/both.jpg", scene(rng, "beach", "dog", noise=0.05))]
    rows += [row(f"/lib/crowd{i}.jpg", scene(rng, "beach", "people", noise=0.05)) for i in range(3)]
    make_table(lib, rows)
    return lib


def engine(lib: Library, *encoders: Encoder, threshold: int = 10**9) -> QueryEngine:
    return QueryEngine(lib, list(encoders) or [KeyedEncoder()], VectorSearch(threshold))


def paths(answer) -> list[str]:
    return [h.result.path for h in answer.hits]


@pytest.mark.parametrize("method", ["rrf", "weighted"])
def test_an_item_matching_two_parts_ranks_above_items_matching_one(photos, method):
    parts = [QueryPart("text", "beach"), QueryPart("text", "dog")]
    answer = engine(photos).run(parts, QueryOptions(k=5, method=method))
    assert paths(answer)[0] == "/lib/both.jpg"
    tables = {c.part for c in answer.hits[0].contributions}
    assert tables == {"+1 text:beach", "+1 text:dog"}


def test_negative_part_pushes_down(photos):
    plain = paths(engine(photos).run([QueryPart("text", "beach")], QueryOptions(k=6, hybrid=False)))
    assert sum(p.startswith("/lib/crowd") for p in plain) == 3  # beach photos with people rank high
    minus = paths(engine(photos).run([QueryPart("text", "beach"), QueryPart("text", "people", -1.0)],
                                     QueryOptions(k=100, hybrid=False)))
    assert minus[:2] == ["/lib/beach0.jpg", "/lib/beach1.jpg"] or minus[:2] == ["/lib/beach1.jpg", "/lib/beach0.jpg"]
    assert all(minus.index(f"/lib/crowd{i}.jpg") > minus.index("/lib/both.jpg") for i in range(3))


def test_image_part_and_text_part_fuse(photos):
    img = Image.new("RGB", (4, 4), (WORDS.index("dog"), 0, 0))
    answer = engine(photos).run([QueryPart("text", "beach"), QueryPart("image", img)], QueryOptions(k=3))
    assert paths(answer)[0] == "/lib/both.jpg"


def test_weights_shift_the_balance(photos):
    def ranks(wb: float, wd: float, method: str) -> dict[str, int]:
        parts = [QueryPart("text", "beach", wb), QueryPart("text", "dog", wd)]
        found = paths(engine(photos).run(parts, QueryOptions(k=100, hybrid=False, method=method)))
        return {p: i for i, p in enumerate(found)}

    for method in ("rrf", "weighted"):
        dog_heavy, beach_heavy = ranks(1, 6, method), ranks(6, 1, method)
        assert max(dog_heavy[f"/lib/dog{i}.jpg"] for i in range(2)) < min(dog_heavy[f"/lib/beach{i}.jpg"] for i in range(2))
        assert max(beach_heavy[f"/lib/beach{i}.jpg"] for i in range(2)) < min(beach_heavy[f"/lib/dog{i}.jpg"] for i in range(2))


def test_hybrid_finds_an_exact_sku_the_dense_side_misses(lib):
    rng = np.random.default_rng(1)
    rows = [row(f"/shop/item{i}.jpg", scene(rng, WORDS[i % 6]), text=f"item {i} jpg shop") for i in range(30)]
    rows.append(row("/shop/SKU-48213.jpg", scene(rng, "forest"), text="SKU 48213 jpg shop"))
    make_table(lib, rows)
    dense = paths(engine(lib).run([QueryPart("text", "48213")], QueryOptions(k=5, hybrid=False)))
    assert "/shop/SKU-48213.jpg" not in dense
    hybrid = engine(lib).run([QueryPart("text", "48213")], QueryOptions(k=5))
    assert paths(hybrid)[0] == "/shop/SKU-48213.jpg"
    assert {c.kind for c in hybrid.hits[0].contributions} >= {"keyword"}


def _varied(lib: Library, n: int = 400):
    rng = np.random.default_rng(2)
    rows = []
    for i in range(n):
        rows.append(row(
            f"/lib/{'a' if i % 2 else 'b'}/{i}.{'png' if i % 3 == 0 else 'jpg'}", scene(rng, WORDS[i % 6], noise=0.8),
            width=100 + i, height=50 + i % 7, format="PNG" if i % 3 == 0 else "JPEG",
            mtime_ns=int(datetime(2020 + i % 5, 6, 1, tzinfo=timezone.utc).timestamp() * 1e9),
            tags=["summer"] if i % 4 == 0 else ["winter"], text=f"photo {i} {WORDS[(i // 7) % 6]}",
        ))
    return make_table(lib, rows), rows


FILTER_CASES = [
    (dict(where=["width>=400"]), lambda r: r["width"] >= 400),
    (dict(where=["height<52", "format=PNG"]), lambda r: r["height"] < 52 and r["format"] == "PNG"),
    (dict(folder="/lib/a"), lambda r: r["path"].startswith("/lib/a/")),
    (dict(types=["png"]), lambda r: r["format"] == "PNG"),
    (dict(after="2022-01-01", before="2024-01-01"), lambda r: 2022 <= datetime.fromtimestamp(r["mtime_ns"] / 1e9).year < 2024),
    (dict(where=["tags~summer"]), lambda r: "summer" in r["tags"]),
    (dict(where=["name~7"]), lambda r: "7" in r["name"]),
]


@pytest.mark.parametrize("threshold", [10**9, 100], ids=["exact", "ann"])
@pytest.mark.parametrize("kwargs,keep", FILTER_CASES)
def test_filters_never_leak_a_non_matching_row(lib, kwargs, keep, threshold):
    table, rows = _varied(lib)
    if threshold == 100:
        table.build_ann_index()
    by_path = {r["path"]: r for r in rows}
    # a third of the rows say "beach" or "dog" in their text, on both sides of every filter: the keyword
    # search has hits that the filter must remove, as the dense search has
    keyword_rows = {r["path"] for r in rows if {"beach", "dog"} & set(r["text"].split())}
    assert {keep(by_path[p]) for p in keyword_rows} == {True, False}
    answer = engine(lib, threshold=threshold).run([QueryPart("text", "beach dog")], QueryOptions(k=50, **kwargs))
    assert answer.hits and all(keep(by_path[h.result.path]) for h in answer.hits)
    by_keyword = [h.result.path for h in answer.hits if any(c.kind == "keyword" for c in h.contributions)]
    assert by_keyword and set(by_keyword) <= keyword_rows
    expected = min(50, sum(keep(r) for r in rows))
    assert len(answer.hits) == expected  # pre-filtering: k results whenever k rows match


def test_selective_filter_says_fewer_than_k_exist(lib):
    _varied(lib)
    answer = engine(lib).run([QueryPart("text", "beach")], QueryOptions(k=20, where=["width>=495"]))
    assert len(answer.hits) == 5 and answer.notes == ["only 5 items match the filters (asked for 20)"]


@pytest.mark.parametrize("kwargs,message", [
    (dict(where=["colour=red"]), "unknown filter column 'colour'"),
    (dict(where=["width>=big"]), "width needs a whole number"),
    (dict(where=["width"]), "cannot read filter"),
    (dict(after="last tuesday"), "cannot read date 'last tuesday'"),
    (dict(where=["width>500", "width<100"]), "contradictory filters"),
    (dict(after="2024-01-01", before="2023-01-01"), "contradictory filters: date"),
    (dict(where=["format=PNG", "format=JPEG"]), "cannot equal"),
])
def test_bad_filters_get_clear_messages(photos, kwargs, message):
    with pytest.raises(BadQuery, match=message):
        engine(photos).run([QueryPart("text", "beach")], QueryOptions(**kwargs))


def test_bad_parts_get_clear_messages(photos):
    with pytest.raises(EmptyQuery, match="no parts"):
        engine(photos).run([], QueryOptions())
    with pytest.raises(BadQuery, match="weight 0"):
        QueryPart("text", "beach", 0.0)
    with pytest.raises(BadQuery, match="less than zero"):
        engine(photos).run([QueryPart("text", "beach", 1), QueryPart("text", "dog", -2)], QueryOptions())
    with pytest.raises(EmptyQuery):
        QueryPart("text", "  ")
    with pytest.raises(BadQuery, match="RRF k must be positive"):
        engine(photos).run([QueryPart("text", "beach")], QueryOptions(rrf_k=0))


def test_image_part_on_an_audio_only_library_is_refused(lib):
    audio_enc = KeyedEncoder("sounds", frozenset({"text", "audio"}))
    table = lib.table("audio", audio_enc.space, create=True)
    table.upsert_rows([row("/snd/rain.wav", unit(basis("beach") + 0.01))])
    img = Image.new("RGB", (2, 2))
    with pytest.raises(BadQuery, match="no table in this library can answer \\+1 image:upload"):
        engine(lib, audio_enc).run([QueryPart("image", img)], QueryOptions(targets=("audio",)))
    # text reaches the audio table through the audio encoder's text side
    answer = engine(lib, audio_enc).run([QueryPart("text", "beach")], QueryOptions(targets=("audio",)))
    assert paths(answer) == ["/snd/rain.wav"] and answer.hits[0].result.modality == "audio"


def test_rerank_restores_exact_order_on_the_shortlist(lib):
    rng = np.random.default_rng(3)
    vecs = [unit(rng.normal(size=DIM).astype(np.float32)) for _ in range(2000)]
    table = make_table(lib, [row(f"/r/{i}.jpg", v) for i, v in enumerate(vecs)])
    table.build_ann_index()
    q = KeyedEncoder().encode_text(["beach dog"])[0]
    exact = {f"/r/{i}.jpg": float(v @ q) for i, v in enumerate(vecs)}
    opts = dict(k=30, hybrid=False, shortlist=60)
    raw = engine(lib, threshold=100).run([QueryPart("text", "beach dog")], QueryOptions(rerank=False, **opts))
    reranked = engine(lib, threshold=100).run([QueryPart("text", "beach dog")], QueryOptions(rerank=True, **opts))
    got = [(h.result.path, h.result.score) for h in reranked.hits]
    assert all(abs(s - exact[p]) < 1e-5 for p, s in got)  # full-precision scores
    assert [p for p, _ in got] == sorted((p for p, _ in got), key=lambda p: -exact[p])  # exact order
    # Without rerank LanceDB refines inside the index; same exact scores, so both paths agree.
    assert [h.result.path for h in raw.hits] == [p for p, _ in got]
    cheap = VectorSearch(100).search(table, q, 60, approximate=True)
    assert max(abs(s - exact[r["path"]]) for r, s in cheap) > 1e-4  # the shortlist's quantised scores


def test_mmr_spreads_a_page_of_near_copies(lib):
    rng = np.random.default_rng(4)
    copy = scene(rng, "beach", noise=0.05)
    rows = [row(f"/m/copy{i}.jpg", unit(copy + 0.01 * rng.normal(size=DIM).astype(np.float32))) for i in range(6)]
    rows += [row(f"/m/{w}.jpg", scene(rng, "beach", w, noise=0.05)) for w in ["dog", "car", "forest", "night"]]
    make_table(lib, rows)
    plain = paths(engine(lib).run([QueryPart("text", "beach")], QueryOptions(k=5, hybrid=False)))
    assert sum("copy" in p for p in plain) == 5
    diverse = paths(engine(lib).run([QueryPart("text", "beach")], QueryOptions(k=5, hybrid=False, mmr=0.3)))
    assert sum("copy" in p for p in diverse) <= 2


def test_two_image_models_are_fused_per_file(lib):
    rng = np.random.default_rng(5)
    rows = [row(f"/two/{w}.jpg", scene(rng, w)) for w in WORDS]
    make_table(lib, rows, model="keyed")
    make_table(lib, rows, model="keyed2")
    answer = engine(lib, KeyedEncoder("keyed"), KeyedEncoder("keyed2")).run(
        [QueryPart("text", "dog")], QueryOptions(k=3, hybrid=False))
    assert paths(answer)[0] == "/two/dog.jpg"
    assert {c.table for c in answer.hits[0].contributions} == {"image__keyed_keyed_w", "image__keyed_keyed2_w"}


def test_min_score_cuts_the_tail_instead_of_padding(photos):
    answer = engine(photos).run([QueryPart("text", "dog")], QueryOptions(k=20, min_score=0.5, hybrid=False))
    assert answer.hits and all(h.result.score >= 0.5 for h in answer.hits)
    assert len(answer.hits) < 20


@pytest.mark.parametrize("raw,expected", [
    ("2:beach", (2.0, "beach")), ("-1:people", (-1.0, "people")), ("0.5:a: b", (0.5, "a: b")),
    ("beach", (1.0, "beach")), ("photo.jpg", (1.0, "photo.jpg")),
])
def test_weight_prefixes(raw, expected):
    assert parse_weighted(raw) == expected
