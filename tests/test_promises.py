"""What the README promises, checked through the `mmsearch` command itself (and the web app where it is one).

The command is reached through its installed entry point (`mmsearch.cli:main`), with `sys.argv` set, as a
shell would run it, so these tests hold whatever the CLI's modules look like inside. Each test checks the
effect a user would see: which files come back, with which scores, in which order.

Most ranking tests use a colour encoder (tests/workflow_support.py), registered under its own name and chosen
with `--encoder`, whose similarities are known in advance: a red picture is ~1.0 from "red", ~0.87 from
"orange", ~0 from "purple" and -0.5 from "blue". The random tiny CLIP cannot promise any order.
"""

from __future__ import annotations

import csv
import importlib
import importlib.metadata
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from PIL import Image, ImageOps

from mmsearch.encoders.registry import encoder_names, register, unregister
from tests.conftest import write_image
from tests.workflow_support import SAMPLES, ColourEncoder, jpeg, solid

REPO = Path(__file__).resolve().parent.parent
COLOUR = "colour-promises"


# -- the command, as a shell runs it ---------------------------------------------------------------
def entry_point() -> Callable[[], None]:
    """The function behind the `mmsearch` console script (pyproject's [project.scripts])."""
    found = [ep for ep in importlib.metadata.entry_points(group="console_scripts") if ep.name == "mmsearch"]
    module, _, func = (found[0].value if found else "mmsearch.cli:main").partition(":")
    return getattr(importlib.import_module(module), func)


@dataclass
class Ran:
    code: int
    out: str
    err: str

    def records(self) -> list[dict]:
        return [json.loads(line) for line in self.out.splitlines() if line.startswith("{")]

    def paths(self) -> list[str]:
        return [r["path"] for r in self.records()]


