"""Moderation: watch-list scans and thresholds, the review queue with decisions and audit export,
calibration, near-duplicate clusters and copies of a known-bad image on real photos with real edits."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from mmsearch.cli import cli
from mmsearch.service import MMSearch
from mmsearch.workflows.dupes import PerceptualHashes, clusters, copies_of, hash_index, library_images
from mmsearch.workflows.moderation import (
    Concept, ModerationError, Scanner, WatchList, best_point, calibrate, pr_points,
)
from mmsearch.workflows.review import ReviewError, ReviewQueue
from tests.workflow_support import SAMPLES, ColourEncoder, colour_shift, crop, jpeg, resize, solid


@pytest.fixture
def colours(tmp_path: Path) -> Path:
    root = tmp_path / "colours"
    for i, (name, rgb) in enumerate([("red", (220, 20, 30)), ("dark-red", (150, 10, 10)), ("orange", (240, 130, 20)),
                                     ("green", (30, 200, 40)), ("blue", (20, 40, 210)), ("grey", (128, 128, 128))]):
        solid(root / f"{name}.png", rgb, seed=i)
    return root


@pytest.fixture
def coloured(settings, colours) -> MMSearch:
    service = MMSearch(settings, encoder=ColourEncoder())
    service.index([colours])
    return service


def names(paths) -> set[str]:
    return {Path(p).stem for p in paths}


def test_scan_flags_items_above_each_concepts_threshold(coloured, colours):
    library = coloured.library()
    scanner = Scanner(library, coloured.encoders())
    watch = WatchList([Concept("red things", texts=["something red"], threshold=0.9),
                       Concept("like the blue one", examples=[str(colours / "blue.png")], example_threshold=0.99)])
    flags = scanner.scan(watch)
    by_concept = {c: {f.path for f in flags if f.concept == c} for c in ("red things", "like the blue one")}
    assert names(by_concept["red things"]) == {"red", "dark-red"}
    assert names(by_concept["like the blue one"]) == {"blue"}
    assert all(f.score >= f.threshold for f in flags)
    assert {f.matched for f in flags} == {"text:something red", "example:blue.png"}

    # The threshold is the cut: the scores say exactly which items pass it.
    scores = scanner.scores(watch.concepts[0], [str(p) for p in colours.iterdir()], "text")
    for t in (0.5, 0.8, 0.95, 0.999):
        watch.concepts[0].threshold = t
        got = {f.path for f in scanner.scan(watch) if f.concept == "red things"}
        assert got == {p for p, s in scores.items() if s >= t}
    assert names(p for p, s in scores.items() if s >= 0.5) >= {"red", "dark-red", "orange"}

    with pytest.raises(ModerationError, match="watch-list is empty"):
        scanner.scan(WatchList())
    with pytest.raises(ModerationError, match="neither text nor examples"):
        WatchList().put(Concept("nothing"))


def test_queue_keeps_decisions_across_scans_and_exports_for_audit(coloured, colours, tmp_path):
    library = coloured.library()
    watch = WatchList([Concept("red", texts=["red"], threshold=0.9)])
    scanner = Scanner(library, coloured.encoders())
    queue = ReviewQueue(library)
    assert (queue.add(scanner.scan(watch)).new, len(queue.items("pending"))) == (2, 2)
    red = next(i for i in queue.items() if i.path.endswith("/red.png"))
    decided = queue.decide([red.id], "reject", "alice", "weapon on display")[0]
    assert (decided.status, decided.decided_by, decided.note) == ("rejected", "alice", "weapon on display")
    assert decided.decided_at is not None

    again = queue.add(scanner.scan(watch))  # a new scan refreshes, never undoes a decision
    assert (again.new, again.refreshed) == (0, 2)
    assert {i.path.split("/")[-1]: i.status for i in queue.items()} == {"red.png": "rejected",
                                                                       "dark-red.png": "pending"}
    queue.decide([red.id], "escalate", "bob")
    assert [(h["decision"], h["decided_by"]) for h in queue.history()] == [("reject", "alice"), ("escalate", "bob")]
    with pytest.raises(ReviewError, match="approve, reject or escalate"):
        queue.decide([red.id], "delete", "bob")
    with pytest.raises(ReviewError, match="say who decides"):
        queue.decide([red.id], "approve", " ")


def test_calibration_shows_the_precision_recall_trade_off(coloured, colours):
    points = pr_points([0.9, 0.8, 0.7, 0.6], [True, False, True, False])
    assert [(p.threshold, p.precision, p.recall) for p in points] == [
        (0.9, 1.0, 0.5), (0.8, 0.5, 0.5), (0.7, 0.6667, 1.0), (0.6, 0.5, 1.0)]
    assert best_point(points).threshold == 0.7  # best F1
    assert best_point(points, min_precision=1.0).threshold == 0.9

    scanner = Scanner(coloured.library(), coloured.encoders())
    labels = {str(colours / f"{n}.png"): n in ("red", "dark-red") for n in ("red", "dark-red", "orange", "green", "grey")}
    cal = calibrate(scanner, Concept("red", texts=["red"]), labels)
    assert (cal.best.precision, cal.best.recall) == (1.0, 1.0)
    assert cal.scores[str(colours / "orange.png")] < cal.best.threshold <= cal.scores[str(colours / "dark-red.png")]
    with pytest.raises(ModerationError, match="both kinds"):
        calibrate(scanner, Concept("red", texts=["red"]), {str(colours / "red.png"): True})


@pytest.fixture(scope="module")
def edited(tmp_path_factory) -> Path:
    """Real photos and real edits of them: crop, resize, JPEG re-encode, colour shift, corner crop."""
    root = tmp_path_factory.mktemp("edited")
    for p in SAMPLES.iterdir():
        shutil.copy(p, root / p.name)
    open_ = lambda name: Image.open(SAMPLES / name).convert("RGB")  # noqa: E731
    crop(open_("astronaut-eileen-collins.jpg"), (.1, .1, .9, .9)).save(root / "astronaut-cropped.jpg", quality=90)
    resize(open_("coffee-cup.jpg"), 0.4).save(root / "coffee-small.png")
    jpeg(open_("rocket-launch.jpg"), 25).save(root / "rocket-q25.jpg", quality=25)
    colour_shift(open_("horse-silhouette.png")).save(root / "horse-tinted.png")
    crop(open_("gravel.jpg"), (.01, .02, .81, .8)).save(root / "gravel-corner.jpg", quality=85)
    jpeg(crop(open_("hubble-deep-field.jpg"), (.03, .06, .96, .93)), 60).save(root / "hubble-recut.jpg")
    return root


def test_near_duplicate_clusters_on_real_edits(settings, edited, tmp_path):
    service = MMSearch(settings, encoder=ColourEncoder())
    service.index([edited])
    index = hash_index(service)
    assert len(index.paths) == 18 and index.hashed == 18 - 1  # the two cat files are one content hash
    groups = [sorted(Path(p).name for p, _ in g) for g in clusters(index, cut=10)]
    assert sorted(groups) == sorted([
        ["astronaut-cropped.jpg", "astronaut-eileen-collins.jpg"], ["coffee-cup.jpg", "coffee-small.png"],
        ["rocket-launch.jpg", "rocket-q25.jpg"], ["horse-silhouette.png", "horse-tinted.png"],
        ["gravel-corner.jpg", "gravel.jpg"], ["hubble-deep-field.jpg", "hubble-recut.jpg"],
        ["cat-chelsea.jpg", "tabby-cat.jpg"],  # the sample set holds the same photo twice
    ])
    # The cut is adjustable: at 0 bits the re-encoded and re-cut copies drop out, a loose cut merges strangers.
    strict = {Path(p).name for g in clusters(index, cut=0) for p, _ in g}
    assert "cat-chelsea.jpg" in strict and not strict & {"rocket-q25.jpg", "hubble-recut.jpg", "gravel-corner.jpg"}
    assert max(len(g) for g in clusters(index, cut=30)) > 2
    again = PerceptualHashes(service.library()).index(library_images(service))
    assert again.hashed == 0 and np.array_equal(again.hashes, index.hashes)  # stored by content


def test_copies_of_a_known_bad_upload_via_the_cli(settings, edited, tmp_path):
    runner = CliRunner()
    base = ["--data-dir", str(settings.data_dir), "--model", settings.model, "--pretrained", "", "--offline"]
    run = lambda *a: runner.invoke(cli, base + list(a), catch_exceptions=False,  # noqa: E731
                                   env={"MMSEARCH_MODELS_DIR": str(settings.models_dir)})
    assert run("index", "-q", str(edited)).exit_code == 0
    bad = tmp_path / "upload.jpg"  # not in the library: a re-cut, re-encoded, smaller rocket
    jpeg(resize(crop(Image.open(SAMPLES / "rocket-launch.jpg").convert("RGB"), (.05, .05, .95, .95)), 0.7), 50).save(bad)
    res = run("moderate", "copies", str(bad), "--queue", "--plain")
    assert res.exit_code == 0, res.output
    found = [line.split()[-1] for line in res.stdout.splitlines()[1:]]
    assert names(found) == {"rocket-launch", "rocket-q25"}
    queued = [json.loads(line) for line in run("moderate", "queue").stdout.splitlines()]
    assert {q["concept"] for q in queued} == {"copy of upload.jpg"} and len(queued) == 2
    index_copies = copies_of(hash_index(MMSearch(settings)), Image.open(SAMPLES / "grass.jpg"), 10)
    assert names(c.path for c in index_copies) == {"grass"}

    res = run("moderate", "dupes", "--plain", "--cut", "10")
    assert "7 cluster(s) at cut 10" in res.stderr


def test_cli_watch_scan_decide_export_calibrate(settings, colours, tmp_path):
    runner = CliRunner()
    base = ["--data-dir", str(settings.data_dir), "--model", settings.model, "--pretrained", "", "--offline"]
    run = lambda *a: runner.invoke(cli, base + list(a), catch_exceptions=False,  # noqa: E731
                                   env={"MMSEARCH_MODELS_DIR": str(settings.models_dir)})
    assert run("index", "-q", str(colours)).exit_code == 0
    # Random weights cannot judge "red"; an example file can still be found: it is its own best match.
    res = run("moderate", "watch", "add", "known", "--example", str(colours / "blue.png"),
              "--example-threshold", "0.99999")
    assert res.exit_code == 0, res.output
    res = run("moderate")
    assert "scanned for 1 concept" in res.stderr and "new in the review queue" in res.stderr
    queued = [json.loads(line) for line in run("moderate", "queue", "--status", "pending").stdout.splitlines()]
    assert str(colours / "blue.png") in {q["path"] for q in queued}
    blue = next(q for q in queued if q["path"].endswith("blue.png"))
    res = run("moderate", "decide", blue["id"], "--reject", "--by", "carol", "--note", "known bad")
    assert json.loads(res.stdout)["status"] == "rejected"

    solid(colours / "new-blue.png", (20, 40, 210), seed=1)
    shutil.copy(colours / "blue.png", colours / "blue-again.png")
    res = run("index", "-q", str(colours))  # new files meet the watch-list as they are indexed
    assert "1 new in the review queue" in res.stderr or "2 new in the review queue" in res.stderr

    out = tmp_path / "audit.csv"
    assert run("moderate", "export", str(out)).exit_code == 0
    rows = list(csv.DictReader(out.open()))
    assert {"id", "path", "concept", "score", "status", "decided_by", "decided_at"} <= set(rows[0])
    assert any(r["decided_by"] == "carol" and r["status"] == "rejected" for r in rows)
    log = tmp_path / "log.jsonl"
    run("moderate", "export", str(log), "--log")
    assert [json.loads(line)["decision"] for line in log.read_text().splitlines()] == ["reject"]

    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\n" + "\n".join(f"{n}.png,{int(n == 'blue')}" for n in ("blue", "red", "green", "grey")))
    shutil.copy(labels, colours / "labels.csv")
    res = run("moderate", "calibrate", "known", "--labels", str(colours / "labels.csv"), "--apply")
    assert res.exit_code == 0, res.output
    assert "<- suggested" in res.stdout and "precision" in res.stdout
    watch = [json.loads(line) for line in run("moderate", "watch", "list").stdout.splitlines()]
    suggested = next(line.split() for line in res.stdout.splitlines() if line.endswith("<- suggested"))
    # blue.png is the example itself (score 1 up to float error): the only threshold with tp=1, fp=0, fn=0
    assert suggested[4:7] == ["1", "0", "0"] and float(suggested[0]) == pytest.approx(1.0, abs=1e-4)
    assert watch[0]["example_threshold"] == pytest.approx(float(suggested[0]), abs=5e-5)  # printed to 4 places
    assert "saved examples threshold" in res.stderr
