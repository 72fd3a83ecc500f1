"""Mood search and boards with videos: moods find a video's moment, a moment is an example (its picture and
its sound) and a board item (pinned as the moment, shown on the contact sheet as its frame)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from mmsearch.cli import cli
from mmsearch.errors import MMSearchError
from mmsearch.query.parts import QueryOptions
from mmsearch.service import MMSearch
from mmsearch.workflows.boards import Boards, contact_sheet, export_folder, more_like_board
from mmsearch.workflows.mood import Mood, MoodSearch
from tests.audio_support import audio_settings, tiny_clap_dir  # noqa: F401
from tests.video_support import two_scenes, write_video
from tests.workflow_support import ColourEncoder, solid

VOCAB = {"warm": Mood("warm", ("red", "orange", "a yellow thing"), ("warm",)),
         "cool": Mood("cool", ("blue", "purple", "green"), ("cool",))}
RED, BLUE = (220, 30, 30), (30, 40, 220)


def _plain(rgb: tuple[int, int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(np.array(rgb) + rng.integers(-12, 13, size=(64, 96, 3)), 0, 255).astype(np.uint8)


@pytest.fixture
def library(settings, tmp_path: Path) -> dict:
    """Coloured photos, and a video that is red for 4 s, then blue for 4 s (a colour model reads both)."""
    root = tmp_path / "lib"
    for i, (name, rgb) in enumerate([("red", RED), ("orange", (240, 140, 20)), ("yellow", (230, 220, 30)),
                                     ("blue", BLUE), ("purple", (120, 30, 200)), ("green", (30, 190, 50))]):
        solid(root / f"{name}.png", rgb, seed=i)
    video = write_video(root / "colours.mp4", [(4.0, _plain(RED, 1), None), (4.0, _plain(BLUE, 2), None)],
                        audio=False)
    service = MMSearch(settings, encoder=ColourEncoder())
    service.index([root])
    search = MoodSearch(service.library(), service.encoders(), service.searcher.vectors, vocabulary=VOCAB)
    return {"root": root, "video": str(video), "search": search}


def _found(answer) -> list[tuple[str, str | None]]:
    """(name, moment) of each hit: ('blue', None) for a photo, ('colours', '0:04–0:08') for a video."""
    from mmsearch.media.timecode import span

    return [(Path(h.result.path).stem, span(h.result.start_s, h.result.end_s) if h.result.start_s is not None
             else None) for h in answer.hits]


def test_moods_find_the_moment_that_has_the_feel(library):
    search = library["search"]
    videos = QueryOptions(k=3, targets=("video",))
    assert _found(search.run([("warm", 1.0)], options=videos)) == [("colours", "0:00–0:04")]
    assert _found(search.run([("cool", 1.0)], options=videos)) == [("colours", "0:04–0:08")]


def test_a_moment_is_an_example_for_photos_and_videos_alike(library):
    search, video = library["search"], library["video"]
    parts = search.example(f"{video}@5")  # the blue moment; a colour model has no ears: the picture only
    assert [p.label for p in parts] == ["moment:colours.mp4@0:04–0:08 picture"]
    photos = search.run([], parts, QueryOptions(k=2, targets=("image",)))
    assert _found(photos)[0] == ("blue", None)
    # "more like this moment, but warm": the mood pulls the red photos up against the blue example.
    warmer = _found(search.run([("warm", 2.0)], parts, QueryOptions(k=6, targets=("image",))))
    assert warmer.index(("red", None)) < warmer.index(("blue", None))
    with pytest.raises(MMSearchError, match="not in the library"):
        search.example(str(library["root"].parent / "elsewhere.mp4@3"))


def test_a_video_that_is_not_indexed_is_an_example_cut_as_the_indexer_cuts_it(library, tmp_path):
    """An upload: a copy of the library's video kept outside it (another name, not indexed)."""
    import shutil

    from mmsearch.workflows.moments import file_moment, moment_row

    search, video = library["search"], library["video"]
    upload = tmp_path / "uploads" / "clip.mp4"
    upload.parent.mkdir()
    shutil.copy(video, upload)
    for at in ("@1", "@5", "@7.9", "@60", ""):  # past the end: the last moment, as for an indexed video
        indexed, loose = moment_row(search.library, video + at), file_moment(str(upload) + at)
        assert (loose["start_s"], loose["end_s"]) == (indexed["start_s"], indexed["end_s"]), at
        assert indexed["start_s"] <= loose["frame_s"] < indexed["end_s"]
    parts = search.example(f"{upload}@5")
    assert [p.label for p in parts] == ["moment:clip.mp4@0:04–0:08 picture"]
    assert _found(search.run([], parts, QueryOptions(k=1, targets=("image",)))) == [("blue", None)]
    first = search.example(str(upload))  # the bare file: its first moment, the red one
    assert [p.label for p in first] == ["moment:clip.mp4@0:00–0:04 picture"]
    assert _found(search.run([], first, QueryOptions(k=1, targets=("image",)))) == [("red", None)]
    assert _found(search.run([], first, QueryOptions(k=1, targets=("video",)))) == [("colours", "0:00–0:04")]
    broken = tmp_path / "uploads" / "broken.mp4"
    broken.write_bytes(upload.read_bytes()[:2000])
    with pytest.raises(MMSearchError, match="broken.mp4"):
        search.example(str(broken))


