"""Indexing videos next to photos and sounds, and finding the moment: by a picture, a sound, both, words."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from PIL import Image

from mmsearch.cli import cli
from mmsearch.query.parts import QueryPart
from mmsearch.service import MMSearch
from tests.audio_support import audio_settings, tiny_clap_dir  # noqa: F401
from tests.conftest import write_image
from tests.video_support import BELL_RINGING, photo, sound, two_scenes, write_video


@pytest.fixture
def svc(audio_settings) -> MMSearch:  # noqa: F811
    return MMSearch(audio_settings)


@pytest.fixture
def queries(tmp_path: Path) -> dict[str, str]:
    """The second scene's photo as an image file, the bell as a sound file."""
    folder = tmp_path / "queries"
    folder.mkdir()
    Image.fromarray(photo("coffee", (192, 128))).save(folder / "coffee.png")
    sf.write(folder / "bell.wav", sound(BELL_RINGING)[: 4 * 48_000], 48_000)
    return {"image": str(folder / "coffee.png"), "audio": str(folder / "bell.wav")}


def _tables(svc: MMSearch) -> dict[str, list[dict]]:
    """'picture' and 'sound': every row of the two video tables."""
    lib = svc.library()
    picture = lib.table("video", svc.encoder.space)
    sound_side = lib.table("video", svc.audio_encoder.space)
    return {name: (t.table.to_arrow().drop_columns(["vector"]).to_pylist() if t is not None else [])
            for name, t in (("picture", picture), ("sound", sound_side))}


def _ask(svc: MMSearch, *parts: QueryPart, targets=("video",), **more) -> list:
    return [h.result for h in svc.query(list(parts), svc.options(5, targets, **more)).hits]


def test_videos_index_moments_seen_and_heard_next_to_photos(svc, tmp_path):
    root = tmp_path / "lib"
    two_scenes(root / "party.mp4")
    two_scenes(root / "sub" / "party.webm", "chelsea", "rocket")
    write_image(root / "photo.jpg", seed=1)
    report = svc.index([root])
    assert report.skipped == [] and "16 s of video" in report.summary()
    rows = _tables(svc)
    keys = sorted(r["path"] for r in rows["picture"])
    assert keys == sorted(r["path"] for r in rows["sound"])  # one time axis: the same moments on both sides
    mp4 = str(root / "party.mp4")
    assert [k for k in keys if k.startswith(mp4)] == [f"{mp4}#t=0,4", f"{mp4}#t=4,8"]
    first = next(r for r in rows["picture"] if r["path"] == f"{mp4}#t=4,8")
    assert (first["file"], first["start_s"], first["end_s"], first["width"], first["height"]) == (mp4, 4.0, 8.0, 96, 64)
    assert (first["fps"], first["codec"], first["format"], first["channels"]) == (10.0, "h264", "MP4", 1)
    assert 4.0 <= first["frame_s"] < 8.0 and first["duration_s"] == pytest.approx(8.0)
    assert first["size"] == os.path.getsize(mp4) and len(first["hash"]) == 32 and "party" in first["text"]
    heard = next(r for r in rows["sound"] if r["path"] == f"{mp4}#t=4,8")
    assert 4.0 <= heard["offset_s"] < 8.0  # where in the moment its sound is most typical
    assert {t["modality"] for t in svc.status()["tables"]} >= {"image", "video"}


@pytest.mark.parametrize("suffix", [".mp4", ".webm"])
def test_the_moment_is_found_by_its_picture_by_its_sound_and_by_both(svc, tmp_path, queries, suffix):
    root = tmp_path / "lib"
    path = str(two_scenes(root / f"party{suffix}"))
    svc.index([root])
    by_picture = _ask(svc, QueryPart("image", queries["image"]))
    assert (by_picture[0].path, by_picture[0].start_s, round(by_picture[0].end_s)) == (path, 4.0, 8)
    by_sound = _ask(svc, QueryPart("audio", queries["audio"]))
    assert (by_sound[0].path, by_sound[0].start_s) == (path, 4.0)
    assert 4.0 <= by_sound[0].frame_s < 8.0  # found by its sound, shown by its picture
    both = svc.query([QueryPart("image", queries["image"]), QueryPart("audio", queries["audio"])],
                     svc.options(5, ("video",)))
    top = both.hits[0]
    assert top.result.start_s == 4.0 and top.result.modality == "video"
    assert {c.table.split("__")[1][:4] for c in top.contributions} == {"open", "clap"}  # picture and sound fused
    assert top.to_dict()["moment"] == f"{path}@4"
    assert len(both.hits) == 1  # a video is one result, at its best moment