@pytest.fixture
def mmsearch(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tmp_path: Path):
    """run(*args, env={...}) -> Ran: one `mmsearch ARGS` invocation, exit code and both streams."""
    main = entry_point()
    monkeypatch.setenv("MMSEARCH_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("MMSEARCH_AUDIO", "false")  # photo libraries: no CLAP weights to look for

    def run(*args: str, env: dict[str, str] | None = None) -> Ran:
        capsys.readouterr()
        with monkeypatch.context() as m:
            for k, v in (env or {}).items():
                m.setenv(k, v)
            m.setattr(sys, "argv", ["mmsearch", *args])
            with pytest.raises(SystemExit) as stop:
                main()
        out = capsys.readouterr()
        code = stop.value.code
        return Ran(0 if code is None else int(code) if isinstance(code, int) else 1, out.out, out.err)

    return run


@pytest.fixture
def tiny(mmsearch, tmp_path: Path, tiny_model_dir: Path):
    """`mmsearch` on a library at tmp_path/library with the tiny random CLIP."""
    base = ["--data-dir", str(tmp_path / "library"), "--model", str(tiny_model_dir), "--pretrained", "",
            "--device", "cpu", "--offline"]
    return lambda *args, env=None: mmsearch(*base, *args, env=env)


@pytest.fixture(scope="module")
def colour_encoder():
    cls = type("PromiseColourEncoder", (ColourEncoder,), {})
    if COLOUR not in encoder_names():
        register(COLOUR)(cls)
    yield COLOUR
    unregister(COLOUR)


@pytest.fixture
def colour(mmsearch, tmp_path: Path, colour_encoder: str):
    base = ["--data-dir", str(tmp_path / "colour-library"), "--encoder", colour_encoder, "--device", "cpu",
            "--offline"]
    return lambda *args, env=None: mmsearch(*base, *args, env=env)


OLD, NEW = datetime(2020, 6, 1, tzinfo=timezone.utc), datetime(2024, 6, 1, tzinfo=timezone.utc)
REDS = {"reds/red1.png": (230, 20, 20), "reds/red2.png": (235, 15, 25), "reds/red3.jpg": (225, 25, 15)}
OTHERS = {"others/blue.png": (20, 20, 230), "others/green.png": (20, 230, 20), "others/yellow.jpg": (230, 230, 20),
          "others/purple.png": (128, 0, 255), "others/orange.jpg": (255, 128, 0)}


@pytest.fixture
def colour_library(colour, tmp_path: Path) -> Path:
    """Three near-identical reds (modified 2020) in reds/, five other colours (modified 2024) in others/."""
    root = tmp_path / "colours"
    for n, (name, rgb) in enumerate({**REDS, **OTHERS}.items()):
        path = solid(root / name, rgb, seed=n)
        stamp = (OLD if name in REDS else NEW).timestamp()
        os.utime(path, (stamp, stamp))
    res = colour("index", "-q", str(root))
    assert res.code == 0 and "embedded 8" in res.err, res.err
    return root


def names(paths: list[str]) -> set[str]:
    return {Path(p).name for p in paths}


# -- filters ---------------------------------------------------------------------------------------
def test_min_score_cuts_exactly_the_results_below_it(colour, colour_library):
    everything = colour("search", "red", "-k", "8", "--no-hybrid").records()
    assert len(everything) == 8
    cut = colour("search", "red", "-k", "8", "--no-hybrid", "--min-score", "0.8").records()
    kept = [r["path"] for r in everything if r["score"] >= 0.8]
    assert [r["path"] for r in cut] == kept
    assert names(kept) == {"red1.png", "red2.png", "red3.jpg", "orange.jpg"}  # yellow ~0.5, the rest lower


def test_folder_keeps_only_that_folder(colour, colour_library):
    res = colour("search", "blue", "-k", "8", "--folder", str(colour_library / "reds"))
    assert names(res.paths()) == {"red1.png", "red2.png", "red3.jpg"}  # the blue picture is elsewhere
    assert all(p.startswith(str(colour_library / "reds") + os.sep) for p in res.paths())


def test_type_keeps_only_that_extension(colour, colour_library):
    assert names(colour("search", "red", "-k", "8", "--type", "jpg").paths()) == {"red3.jpg", "yellow.jpg", "orange.jpg"}
    pngs = colour("search", "red", "-k", "8", "--type", "png").paths()
    assert names(pngs) == {"red1.png", "red2.png", "blue.png", "green.png", "purple.png"}


def test_after_and_before_filter_on_the_file_time(colour, colour_library):
    assert names(colour("search", "red", "-k", "8", "--after", "2024-01-01").paths()) == {Path(n).name for n in OTHERS}
    assert names(colour("search", "red", "-k", "8", "--before", "2024-01-01").paths()) == {Path(n).name for n in REDS}
    res = colour("search", "red", "-k", "8", "--after", "2020-01-01", "--before", "2021-01-01")
    assert names(res.paths()) == {Path(n).name for n in REDS}


# -- fusion and ranking ----------------------------------------------------------------------------
def _two_parts(colour, *extra: str) -> list[dict]:
    return colour("search", "--text", "red", "--text", "blue", "-k", "8", "--shortlist", "8", "--no-hybrid",
                  *extra).records()


def test_rrf_k_sets_the_fused_score_by_the_rrf_formula(colour, colour_library):
    fused: dict[float, dict[str, float]] = {}
    for k in (60.0, 2.0):
        hits = _two_parts(colour, "--rrf-k", str(k))
        assert len(hits) == 8
        for h in hits:
            assert len(h["matched"]) == 2  # both parts ranked every candidate
            assert h["fused_score"] == pytest.approx(sum(1.0 / (k + m["rank"]) for m in h["matched"]), abs=2e-6)
        fused[k] = {h["path"]: h["fused_score"] for h in hits}
    some = next(iter(fused[60.0]))
    assert abs(fused[60.0][some] - fused[2.0][some]) > 0.1  # 1/(60+r) vs 1/(2+r): the flag reached the fusion
    assert colour("search", "red", "--rrf-k", "0").code != 0


@pytest.mark.parametrize("norm", ["minmax", "zscore"])
def test_weighted_fusion_sums_each_lists_normalised_scores(colour, colour_library, norm):
    hits = _two_parts(colour, "--fusion", "weighted", "--norm", norm)
    assert len(hits) == 8
    by_part: dict[str, dict[str, float]] = {}
    for h in hits:
        for m in h["matched"]:
            by_part.setdefault(m["part"], {})[h["path"]] = m["score"]
    assert len(by_part) == 2
    expected = dict.fromkeys(by_part[next(iter(by_part))], 0.0)
    for scores in by_part.values():
        x = np.array(list(scores.values()))
        z = (x - x.min()) / (x.max() - x.min()) if norm == "minmax" else (x - x.mean()) / x.std()
        z = z - (0.0 if norm == "minmax" else z.min())
        for path, value in zip(scores, z):
            expected[path] += float(value)
    for h in hits:
        assert h["fused_score"] == pytest.approx(expected[h["path"]], abs=1e-4)
    assert [h["fused_score"] for h in hits] == sorted((h["fused_score"] for h in hits), reverse=True)


def test_norm_changes_the_weighted_scores(colour, colour_library):
    minmax = {h["path"]: h["fused_score"] for h in _two_parts(colour, "--fusion", "weighted", "--norm", "minmax")}
    zscore = {h["path"]: h["fused_score"] for h in _two_parts(colour, "--fusion", "weighted", "--norm", "zscore")}
    assert max(abs(minmax[p] - zscore[p]) for p in minmax) > 0.1


def test_mmr_spreads_a_page_of_near_copies(colour, colour_library):
    plain = colour("search", "red", "-k", "3", "--no-hybrid").paths()
    assert names(plain) == {"red1.png", "red2.png", "red3.jpg"}  # three near-identical reds
    assert colour("search", "red", "-k", "3", "--no-hybrid", "--mmr", "1").paths() == plain  # relevance only
    varied = colour("search", "red", "-k", "3", "--no-hybrid", "--mmr", "0").paths()
    assert varied[0] == plain[0]
    assert len(names(varied) & names(plain)) == 1  # after the best red, the least red-like pictures


def test_shortlist_bounds_the_candidates_each_part_contributes(colour, colour_library):
    def ranks(shortlist: str) -> list[int]:
        hits = colour("search", "--text", "red", "--text", "blue", "-k", "2", "--shortlist", shortlist,
                      "--no-hybrid").records()
        assert len(hits) == 2
        return [m["rank"] for h in hits for m in h["matched"]]

    # Two parts x a shortlist of 2: at most 4 candidates, so no list ranks anything lower than 4th.
    assert max(ranks("2")) <= 4
    # With all 8 pictures as candidates, a red (top of the "red" list) is near the bottom of the "blue" list.
    assert max(ranks("100")) > 4


# -- keyword search --------------------------------------------------------------------------------
def test_keyword_search_matches_folder_names(tiny, tmp_path: Path):
    root = tmp_path / "photos"
    for i in range(5):
        write_image(root / "misc" / f"img{i}.png", seed=i)
    write_image(root / "zanzibar" / "img9.png", seed=9)
    assert tiny("index", "-q", str(root)).code == 0
    hits = tiny("search", "zanzibar", "-k", "3").records()
    assert hits[0]["path"] == str(root / "zanzibar" / "img9.png")
    assert any(m["kind"] == "keyword" for m in hits[0]["matched"])
    plain = tiny("search", "zanzibar", "-k", "6", "--no-hybrid").records()
    assert not any(m["kind"] == "keyword" for h in plain for m in h["matched"])


def test_keyword_search_matches_captions(tiny, tmp_path: Path):
    root = tmp_path / "shop"
    write_image(root / "p1.jpg", seed=1)
    (root / "p1.jpg.txt").write_text("holiday snapshot from zanzibar")
    write_image(root / "p2.jpg", seed=2)
    (root / "p2.txt").write_text("black leather hiking boots")
    write_image(root / "p3.jpg", seed=3)
    model = ["--text-model", "sentence-transformers/all-MiniLM-L6-v2"]
    assert tiny(*model, "index", "-q", str(root)).code == 0
    hits = tiny(*model, "search", "zanzibar", "-k", "3").records()
    assert hits[0]["path"] == str(root / "p1.jpg")
    keyword = [m for m in hits[0]["matched"] if m["kind"] == "keyword"]
    assert keyword and keyword[0]["rank"] == 1
    boots = tiny(*model, "search", "leather", "-k", "3").records()
    assert boots[0]["path"] == str(root / "p2.jpg") and any(m["kind"] == "keyword" for m in boots[0]["matched"])


def _write_table(path: Path, rows: list[dict], delimiter: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path


SHOP = [
    {"sku": "CAT-01", "title": "Tabby cat poster", "price": "$12.50", "category": "posters", "tags": "pets; print",
     "image": "img/tabby-cat.jpg"},
    {"sku": "MUG-02", "title": "Coffee mug", "price": "$8.00", "category": "kitchen", "tags": "ceramic; gift",
     "image": "img/coffee-cup.jpg"},
    {"sku": "RKT-03", "title": "Rocket launch print", "price": "$1,299.00", "category": "posters",
     "tags": "space; night", "image": "img/rocket-launch.jpg"},
]


def _shop(root: Path, name: str, delimiter: str) -> Path:
    (root / "img").mkdir(parents=True, exist_ok=True)
    for row in SHOP:
        (root / row["image"]).write_bytes((SAMPLES / Path(row["image"]).name).read_bytes())
    return _write_table(root / name, SHOP, delimiter)


def test_catalog_tsv_is_imported_typed_and_searchable(tiny, tmp_path: Path):
    tsv = _shop(tmp_path / "shop", "products.tsv", "\t")
    res = tiny("index", str(tsv), "--id-column", "sku")
    assert res.code == 0 and "3 products" in res.err, res.err
    listed = [json.loads(line) for line in tiny("catalog", "list").out.splitlines()]
    assert [(c["catalog"], c["products"]) for c in listed] == [("products", 3)]
    cheap = [json.loads(line) for line in tiny("catalog", "search", "products", "poster", "--where",
                                                "price<100").out.splitlines()]
    assert {h["product_id"] for h in cheap} == {"CAT-01", "MUG-02"} and {h["price"] for h in cheap} == {12.5, 8.0}
    hit = json.loads(tiny("catalog", "search", "products", "RKT-03").out.splitlines()[0])
    assert hit["product_id"] == "RKT-03" and hit["price"] == 1299.0


def test_catalog_tags_are_keyword_searchable(tiny, tmp_path: Path):
    csv_file = _shop(tmp_path / "shop", "products.csv", ",")
    assert tiny("index", "-q", str(csv_file), "--id-column", "sku").code == 0
    for tag, sku in (("ceramic", "MUG-02"), ("space", "RKT-03"), ("pets", "CAT-01")):
        hits = [json.loads(line) for line in tiny("catalog", "search", "products", tag).out.splitlines()]
        assert hits[0]["product_id"] == sku, tag
        assert any(m["kind"] == "keyword" for m in hits[0]["matched"]), tag


def test_index_ocr_puts_the_words_in_images_into_keyword_search(tiny, tmp_path: Path):
    pytest.importorskip("rapidocr_onnxruntime")  # the test extra has it where its wheels exist (Python < 3.13)
    from tests.test_ocr import write_page

    root = tmp_path / "scans"
    write_page(root / "page.png")
    for i in range(3):
        write_image(root / f"img{i}.png", seed=i)
    assert tiny("index", "-q", str(root)).code == 0
    before = tiny("search", "Northwind", "-k", "4").records()
    assert not any(m["kind"] == "keyword" for h in before for m in h["matched"])
    assert tiny("index", "-q", "--ocr", str(root)).code == 0  # nothing new to embed: the OCR pass still runs
    after = tiny("search", "Northwind", "-k", "4").records()
    assert after[0]["path"] == str(root / "page.png")
    assert any(m["kind"] == "keyword" for m in after[0]["matched"])


# -- evaluation and moderation ---------------------------------------------------------------------
def test_eval_captions_reads_coco_caption_files(colour, tmp_path: Path):
    images = tmp_path / "val"
    colours = {"c1.png": ("red", (230, 20, 20)), "c2.png": ("blue", (20, 20, 230)),
               "c3.png": ("green", (20, 230, 20)), "c4.png": ("yellow", (230, 230, 20))}
    for n, (name, (_, rgb)) in enumerate(colours.items()):
        solid(images / name, rgb, seed=n)
    assert colour("index", "-q", str(images)).code == 0

    def coco(path: Path, words: list[str]) -> Path:
        data = {"images": [{"id": i, "file_name": name} for i, name in enumerate(colours)],
                "annotations": [{"image_id": i, "caption": f"{w} square"} for i, w in enumerate(words)]}
        path.write_text(json.dumps(data))
        return path

    right = coco(tmp_path / "captions.json", [w for w, _ in colours.values()])
    res = colour("eval", "--captions", str(right), "--images", str(images), "--json")
    assert res.code == 0, res.err
    report = json.loads(res.out.splitlines()[0])
    assert report["queries"] == 4 and report["overall"]["R@1"] == 1.0 and report["overall"]["MRR"] == 1.0
    wrong = coco(tmp_path / "shuffled.json", ["blue", "green", "yellow", "red"])  # each caption names another
    report = json.loads(colour("eval", "--captions", str(wrong), "--images", str(images), "--json").out.splitlines()[0])
    assert report["overall"]["R@1"] == 0.0
    limited = colour("eval", "--captions", str(right), "--images", str(images), "--limit", "2", "--json")
    assert json.loads(limited.out.splitlines()[0])["queries"] == 2


def test_moderate_copies_similarity_adds_embedding_matches(colour, tmp_path: Path):
    bad = tmp_path / "known-bad.png"
    Image.open(SAMPLES / "coffee-cup.jpg").convert("RGB").save(bad)
    lib = tmp_path / "uploads"
    lib.mkdir()
    jpeg(Image.open(bad), quality=50).save(lib / "reencoded.jpg")  # a hash match
    ImageOps.mirror(Image.open(bad)).save(lib / "mirrored.png")  # same colours, a far hash
    solid(lib / "blue.png", (20, 20, 230))
    assert colour("index", "-q", str(lib)).code == 0

    by_hash = colour("moderate", "copies", str(bad)).records()
    assert [(Path(r["path"]).name, r["method"]) for r in by_hash] == [("reencoded.jpg", "hash")]
    both = {Path(r["path"]).name: r for r in colour("moderate", "copies", str(bad), "--similarity", "0.95").records()}
    assert set(both) == {"reencoded.jpg", "mirrored.png"}
    assert both["mirrored.png"]["method"] == "embedding" and both["mirrored.png"]["similarity"] >= 0.95
    assert both["reencoded.jpg"]["method"] == "hash+embedding"


# -- the ANN index ---------------------------------------------------------------------------------
def _indexes(data_dir: Path) -> dict[str, list[str]]:
    import lancedb

    db = lancedb.connect(next(data_dir.rglob("*.lance")).parent)  # wherever the library keeps its tables
    return {name: [i.index_type.replace("_", "").lower() for i in db.open_table(name).list_indices()]
            for name in db.list_tables().tables if name.startswith("image__")}


def test_ann_index_is_built_above_the_threshold_only(tiny, tmp_path: Path):
    root = tmp_path / "photos"
    for i in range(40):
        write_image(root / f"img{i:02d}.png", seed=i)
    res = tiny("index", "-q", str(root), env={"MMSEARCH_ANN_THRESHOLD": "1000"})
    assert res.code == 0 and "ANN index built" not in res.err
    assert [t for types in _indexes(tmp_path / "library").values() for t in types] == ["fts"]  # keyword only
    res = tiny("index", "-q", str(root), env={"MMSEARCH_ANN_THRESHOLD": "30"})
    assert res.code == 0 and "ANN index built" in res.err, res.err
    (types,) = _indexes(tmp_path / "library").values()
    assert sorted(types) == ["fts", "ivfsq"]  # DEFAULT_ANN (chosen in bench/results/ann.md)
    hits = tiny("search", "--image", str(root / "img07.png"), "-k", "5", env={"MMSEARCH_ANN_THRESHOLD": "30"}).paths()
    assert len(hits) == 5 and hits[0] == str(root / "img07.png")


# -- HEIC ------------------------------------------------------------------------------------------
def _heic(path: Path, source: Path) -> Path:
    import pillow_heif

    img = Image.open(source).convert("RGB")
    pillow_heif.from_pillow(img).save(str(path), quality=90)
    return path


def test_heic_photos_are_indexed_and_searchable(tiny, tmp_path: Path):
    root = tmp_path / "phone"
    root.mkdir()
    _heic(root / "IMG_0001.heic", SAMPLES / "cat-chelsea.jpg")
    for i in range(3):
        write_image(root / f"img{i}.png", seed=i)
    res = tiny("index", "-q", str(root))
    assert res.code == 0 and "embedded 4," in res.err and "skipped 0 " in res.err, res.err
    w, h = Image.open(SAMPLES / "cat-chelsea.jpg").size
    heic = [r for r in tiny("search", "cat", "-k", "4").records() if r["path"].endswith(".heic")]
    assert len(heic) == 1 and (heic[0]["width"], heic[0]["height"], heic[0]["format"]) == (w, h, "HEIF")
    by_image = tiny("search", "--image", str(root / "IMG_0001.heic"), "-k", "1").records()
    assert by_image[0]["path"] == str(root / "IMG_0001.heic") and by_image[0]["score"] == pytest.approx(1.0, abs=1e-4)
    assert tiny("search", "cat", "--type", "heic", "-k", "4").paths() == [str(root / "IMG_0001.heic")]


def test_heic_upload_is_a_query_in_the_app(settings, tmp_path: Path):
    from gradio_client import handle_file

    from mmsearch.service import MMSearch
    from tests.test_ui import client, served

    root = tmp_path / "phone"
    root.mkdir()
    for i in range(3):
        write_image(root / f"img{i}.png", seed=i)
    _heic(root / "IMG_0002.heic", SAMPLES / "rocket-launch.jpg")
    service = MMSearch(settings)
    assert service.index([root]).embedded == 4
    query = _heic(tmp_path / "upload.heic", SAMPLES / "rocket-launch.jpg")
    with served(settings, service) as url:
        answer = client(url).predict(handle_file(str(query)), 2, api_name="/search_image")
    assert answer["ok"], answer
    assert answer["results"][0]["file"] == str(root / "IMG_0002.heic")


# -- serve --host/--port ---------------------------------------------------------------------------
def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return None


def _command() -> list[str]:
    script = Path(sys.executable).with_name("mmsearch")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "mmsearch"]


def test_serve_listens_on_the_host_and_port_it_is_given(tmp_path: Path, tiny_model_dir: Path):
    host = "127.0.0.2"  # a loopback address other than the default, so a default bind cannot pass
    port = _free_port(host)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "MMSEARCH_MODELS_DIR": str(tmp_path / "models"), "MMSEARCH_AUDIO": "false",
           "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    cmd = [*_command(), "--data-dir", str(tmp_path / "library"), "--model", str(tiny_model_dir), "--pretrained", "",
           "--device", "cpu", "--offline", "serve", "--host", host, "--port", str(port)]
    log = open(tmp_path / "serve.log", "w+")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while _status(f"http://{host}:{port}/") != 200:
            assert proc.poll() is None, f"serve exited with {proc.returncode}: {Path(log.name).read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"no answer on {host}:{port}: {Path(log.name).read_text()[-2000:]}"
            time.sleep(0.5)
        with urllib.request.urlopen(f"http://{host}:{port}/", timeout=10) as resp:
            assert "gradio" in resp.read().decode("utf-8", "replace").lower()
        assert _status(f"http://127.0.0.1:{port}/") is None  # bound to the address given, not all of them
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