def test_boards_hold_moments_and_hand_them_off(library, tmp_path):
    search, video, root = library["search"], library["video"], library["root"]
    boards = Boards(search.library)
    assert boards.pin("sunset", [f"{video}@1", str(root / "orange.png"), f"{video}#t=4,8"]) == 3
    pins = boards.items("sunset")
    records = {p.record()["path"]: p.record() for p in pins}
    assert records[f"{video}#t=0,4"]["moment"] == "0:00–0:04" and records[f"{video}#t=0,4"]["modality"] == "video"
    assert records[f"{video}#t=4,8"]["file"] == video

    answer = more_like_board(search, boards, "sunset", options=QueryOptions(k=4, targets=("image", "video")))
    assert "colours" not in {n for n, _ in _found(answer)}  # the board's own video, at none of its moments
    assert len(answer.hits) == 4
    # Both moments of one video: copied once.
    assert [p.name for p in export_folder(pins, tmp_path / "handoff")] == ["001-colours.mp4", "002-orange.png"]
    sheet = Image.open(contact_sheet(pins, tmp_path / "sheet.png", columns=3))
    red_tile, blue_tile = sheet.getpixel((110, 110)), sheet.getpixel((220 + 110, 110))  # items by path
    assert red_tile[0] > 150 > red_tile[2] and blue_tile[2] > 150 > blue_tile[0]  # each moment's own frame
    boards.unpin("sunset", [f"{video}@2"])  # any second of the moment names it
    assert [p.path for p in boards.items("sunset")] == [f"{video}#t=4,8", str(root / "orange.png")]
    with pytest.raises(MMSearchError, match="not in the library"):
        boards.pin("sunset", [str(tmp_path / "gone.mp4@1")])


def test_mood_and_board_cli_take_a_moment_with_its_sound(audio_settings, tmp_path):  # noqa: F811
    root = tmp_path / "lib"
    party = str(two_scenes(root / "party.mp4"))  # the coffee cup and a bell, seconds 4-8
    write_video(root / "quiet.mp4", [(8.0, _plain(BLUE, 3), None)])
    base = ["--data-dir", str(audio_settings.data_dir), "--model", audio_settings.model, "--pretrained", "",
            "--device", "cpu", "--offline", "--audio-model", audio_settings.audio_model]
    env = {"MMSEARCH_MODELS_DIR": str(audio_settings.models_dir), "MMSEARCH_NO_SERVER": "1"}
    runner = CliRunner()

    def run(*args: str) -> list[dict]:
        done = runner.invoke(cli, base + list(args), catch_exceptions=False, env=env)
        assert done.exit_code == 0, done.output
        return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]

    run("index", "-q", str(root))
    hits = run("mood", "calm", "--like", f"{party}@5", "--target", "videos", "-k", "2", "--pin", "reel")
    parts = {m["part"] for h in hits for m in h["matched"]}
    assert {"+1 moment:party.mp4@0:04–0:08 picture", "+1 moment:party.mp4@0:04–0:08 sound"} <= parts
    assert {"+1 mood:calm"} <= parts
    shown = run("board", "show", "reel")
    assert {(s["modality"], s["file"]) for s in shown} == {("video", h["path"]) for h in hits}
    assert all(s["path"] == f"{s['file']}#t={s['start_s']:g},{s['end_s']:g}" for s in shown)
    upload = tmp_path / "elsewhere" / "sent.mp4"  # not indexed: cut and heard on the spot
    two_scenes(upload)
    hits = run("mood", "--like", f"{upload}@5", "--target", "videos", "-k", "1")
    assert {m["part"] for m in hits[0]["matched"]} == {"+1 moment:sent.mp4@0:04–0:08 picture",
                                                       "+1 moment:sent.mp4@0:04–0:08 sound"}
    assert hits[0]["modality"] == "video"  # (random weights: which moment ranks is the colour test's job)
    run("board", "pin", "mine", f"{party}@4.5")
    like = run("board", "like", "mine", "--target", "videos", "-k", "3")
    assert like and party not in {h["path"] for h in like}