def test_a_moment_matching_picture_and_sound_ranks_above_one_matching_either(svc, tmp_path, queries):
    root = tmp_path / "lib"
    bell = sound(BELL_RINGING)
    write_video(root / "picture-only.mp4", [(4.0, photo("coffee"), None)])
    write_video(root / "sound-only.mp4", [(4.0, photo("astronaut"), bell)])
    write_video(root / "both.mp4", [(4.0, photo("coffee"), bell)])
    write_video(root / "neither.mp4", [(4.0, photo("chelsea"), None)])
    svc.index([root])
    for method in ("rrf", "weighted"):
        found = _ask(svc, QueryPart("image", queries["image"]), QueryPart("audio", queries["audio"]), method=method)
        assert Path(found[0].path).name == "both.mp4", method
        assert Path(found[-1].path).name == "neither.mp4", method


def test_results_of_photos_sounds_and_videos_fuse_and_targets_keep_to_one(svc, tmp_path, queries):
    root = tmp_path / "lib"
    two_scenes(root / "party.mp4")
    shutil.copy(queries["image"], root / "coffee.png")
    sf.write(root / "ring.wav", sound(BELL_RINGING)[: 4 * 48_000], 48_000)
    svc.index([root])
    everything = _ask(svc, QueryPart("text", "party"), targets=("image", "audio", "video"))
    assert {r.modality for r in everything} == {"image", "audio", "video"}
    assert [r.modality for r in _ask(svc, QueryPart("text", "party"))] == ["video"]


def test_filters_on_duration_resolution_frame_rate_and_codec(svc, tmp_path):
    root = tmp_path / "lib"
    write_video(root / "short.mp4", [(2.0, photo("coffee"), None)], fps=10)
    write_video(root / "long.webm", [(6.0, photo("coffee", (128, 96)), None)], fps=25)
    write_image(root / "photo.jpg", seed=2)
    svc.index([root])
    text = QueryPart("text", "coffee")
    everything = ("image", "audio", "video")

    def names(*where: str) -> set[str]:
        return {Path(r.path).name for r in _ask(svc, text, targets=everything, where=list(where))}

    assert names("fps>=20") == {"long.webm"}  # photos have no frame rate: they match nothing, no error
    assert names("codec=h264") == {"short.mp4"}
    assert names("duration_s>3") == {"long.webm"}
    assert names("width>=128") == {"long.webm"}
    assert names("format=WEBM") == {"long.webm"}
    with pytest.raises(Exception, match="unknown filter column 'fpz'"):
        names("fpz>1")


def test_more_like_this_moment(svc, tmp_path):
    root = tmp_path / "lib"
    a = two_scenes(root / "a.mp4")  # astronaut, then coffee
    write_video(root / "b.mp4", [(4.0, photo("coffee"), None)])
    write_video(root / "c.mp4", [(4.0, photo("astronaut"), None)])
    svc.index([root])
    later = [Path(h.result.path).name for h in svc.like(f"{a}@5.5").hits]
    earlier = [Path(h.result.path).name for h in svc.like(f"{a}@1").hits]
    assert later[0] == "b.mp4" and earlier[0] == "c.mp4"  # the moment decides, and the file itself never answers
    assert "a.mp4" not in later + earlier
    with pytest.raises(Exception, match="not in the library"):
        svc.like(str(tmp_path / "nowhere.mp4@3"))


def test_incremental_renames_copies_changes_and_deletions(svc, tmp_path):
    root = tmp_path / "lib"
    a = two_scenes(root / "a.mp4")
    svc.index([root])
    before = _tables(svc)
    second = svc.index([root])
    assert second.embedded == 0 and not second.changed
    os.rename(a, root / "renamed.mp4")
    shutil.copy(root / "renamed.mp4", root / "copy.mp4")
    third = svc.index([root])
    assert third.embedded == 0 and third.reused == 4 and third.removed == 2  # 2 files x picture and sound
    after = _tables(svc)
    for side in ("picture", "sound"):
        files = {r["file"] for r in after[side]}
        assert files == {str(root / "renamed.mp4"), str(root / "copy.mp4")}
        assert len(after[side]) == 2 * len(before[side])
    # a changed file: its moments are replaced, none left over from the old cuts
    write_video(root / "copy.mp4", [(3.0, photo("rocket"), None), (3.0, photo("chelsea"), None),
                                    (3.0, photo("camera"), None)])
    svc.index([root])
    mine = sorted(r["path"] for r in _tables(svc)["picture"] if r["file"] == str(root / "copy.mp4"))
    assert mine == [f"{root / 'copy.mp4'}#t={s},{e}" for s, e in [(0, 3), (3, 6), (6, 9)]]
    (root / "renamed.mp4").unlink()
    svc.index([root])
    assert {r["file"] for side in _tables(svc).values() for r in side} == {str(root / "copy.mp4")}


