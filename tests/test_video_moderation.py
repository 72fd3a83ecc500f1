"""Moderation over videos: a watch-list scan meets each moment's picture and its sound, and the review queue
holds the video once per concept at the flagged moment (start-end), through the CLI, the workflow and the
Review tab's actions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile as sf
from click.testing import CliRunner
from PIL import Image

from mmsearch.cli import cli
from mmsearch.service import MMSearch
from mmsearch.workflows.moderation import Concept, Scanner, WatchList, watchlist_path
from mmsearch.workflows.review import ReviewQueue
from tests.audio_support import audio_settings, tiny_clap_dir  # noqa: F401
from tests.video_support import BELL_RINGING, photo, sound, two_scenes, write_video


@pytest.fixture
def library(audio_settings, tmp_path: Path) -> dict:  # noqa: F811
    """party.mp4: astronaut in silence 0-4 s, the coffee cup with a bell 4-8 s; quiet.webm: a cat and a
    rocket in silence; the cup as a photo query and the bell as a sound, outside the library."""
    root = tmp_path / "lib"
    party = str(two_scenes(root / "party.mp4"))
    quiet = str(write_video(root / "quiet.webm", [(4.0, photo("chelsea"), None), (4.0, photo("rocket"), None)]))
    examples = tmp_path / "examples"
    examples.mkdir()
    Image.fromarray(photo("coffee", (192, 128))).save(examples / "cup.png")
    Image.fromarray(photo("astronaut", (192, 128))).save(examples / "astronaut.png")
    sf.write(examples / "bell.wav", sound(BELL_RINGING)[: 4 * 48_000], 48_000)
    svc = MMSearch(audio_settings)
    svc.index([root])
    return {"svc": svc, "party": party, "quiet": quiet, "cup": str(examples / "cup.png"),
            "bell": str(examples / "bell.wav"), "astronaut": str(examples / "astronaut.png")}


def _moment_scores(svc: MMSearch, concept: Concept) -> dict[str, float]:
    """Every indexed moment's score for the concept's examples, picture and sound sides (two spaces)."""
    scanner = Scanner(svc.library(), svc.encoders())
    keys = [r["path"] for t in svc.library().tables("video") for r in t.table.to_arrow().select(["path"]).to_pylist()]
    return {k: s for found in scanner.scores_by_space(concept, keys, "examples").values() for k, s in found.items()}


def _cut_below_the_top(scores: dict[str, float], top: str) -> float:
    """A threshold between the top moment and the runner-up; the top must be `top`, by a margin."""
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])
    assert ranked[0][0] == top, ranked[:3]
    assert ranked[0][1] - ranked[1][1] > 1e-3, ranked[:3]
    return (ranked[0][1] + ranked[1][1]) / 2


def test_watch_list_flags_a_videos_moment_by_its_picture_and_by_its_sound(library):
    svc, party = library["svc"], library["party"]
    moment = f"{party}#t=4,8"
    cup_cut = _cut_below_the_top(_moment_scores(svc, Concept("cup", examples=[library["cup"]])), moment)
    bell_cut = _cut_below_the_top(_moment_scores(svc, Concept("bell", examples=[library["bell"]])), moment)
    watch = WatchList([Concept("cup", examples=[library["cup"]], example_threshold=cup_cut),
                       Concept("bell", examples=[library["bell"]], example_threshold=bell_cut)])
    flags = Scanner(svc.library(), svc.encoders()).scan(watch)
    by_concept = {f.concept: f for f in flags if f.modality == "video"}
    assert set(by_concept) == {"cup", "bell"} and len(flags) == 2  # the photo example and the sound example
    cup, bell = by_concept["cup"], by_concept["bell"]
    assert (cup.path, cup.file, cup.matched) == (moment, party, "example:cup.png (picture)")
    assert (bell.path, bell.file, bell.matched) == (moment, party, "example:bell.wav (sound)")

    queue = ReviewQueue(svc.library())
    assert queue.add(flags).new == 2
    item = next(i for i in queue.items() if i.concept == "cup")
    record = item.record()
    assert (record["file"], record["start_s"], record["end_s"], record["moment"]) == (party, 4.0, 8.0, "0:04–0:08")
    queue.decide([item.id], "reject", "dana")

    # Looser: both moments of party.mp4 pass. Still one item per video and concept, at its best moment, with
    # the decision kept; the other flagged moment is counted, not queued on its own.
    watch.get("cup").example_threshold = -1.0
    again = Scanner(svc.library(), svc.encoders()).scan(watch)
    cups = [f for f in again if f.concept == "cup"]
    assert sorted(f.item for f in cups) == sorted([party, library["quiet"]])
    party_flag = next(f for f in cups if f.item == party)
    assert party_flag.path == moment and party_flag.matched == "example:cup.png (picture); 2 moments flagged"
    added = queue.add(again)
    assert added.refreshed >= 2
    assert [i.path for i in queue.items(concept="cup") if i.file == party] == [moment]  # one item per video
    kept = next(i for i in queue.items() if i.id == item.id)
    assert (kept.status, kept.decided_by, kept.path) == ("rejected", "dana", moment)

    # The concept now matches another moment best: the video's item moves there, decision and all.
    watch.get("cup").examples = [library["astronaut"]]
    watch.get("cup").example_threshold = _cut_below_the_top(
        _moment_scores(svc, watch.get("cup")), f"{party}#t=0,4")
    assert queue.add(Scanner(svc.library(), svc.encoders()).scan(watch)).new == 0
    moved = [i for i in queue.items(concept="cup") if i.file == party]
    assert [(i.id, i.path, i.status) for i in moved] == [(item.id, f"{party}#t=0,4", "rejected")]


def test_the_cli_scans_videos_into_the_queue_with_the_moment(library, audio_settings, tmp_path):  # noqa: F811
    svc, party, quiet = library["svc"], library["party"], library["quiet"]
    bell_cut = _cut_below_the_top(_moment_scores(svc, Concept("bell", examples=[library["bell"]])),
                                  f"{party}#t=4,8")
    base = ["--data-dir", str(audio_settings.data_dir), "--model", audio_settings.model, "--pretrained", "",
            "--device", "cpu", "--offline", "--audio-model", audio_settings.audio_model]
    env = {"MMSEARCH_MODELS_DIR": str(audio_settings.models_dir), "MMSEARCH_NO_SERVER": "1"}
    runner = CliRunner()

    def run(*args: str):
        done = runner.invoke(cli, base + list(args), catch_exceptions=False, env=env)
        assert done.exit_code == 0, done.output
        return done

    run("moderate", "watch", "add", "bell", "--example", library["bell"], "--example-threshold", f"{bell_cut:.6f}")
    assert "1 flagged, 1 new in the review queue" in run("moderate").stderr
    queued = [json.loads(line) for line in run("moderate", "queue").stdout.splitlines()]
    assert [(q["modality"], q["path"], q["file"], q["start_s"], q["end_s"]) for q in queued] == [
        ("video", f"{party}#t=4,8", party, 4.0, 8.0)]
    plain = run("moderate", "queue", "--plain").stdout.splitlines()
    assert plain[0].split() == ["id", "status", "concept", "score", "moment", "file"]
    assert plain[1].split()[4:] == ["0:04–0:08", party]

    # Calibration reads the decisions (the moment as the queue holds it) and a labels file naming whole
    # videos (each scored by its best moment).
    labels = tmp_path / "labels.csv"
    labels.write_text(f"path,label\n{party},1\n{quiet},0\n")
    res = run("moderate", "calibrate", "bell", "--labels", str(labels))
    suggested = next(line.split() for line in res.stdout.splitlines() if line.endswith("<- suggested"))
    assert suggested[4:7] == ["1", "0", "0"]
    assert "(2 labelled files)" in res.stdout and "clap" in res.stdout.lower()


def test_the_review_tab_shows_the_moment_and_plays_from_it(library, audio_settings):  # noqa: F811
    from mmsearch.ui.review_tab import ReviewActions
    from mmsearch.ui.thumbs import Renditions, thumbs_dir

    svc, party = library["svc"], library["party"]
    bell_cut = _cut_below_the_top(_moment_scores(svc, Concept("bell", examples=[library["bell"]])),
                                  f"{party}#t=4,8")
    WatchList([Concept("bell", examples=[library["bell"]], example_threshold=bell_cut)]).save(
        watchlist_path(svc.library()))
    exposed: list[str] = []
    actions = ReviewActions(svc, Renditions(thumbs_dir(audio_settings), audio_settings.max_image_pixels), exposed.extend)
    assert "1 new" in actions.scan()
    shown = actions.items("pending")
    assert shown.table()[0][4:7] == ["0:04–0:08", "example:bell.wav (sound)", party]
    [(thumb, caption)] = shown.gallery()  # the sound matched, but the tile shows the moment's picture
    assert thumb.endswith(".webp") and "0:04–0:08" in caption
    with Image.open(thumb) as frame:  # the coffee cup (second 4-8), not the astronaut (0-4)
        cup, astronaut = (Image.fromarray(photo(n)).resize(frame.size) for n in ("coffee", "astronaut"))
        assert _distance(frame, cup) < _distance(frame, astronaut)
    html = actions.player(shown.shown()[0].id)
    assert 'data-start="3" data-end="7"' in html and "0:04–0:08" in html and ".webm#t=3,7" in html
    assert actions.player("no-such-id") == ""


def _distance(a: Image.Image, b: Image.Image) -> float:
    import numpy as np

    return float(np.abs(np.asarray(a.convert("RGB"), np.float32) - np.asarray(b.convert("RGB"), np.float32)).mean())
