"""A score means one thing: each result's score is a cosine in one named space, `min_score` cuts in that
space, keyword evidence is fused once however many tables hold the files, and moderation thresholds are
per (concept, space)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import pytest
from click.testing import CliRunner

from mmsearch.cli import cli
from mmsearch.encoders import EmbeddingSpace, Encoder
from mmsearch.query.engine import QueryEngine
from mmsearch.query.parts import QueryOptions, QueryPart
from mmsearch.search.vector import VectorSearch
from mmsearch.service import MMSearch
from mmsearch.store import Library
from mmsearch.workflows.catalog import CatalogIndexer, Catalogs
from mmsearch.workflows.catalog_search import CatalogSearch
from mmsearch.workflows.moderation import (
    Concept, ModerationError, Scanner, WatchList, calibrate, calibrate_spaces, watchlist_path,
)
from tests.conftest import make_tiny_model_dir, write_image
from tests.workflow_support import BagOfWords, ColourEncoder, make_shop, solid

DIM = 8


def unit(v) -> np.ndarray:
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v)


class Axis(Encoder):
    """Text "beach" is axis 0 in every space; stored vectors are given per space by the test."""

    name = "axis"
    modalities = frozenset({"text"})

    def __init__(self, model: str) -> None:
        super().__init__()
        self.model = model

    @property
    def space(self) -> EmbeddingSpace:
        return EmbeddingSpace("axis", self.model, "w", DIM)

    def _load(self) -> None: ...

    def _unload(self) -> None: ...

    def encode_text(self, texts):
        return np.stack([unit(np.eye(DIM)[0] + 1e-4) for _ in texts])


def row(path: str, vec: np.ndarray) -> dict:
    return {"path": path, "folder": "/lib", "name": Path(path).name, "hash": path, "size": 1, "mtime_ns": 0,
            "format": "JPEG", "width": 1, "height": 1, "text": Path(path).stem, "tags": [], "vector": vec}


@pytest.fixture
def two_spaces(tmp_path) -> Library:
    """The same two files in two spaces. Space B's cosines run higher than space A's for `wide.jpg`."""
    lib = Library(tmp_path / "lib")
    a_vecs = {"/lib/close.jpg": unit([1, 0.3, 0, 0, 0, 0, 0, 0]), "/lib/wide.jpg": unit([1, 1, 0, 0, 0, 0, 0, 0])}
    b_vecs = {"/lib/close.jpg": unit([1, 0.5, 0, 0, 0, 0, 0, 0]), "/lib/wide.jpg": unit([1, 0.05, 0, 0, 0, 0, 0, 0])}
    for model, vecs in (("a", a_vecs), ("b", b_vecs)):
        table = lib.table("image", Axis(model).space, create=True)
        table.upsert_rows([row(p, v) for p, v in vecs.items()])
        table.maintain(ann_threshold=10**9)
    return lib


def cosines(lib: Library, model: str) -> dict[str, float]:
    q = Axis(model).encode_text(["beach"])[0]
    table = lib.table("image", Axis(model).space)
    return {p: float(np.asarray(r["vector"], np.float32) @ q)
            for p, r in table.rows_for_paths(["/lib/close.jpg", "/lib/wide.jpg"], with_vector=True).items()}


@pytest.mark.parametrize("hybrid", [False, True])
@pytest.mark.parametrize("rerank", [True, False])
def test_score_is_the_cosine_of_one_named_space(two_spaces, hybrid, rerank):
    a, b = cosines(two_spaces, "a"), cosines(two_spaces, "b")
    assert b["/lib/wide.jpg"] - a["/lib/wide.jpg"] > 0.25  # the two spaces disagree by far more than rounding
    options = QueryOptions(k=5, hybrid=hybrid, rerank=rerank)
    for first, own in (("a", a), ("b", b)):  # the main (first) encoder's space is each result's home
        encoders = [Axis(first), Axis("b" if first == "a" else "a")]
        answer = QueryEngine(two_spaces, encoders, VectorSearch(10**9)).run([QueryPart("text", "beach")], options)
        assert {h.result.path for h in answer.hits} == set(own)
        for h in answer.hits:
            assert h.result.score == pytest.approx(own[h.result.path], abs=1e-6)
            assert h.result.score_space == encoders[0].space.id == h.to_dict()["score_space"]


def test_min_score_cuts_in_each_results_own_space(two_spaces):
    a, b = cosines(two_spaces, "a"), cosines(two_spaces, "b")
    cut = (a["/lib/wide.jpg"] + b["/lib/wide.jpg"]) / 2  # above wide's cosine in A, below its cosine in B
    assert a["/lib/close.jpg"] > cut
    options = QueryOptions(k=5, hybrid=False, min_score=cut)
    in_a = QueryEngine(two_spaces, [Axis("a"), Axis("b")], VectorSearch(10**9)).run([QueryPart("text", "beach")], options)
    # The max over both spaces (B's 0.998) would keep wide.jpg; in its own space it is below the cut.
    assert [h.result.path for h in in_a.hits] == ["/lib/close.jpg"]
    in_b = QueryEngine(two_spaces, [Axis("b"), Axis("a")], VectorSearch(10**9)).run([QueryPart("text", "beach")], options)
    assert {h.result.path for h in in_b.hits} == {"/lib/close.jpg", "/lib/wide.jpg"}
    assert all(h.result.score >= cut for h in in_b.hits)


def test_keyword_evidence_counts_once_with_a_second_model(settings, tmp_path):
    other = make_tiny_model_dir(tmp_path / "other-clip", seed=7)
    photos = tmp_path / "photos"
    for i in range(5):
        write_image(photos / f"pic{i}.png", seed=i)
    write_image(photos / "astronaut.png", seed=9)
    svc = MMSearch(settings.model_copy(update={"audio": False, "extra_models": str(other)}))
    assert svc.index([photos]).embedded == 12
    svc.maintain_index()
    tables = {svc.library().table("image", e.space).name for e in svc.encoders()}
    assert len(tables) == 2
    answer = svc.query([QueryPart("text", "astronaut")], QueryOptions(k=6))
    hit = next(h for h in answer.hits if h.result.name == "astronaut.png")
    keyword = [c for c in hit.contributions if c.kind == "keyword"]
    assert len(keyword) == 1 and set(keyword[0].table.split("+")) == tables  # one list over both tables
    dense = [c for c in hit.contributions if c.kind == "dense"]
    assert {c.table for c in dense} == tables
    # The fused score is exactly the RRF of the lists shown: two dense lists and one keyword list.
    assert hit.score == pytest.approx(sum(1 / (60 + c.rank) for c in hit.contributions), abs=1e-9)
    # Its score is the main model's cosine, from the stored vector, and says so.
    main = svc.library().table("image", svc.encoder.space)
    stored = np.asarray(main.rows_for_paths([hit.result.path], with_vector=True)[hit.result.path]["vector"])
    assert hit.result.score == pytest.approx(float(stored @ svc.encoder.encode_text(["astronaut"])[0]), abs=1e-5)
    assert hit.result.score_space == svc.encoder.space.id


def test_keyword_evidence_counts_once_in_a_catalog(settings, tmp_path):
    service = MMSearch(settings.model_copy(update={"audio": False}))
    shop = make_shop(tmp_path / "shop")
    words = BagOfWords()
    library = service.library(create=True)
    CatalogIndexer(library, service.encoder, [words]).index(shop, id_column="SKU")
    tables = Catalogs(library).tables("products")
    for t in tables:  # both tables keyword-indexed over the same title, description and SKU
        t.maintain(ann_threshold=10**9)
    assert all(t.has_keyword_index() for t in tables)
    names = {t.name for t in tables}
    assert len(names) == 2  # an image table and a text table of the same products
    answer = CatalogSearch(library, [service.encoder, words], service.searcher.vectors).run(
        "products", [QueryPart("text", "MUG-02")], k=4)
    mug = next(h for h in answer.hits if h.product_id == "MUG-02")
    keyword = [c for c in mug.hit.contributions if c.kind == "keyword"]
    assert len(keyword) == 1 and set(keyword[0].table.split("+")) == names
    assert mug.hit.result.score_space == service.encoder.space.id  # the image model's cosine, not the text one's


# -- moderation: thresholds per (concept, space) ---------------------------------------------------
class MutedColour(ColourEncoder):
    """The colour encoder's picture of the world in a second space whose text-to-image cosines all run
    lower (cos' = cos / sqrt 2): the same ranking on a different scale, as two real models have."""

    name = "muted-colour"

    @property
    def space(self) -> EmbeddingSpace:
        return EmbeddingSpace(self.name, "rgb", "test", 5)

    def encode_images(self, batch: Sequence[np.ndarray]) -> np.ndarray:
        return np.stack([unit(np.append(v, 1.0)) for v in super().encode_images(batch)])

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([np.append(v, 0.0).astype(np.float32) for v in super().encode_text(texts)])


COLOURS = {"red": (220, 20, 30), "dark-red": (150, 10, 10), "orange": (240, 130, 20), "green": (30, 200, 40),
           "blue": (20, 40, 210), "grey": (128, 128, 128)}


@pytest.fixture
def two_colour_spaces(settings, tmp_path):
    root = tmp_path / "colours"
    for i, (name, rgb) in enumerate(COLOURS.items()):
        solid(root / f"{name}.png", rgb, seed=i)
    service = MMSearch(settings.model_copy(update={"audio": False}), encoder=ColourEncoder())
    service.extra_encoders = [MutedColour()]
    service.index([root])
    return service, root


def test_calibration_and_scan_are_per_space(two_colour_spaces):
    service, root = two_colour_spaces
    library = service.library()
    scanner = Scanner(library, service.encoders())
    concept = Concept("red", texts=["red"])
    labels = {str(root / f"{n}.png"): n in ("red", "dark-red") for n in COLOURS}
    cals = calibrate_spaces(scanner, concept, labels)
    assert [c.space for c in cals] == [ColourEncoder().space.id, MutedColour().space.id]  # main model first
    a, b = cals
    assert (a.best.precision, a.best.recall, b.best.precision, b.best.recall) == (1.0, 1.0, 1.0, 1.0)
    # The spaces measure the same files on different scales: one number cannot serve both.
    assert a.best.threshold - b.best.threshold > 0.1
    # A's cut applied in B would flag nothing; B's cut applied in A would flag the orange one too.
    assert max(b.scores[p] for p, y in labels.items() if y) < a.best.threshold
    assert max(a.scores[p] for p, y in labels.items() if not y) >= b.best.threshold
    with pytest.raises(ModerationError, match="2 embedding spaces"):
        calibrate(scanner, concept, labels)
    assert calibrate(scanner, concept, labels, space=b.space).best == b.best

    for cal in cals:
        cal.apply(concept)
    assert concept.threshold_for("text", a.space) == a.best.threshold
    assert concept.threshold_for("text", b.space) == b.best.threshold
    assert concept.threshold_for("text", "some-other-space") == concept.threshold  # the default stays
    flags = scanner.scan(WatchList([concept]))  # one flag per (file, concept): its best margin over tables
    assert {Path(f.path).stem for f in flags} == {"red", "dark-red"}
    for f in flags:
        own = a if f.table.endswith(ColourEncoder().space.id) else b
        assert f.threshold == own.best.threshold
    # Each table, at its own space's threshold, flags exactly the red ones.
    per_table = {t.name: {Path(f.path).stem for f in Scanner._scan_table(t, scanner.probes([concept], e, t.modality), t.modality)}
                 for t, e in scanner.tables()}
    assert list(per_table.values()) == [{"red", "dark-red"}, {"red", "dark-red"}]


def test_old_watch_lists_load_and_keep_their_thresholds(two_colour_spaces, settings):
    service, root = two_colour_spaces
    path = watchlist_path(service.library())
    # A watch-list written before per-space thresholds: one threshold per concept.
    path.write_text(json.dumps({"version": 1, "concepts": [
        {"name": "red", "texts": ["red"], "examples": [], "threshold": 0.31, "example_threshold": 0.9}]}))
    wl = WatchList.load(path)
    red = wl.get("red")
    for space in (ColourEncoder().space.id, MutedColour().space.id):
        assert (red.threshold_for("text", space), red.threshold_for("examples", space)) == (0.31, 0.9)
    red.set_threshold("text", 0.7, MutedColour().space.id)
    wl.put(red)
    wl.save(path)
    again = WatchList.load(path).get("red")
    assert again.threshold_for("text", MutedColour().space.id) == 0.7
    assert again.threshold_for("text", ColourEncoder().space.id) == 0.31
    with pytest.raises(ModerationError, match="between -1 and 1"):
        Concept("x", texts=["x"], space_thresholds={"s": {"text": 3.0}}).check()
    with pytest.raises(ModerationError, match="must be"):
        Concept("x", texts=["x"], space_thresholds={"s": {"txt": 0.3}}).check()


def test_cli_calibrate_apply_saves_one_threshold_per_space(settings, tmp_path):
    other = make_tiny_model_dir(tmp_path / "other-clip", seed=3)
    root = tmp_path / "colours"
    for i, (name, rgb) in enumerate(COLOURS.items()):
        solid(root / f"{name}.png", rgb, seed=i)
    runner = CliRunner()
    base = ["--data-dir", str(settings.data_dir), "--model", settings.model, "--pretrained", "", "--offline"]
    env = {"MMSEARCH_MODELS_DIR": str(settings.models_dir), "MMSEARCH_AUDIO": "false",
           "MMSEARCH_EXTRA_MODELS": str(other)}
    run = lambda *a: runner.invoke(cli, base + list(a), catch_exceptions=False, env=env)  # noqa: E731
    assert run("index", "-q", str(root)).exit_code == 0
    assert run("moderate", "watch", "add", "known", "--example", str(root / "blue.png")).exit_code == 0
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\n" + "\n".join(f"{root / n}.png,{int(n == 'blue')}" for n in COLOURS))
    res = run("moderate", "calibrate", "known", "--labels", str(labels), "--apply")
    assert res.exit_code == 0, res.output
    saved = json.loads(run("moderate", "watch", "list").stdout.splitlines()[0])
    spaces = {s.id for s in MMSearch(settings.model_copy(update={"audio": False, "extra_models": str(other)})).library().spaces("image")}
    assert set(saved["space_thresholds"]) == spaces and len(spaces) == 2
    assert saved["example_threshold"] == 0.85  # the default for spaces not calibrated yet is untouched
    assert res.stderr.count("saved examples threshold") == 2