def test_bad_videos_are_skipped_once_each_and_silent_ones_index_their_picture(svc, tmp_path):
    root = tmp_path / "lib"
    good = two_scenes(root / "good.mp4").read_bytes()
    (root / "empty.mp4").write_bytes(b"")
    (root / "notes.mov").write_text("not a video\n" * 20)
    (root / "cut.mkv").write_bytes(good[: len(good) // 3])
    write_video(root / "silent.mp4", [(2.0, photo("camera"), None)], audio=False)
    report = svc.index([root])
    reasons = dict(report.skipped)
    assert sorted(Path(p).name for p, _ in report.skipped) == ["cut.mkv", "empty.mp4", "notes.mov"]  # once each
    assert reasons[str(root / "empty.mp4")] == "empty file (0 bytes)"
    assert "not a readable video" in reasons[str(root / "notes.mov")]
    lines = [g.line() for g in report.skip_groups()]
    assert any("re-encode as H.264 MP4 or WebM" in line for line in lines), lines
    rows = _tables(svc)
    assert {Path(r["file"]).name for r in rows["picture"]} == {"good.mp4", "silent.mp4"}
    assert {Path(r["file"]).name for r in rows["sound"]} == {"good.mp4"}
    assert svc.index([root]).skipped == report.skipped  # the same files, nothing new: no silent-video line either


def test_without_the_audio_model_videos_index_their_picture(settings, tmp_path):
    root = tmp_path / "lib"
    two_scenes(root / "a.mp4")
    svc = MMSearch(settings)  # the default CLAP weights are not on this machine
    report = svc.index([root])
    assert {Path(p).name for p, _ in report.skipped} == {"a.mp4"}
    assert "no video model" in report.skipped[0][1] or "model" in report.skipped[0][1]
    table = svc.library().table("video", svc.encoder.space)
    assert table is not None and table.count() == 2


def test_video_settings_bound_the_moments(audio_settings, tmp_path):  # noqa: F811
    root = tmp_path / "lib"
    write_video(root / "calm.mp4", [(12.0, photo("coffee"), None)], fps=5)
    svc = MMSearch(audio_settings.model_copy(update={"video_moment_s": 4.0}))
    svc.index([root])
    assert [(r["start_s"], r["end_s"]) for r in sorted(_tables(svc)["picture"], key=lambda r: r["start_s"])] == \
        [(0.0, 4.0), (4.0, 8.0), (8.0, 12.0)]
    off = MMSearch(audio_settings.model_copy(update={"video": False, "data_dir": tmp_path / "other"}))
    off.index([root])
    assert off.library().table("video", off.encoder.space) is None


def test_the_cli_and_the_json_api_name_the_moment(audio_settings, tmp_path, queries):  # noqa: F811
    root = tmp_path / "lib"
    path = str(two_scenes(root / "party.mp4"))
    write_image(root / "photo.jpg", seed=3)
    base = ["--data-dir", str(audio_settings.data_dir), "--model", audio_settings.model, "--pretrained", "",
            "--device", "cpu", "--offline", "--audio-model", audio_settings.audio_model]
    env = {"MMSEARCH_MODELS_DIR": str(audio_settings.models_dir), "MMSEARCH_NO_SERVER": "1"}
    runner = CliRunner()

    def run(*args: str) -> list[dict]:
        done = runner.invoke(cli, base + list(args), catch_exceptions=False, env=env)
        assert done.exit_code == 0, done.output
        return [json.loads(line) for line in done.output.splitlines() if line.startswith("{")]

    runner.invoke(cli, base + ["index", str(root)], catch_exceptions=False, env=env)
    top = run("search", "--image", queries["image"], "--target", "videos")[0]
    assert (top["path"], top["start_s"], top["end_s"], top["moment"]) == (path, 4.0, 8.0, f"{path}@4")
    like = run("search", "--like", f"{path}@1", "--target", "videos")
    assert all(r["path"] != path for r in like)
    assert run("search", "party", "--where", "codec=h264", "--paths-only") == []  # plain paths, not JSON
    plain = runner.invoke(cli, base + ["search", "--image", queries["image"], "--target", "videos", "--plain"],
                          env=env).output
    assert "@ 4.0-8.0s" in plain

    from mmsearch.server.api import SearchIn, options_of
    from mmsearch.server.schema import api_record

    svc = MMSearch(audio_settings)
    body = SearchIn(parts=[{"kind": "image", "value": None, "data": None}], targets=["video"])
    assert options_of(body, svc).targets == ("video",)
    record = api_record(svc.query([QueryPart("image", queries["image"])], options_of(body, svc)).hits[0].to_dict())
    assert (record["file"], record["start_s"], record["end_s"], record["moment"]) == (path, 4.0, 8.0, f"{path}@4")
    assert "path" not in record
