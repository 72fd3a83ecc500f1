"""Near-duplicate clips: re-uploads of a known-bad clip, written with PyAV as a re-upload would be (H.264 to
VP9, half the size, a lower bitrate, the first seconds cut off, all at once), are found by their frame hashes
lined up in time; a different video is not, with a wide gap either side of the threshold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mmsearch.cli import cli
from mmsearch.service import MMSearch
from mmsearch.workflows.review import ReviewQueue
from mmsearch.workflows.video_dupes import (DUPE_SHARE, MIN_SHARE, VideoPrints, align, clusters, fingerprint,
                                            library_videos)
from tests.video_support import panning, reencode

COPIES = {"vp9.webm": {}, "half.mp4": {"scale": 0.5}, "low-bitrate.mp4": {"bit_rate": 60_000},
          "trimmed.mp4": {"trim_s": 3.0}, "all-three.webm": {"scale": 0.5, "trim_s": 2.3, "bit_rate": 80_000}}
MIRRORED = {"mirrored.mp4": {"mirror": True, "trim_s": 1.5}}  # flipped left to right (and trimmed)
MARGIN = 0.3  # every copy scores this far above the threshold, every other video this far below


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    """The known-bad clip (outside the library), its re-uploads and two other videos (inside)."""
    root = tmp_path_factory.mktemp("dupes")
    clip = panning(root / "bad.mp4", ["astronaut", "coffee", "rocket"])
    lib = root / "lib"
    lib.mkdir()
    out = {"clip": clip, **{name: reencode(clip, lib / name, **how) for name, how in COPIES.items()}}
    out["other.mp4"] = panning(lib / "other.mp4", ["chelsea", "camera", "immunohistochemistry"])
    flips = root / "flips"  # a library of its own: the other tests' libraries stay as they were
    flips.mkdir()
    out.update({name: reencode(clip, flips / name, **how) for name, how in MIRRORED.items()})
    out["one-shared-scene.mp4"] = panning(lib / "one-shared-scene.mp4", ["chelsea", "coffee", "camera"])
    return out


def test_copies_line_up_with_the_clip_and_other_videos_do_not(videos):
    clip = fingerprint(str(videos["clip"]))
    scores = {}
    for name in [*COPIES, "other.mp4", "one-shared-scene.mp4"]:
        found = align(clip, fingerprint(str(videos[name])))
        scores[name] = found.score if found else 0.0
        if name in ("trimmed.mp4", "all-three.webm"):  # the copy's second 0 is the clip's second 3 (2.3)
            assert found.offset_s == pytest.approx(-COPIES[name]["trim_s"], abs=0.5)
    assert min(scores[n] for n in COPIES) - MIN_SHARE > MARGIN, scores
    assert MIN_SHARE - scores["other.mp4"] > MARGIN, scores
    # One scene of three in common, at the same time: a third of the clip, not a copy of it.
    assert scores["one-shared-scene.mp4"] == pytest.approx(1 / 3, abs=0.05)


def test_moderate_copies_finds_the_reuploads_and_queues_where_they_are(videos, settings):
    base = ["--data-dir", str(settings.data_dir), "--model", settings.model, "--pretrained", "", "--offline"]
    env = {"MMSEARCH_MODELS_DIR": str(settings.models_dir), "MMSEARCH_NO_SERVER": "1"}
    runner = CliRunner()

    def run(*args: str, code: int = 0):
        done = runner.invoke(cli, base + list(args), catch_exceptions=False, env=env)
        assert done.exit_code == code, done.output
        return done

    run("index", "-q", str(videos["other.mp4"].parent))
    found = [json.loads(line) for line in run("moderate", "copies", str(videos["clip"]), "--queue").stdout.splitlines()]
    assert {Path(f["path"]).name for f in found} == set(COPIES)
    assert all(f["modality"] == "video" and f["score"] >= MIN_SHARE + MARGIN for f in found)
    trimmed = next(f for f in found if f["path"].endswith("trimmed.mp4"))
    assert (trimmed["start_s"], trimmed["offset_s"]) == (0.0, pytest.approx(-3.0, abs=0.5))
    queued = ReviewQueue(MMSearch(settings).library()).items()
    assert {(q.modality, q.concept) for q in queued} == {("video", "copy of bad.mp4")} and len(queued) == len(COPIES)
    assert all(q.moment is not None and Path(q.file).name in COPIES for q in queued)  # where in the video

    # A clip none of whose pictures is in the library finds nothing (exit status 1, as for images).
    unrelated = panning(videos["clip"].parent / "unrelated.mp4", ["hubble_deep_field", "retina", "moon"])
    assert run("moderate", "copies", str(unrelated), code=1).stdout.strip() == ""


def test_near_duplicate_pairs_clear_the_cluster_rule_by_a_margin(videos):
    """Every pair of re-uploads scores and covers over DUPE_SHARE + 0.1; every pair with an unrelated video or
    the one sharing a scene falls short of it by 0.1 in score or in coverage of the shorter."""
    from mmsearch.workflows.video_dupes import PrintIndex, _pair

    names = [*COPIES, "other.mp4", "one-shared-scene.mp4"]
    prints = {n: fingerprint(str(videos[n])) for n in names}
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            pair = _pair(prints[a], prints[b], 10)
            rule = min(pair.score, pair.coverage) if pair else 0.0
            if a in COPIES and b in COPIES:
                assert rule - DUPE_SHARE > 0.1, (a, b, pair)
            else:
                assert DUPE_SHARE - rule > 0.1, (a, b, pair)
    groups = clusters(PrintIndex(names, [prints[n] for n in names]))
    assert [sorted(p for p, _ in g) for g in groups] == [sorted(COPIES)]


def test_a_mirrored_reupload_is_found_as_mirrored_and_an_unflipped_print_misses_it(videos):
    from mmsearch.workflows.video_dupes import PrintIndex, copies_of_clip

    index = PrintIndex([str(videos[n]) for n in [*MIRRORED, "other.mp4", "vp9.webm"]],
                       [fingerprint(str(videos[n])) for n in [*MIRRORED, "other.mp4", "vp9.webm"]])
    both = fingerprint(str(videos["clip"]), mirrored=True)
    found = {Path(c.path).name: c for c in copies_of_clip(index, both)}
    assert set(found) == {"mirrored.mp4", "vp9.webm"}
    assert found["mirrored.mp4"].mirrored and not found["vp9.webm"].mirrored
    assert found["mirrored.mp4"].alignment.score - MIN_SHARE > MARGIN
    assert found["mirrored.mp4"].alignment.offset_s == pytest.approx(-1.5, abs=0.5)
    assert found["mirrored.mp4"].record()["method"] == "frame-hash, mirrored"
    plain = {Path(c.path).name for c in copies_of_clip(index, fingerprint(str(videos["clip"])))}
    assert plain == {"vp9.webm"}  # pHash does not survive a flip: without the mirrored hashes it is missed


def test_fingerprints_are_stored_by_content(videos, settings):
    service = MMSearch(settings)
    service.index([videos["other.mp4"].parent])
    rows = library_videos(service)
    first = VideoPrints(service.library()).index(rows)
    again = VideoPrints(service.library()).index(rows)
    assert (first.hashed, again.hashed) == (len(rows), 0) and len(rows) == len(COPIES) + 2
    for a, b in zip(first.prints, again.prints):
        assert (a.hashes == b.hashes).all() and (a.times == b.times).all()


def test_near_duplicate_clusters_hold_the_reuploads_and_nothing_else(videos, settings):
    """`moderate dupes` and the Review tab's clusters, from one workflow: the five re-uploads of the clip form
    one video cluster; the unrelated video and the one sharing a scene (a third of the time) are in none."""
    base = ["--data-dir", str(settings.data_dir), "--model", settings.model, "--pretrained", "", "--offline"]
    env = {"MMSEARCH_MODELS_DIR": str(settings.models_dir), "MMSEARCH_NO_SERVER": "1"}
    done = CliRunner().invoke(cli, base + ["index", "-q", str(videos["other.mp4"].parent)], env=env)
    assert done.exit_code == 0, done.output
    done = CliRunner().invoke(cli, base + ["moderate", "dupes"], catch_exceptions=False, env=env)
    assert done.exit_code == 0, done.output
    found = [json.loads(line) for line in done.stdout.splitlines()]
    assert [c["modality"] for c in found] == ["video"], found  # no photos here: only the video cluster
    members = found[0]["members"]
    assert {Path(m["path"]).name for m in members} == set(COPIES)
    assert all(m["score"] - DUPE_SHARE > 0.1 for m in members[1:]), members  # each against the first
    assert "0 images and 7 videos" in done.stderr and "(0 of images, 1 of videos)" in done.stderr

    from mmsearch.ui.review_tab import ReviewActions
    from mmsearch.ui.thumbs import Renditions

    svc = MMSearch(settings)
    actions = ReviewActions(svc, Renditions(settings.data_dir / "r", 10**8), lambda p: None)
    note, rows = actions.dupes(10)
    assert note.startswith("1 cluster(s) among 0 images and 7 videos")
    assert {Path(r[2]).name for r in rows} == set(COPIES) and {r[0] for r in rows} == {1}
    assert rows[0][1] == "first" and all(r[1].startswith("score ") for r in rows[1:])

    # "Find copies" with an uploaded clip: the same copies as the CLI, thumbnails of the copying stretch.
    note, shown = actions.copies(None, str(videos["clip"]), 10, True, MIN_SHARE)
    assert note.startswith(f"{len(COPIES)} copies of the clip") and f"{len(COPIES)} new in the queue" in note
    assert len(shown) == len(COPIES) and all(t.endswith(".webp") for t, _ in shown)
    assert {c.split(" · ")[1] for _, c in shown} == set(COPIES)
    queued = ReviewQueue(svc.library()).items()
    assert {q.concept for q in queued} == {"copy of bad.mp4"} and all(q.modality == "video" for q in queued)
    broken = videos["clip"].parent / "cut-short.mp4"
    broken.write_bytes(videos["clip"].read_bytes()[:3000])
    note, shown = actions.copies(None, str(broken), 10, False)
    assert note.startswith("⚠️") and "cut-short.mp4" in note and shown == []
