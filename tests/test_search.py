"""Search correctness against a brute-force numpy reference over the same stored vectors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mmsearch.encoders import EmbeddingSpace
from mmsearch.errors import BadQuery, EmptyQuery, LibraryNotFound, SpaceMismatch
from mmsearch.search import Searcher
from mmsearch.service import MMSearch
from mmsearch.store import Library, SpaceTable
from mmsearch.store.table import SPACE_KEY
from tests.conftest import make_tiny_model_dir, write_image


@pytest.fixture
def indexed(settings, photo_dir) -> MMSearch:
    for i in range(7, 30):
        write_image(photo_dir / "more" / f"m{i}.png", seed=i, size=(40 + i, 40))
    svc = MMSearch(settings)
    svc.index([photo_dir])
    return svc


def _reference(svc: MMSearch, query: np.ndarray, k: int) -> list[tuple[str, float]]:
    rows = svc.searcher.table().table.to_arrow().to_pylist()
    matrix = np.stack([r["vector"] for r in rows])
    scores = matrix @ query
    order = np.argsort(-scores, kind="stable")[:k]
    return [(rows[i]["path"], float(scores[i])) for i in order]


def test_text_search_matches_brute_force(indexed):
    hits = indexed.search_text("a dog on a beach", k=10)
    ref = _reference(indexed, indexed.encoder.encode_text(["a dog on a beach"])[0], 10)
    assert [h.path for h in hits] == [p for p, _ in ref]
    np.testing.assert_allclose([h.score for h in hits], [s for _, s in ref], rtol=1e-5, atol=1e-6)
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))


def test_image_search_finds_the_image_itself_first(indexed, photo_dir):
    hits = indexed.search_image(photo_dir / "img3.gif", k=5)
    assert hits[0].path == str(photo_dir / "img3.gif") and hits[0].score == pytest.approx(1.0, abs=1e-4)
    from PIL import Image

    pil_hits = indexed.search_image(Image.open(photo_dir / "img3.gif"), k=5)
    assert [h.path for h in pil_hits] == [h.path for h in hits]


def test_more_like_this_uses_the_stored_vector_and_skips_itself(indexed, photo_dir):
    target = str(photo_dir / "img0.jpg")
    hits = indexed.more_like_this(target, k=5)
    row = indexed.searcher.table().rows_for_paths([target], with_vector=True)[target]
    ref = [p for p, _ in _reference(indexed, np.asarray(row["vector"]), 6) if p != target][:5]
    assert [h.path for h in hits] == ref


def test_results_follow_index_updates(indexed, photo_dir):
    first = indexed.search_text("x", k=100)
    write_image(photo_dir / "new.jpg", seed=999)
    indexed.index([photo_dir])
    second = indexed.search_text("x", k=100)
    assert len(second) == len(first) + 1 and str(photo_dir / "new.jpg") in {h.path for h in second}


def test_k_larger_than_library_returns_everything(indexed):
    assert len(indexed.search_text("x", k=500)) == 30


@pytest.mark.parametrize("query", ["", "   "])
def test_empty_query_is_refused(indexed, query):
    with pytest.raises(EmptyQuery):
        indexed.search_text(query)


def test_bad_k_and_unknown_paths_are_refused(indexed, photo_dir, tmp_path):
    with pytest.raises(BadQuery, match="k must be"):
        indexed.search_text("x", k=0)
    with pytest.raises(BadQuery, match="not in the library"):
        indexed.more_like_this(str(tmp_path / "elsewhere.jpg"))
    (tmp_path / "broken.jpg").write_bytes(b"nope")
    with pytest.raises(BadQuery, match="broken.jpg"):
        indexed.search_image(tmp_path / "broken.jpg")


def test_missing_library_is_a_clear_error(settings):
    with pytest.raises(LibraryNotFound, match="index a folder first"):
        MMSearch(settings).search_text("cat")


def test_searching_with_another_model_refuses_to_mix_spaces(indexed, settings, tmp_path):
    other = make_tiny_model_dir(tmp_path / "other-clip", seed=3)
    svc = MMSearch(settings.model_copy(update={"model": str(other)}))
    with pytest.raises(SpaceMismatch, match="indexed with open-clip tiny-clip"):
        svc.search_text("cat")


def test_a_table_whose_metadata_disagrees_is_refused(tmp_path):
    lib = Library(tmp_path / "lib")
    space = EmbeddingSpace("open-clip", "m", "w1", 4)
    lib.table("image", space, create=True)
    tbl = lib.db.open_table(lib.table_names()[0])
    with pytest.raises(SpaceMismatch, match="refusing to mix"):
        SpaceTable(tbl, "image", EmbeddingSpace("open-clip", "m", "w2", 4))


def _synthetic_table(tmp_path, n: int, dim: int = 32, seed: int = 0) -> tuple[SpaceTable, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(20, dim))
    vecs = centers[rng.integers(0, 20, n)] + 0.3 * rng.normal(size=(n, dim))
    vecs = (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32)
    space = EmbeddingSpace("synthetic", "s", "w", dim)
    table = Library(tmp_path / "lib").table("image", space, create=True)
    rows = [{"path": f"/p/{i}.jpg", "folder": "/p", "name": f"{i}.jpg", "hash": f"h{i}", "size": 1,
             "format": "JPEG", "text": f"photo {i}", "vector": vecs[i]} for i in range(n)]
    table.upsert_rows(rows)
    return table, vecs


def test_ann_index_above_the_threshold_keeps_recall(tmp_path):
    table, vecs = _synthetic_table(tmp_path, 3000)
    searcher = Searcher(table_library := Library(tmp_path / "lib"), encoder=None, ann_threshold=1000)  # type: ignore[arg-type]
    assert searcher.by_vector(table, vecs[0], 10)[0].path == "/p/0.jpg"  # exact before the index
    table.build_ann_index()
    assert table.has_ann_index()
    rng = np.random.default_rng(1)
    recalls = []
    for qi in rng.integers(0, 3000, 20):
        q = vecs[qi]
        truth = {f"/p/{i}.jpg" for i in np.argsort(-(vecs @ q))[:10]}
        got = {h.path for h in searcher.by_vector(table, q, 10)}
        recalls.append(len(truth & got) / 10)
    assert np.mean(recalls) >= 0.95
    assert table_library.table_names() == [table.name]


def test_schema_records_the_space(tmp_path):
    table, _ = _synthetic_table(tmp_path, 5)
    meta = json.loads(table.table.schema.metadata[SPACE_KEY])
    assert meta == {"encoder": "synthetic", "model": "s", "weights": "w", "dim": "32", "modality": "image",
                    "space_id": "synthetic_s_w"}
