"""Mood search: prompt ensembling, moods combined with examples, boards (pin, more like this board, export
as files or a contact sheet), through the API and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from mmsearch.cli import cli
from mmsearch.errors import BadQuery
from mmsearch.query.parts import QueryOptions, QueryPart
from mmsearch.service import MMSearch
from mmsearch.workflows.boards import Boards, contact_sheet, export_folder, more_like_board
from mmsearch.workflows.mood import MOODS, Mood, MoodEncoder, MoodSearch, ensemble, mood_part
from tests.workflow_support import ColourEncoder, solid

# Moods a colour model understands: ground truth a test can check.
VOCAB = {"warm": Mood("warm", ("red", "orange", "a yellow thing"), ("warm",)),
         "cool": Mood("cool", ("blue", "purple", "green"), ("cool",))}


@pytest.fixture
def palette(tmp_path: Path) -> Path:
    root = tmp_path / "palette"
    for i, (name, rgb) in enumerate([("red", (220, 30, 30)), ("orange", (240, 140, 20)), ("yellow", (230, 220, 30)),
                                     ("blue", (30, 40, 220)), ("purple", (120, 30, 200)), ("green", (30, 190, 50)),
                                     ("teal", (20, 160, 170))]):
        solid(root / f"{name}.png", rgb, seed=i)
    return root


@pytest.fixture
def search(settings, palette) -> MoodSearch:
    service = MMSearch(settings, encoder=ColourEncoder())
    service.index([palette])
    return MoodSearch(service.library(), service.encoders(), service.searcher.vectors, vocabulary=VOCAB)


def stems(answer) -> list[str]:
    return [Path(h.result.path).stem for h in answer.hits]


def test_prompt_ensemble_is_the_normalised_mean_of_the_prompts():
    enc = ColourEncoder()
    vecs = enc.encode_text(["red", "orange", "a yellow thing"])
    expected = vecs.mean(axis=0) / np.linalg.norm(vecs.mean(axis=0))
    assert np.allclose(ensemble(enc, VOCAB["warm"].image), expected, atol=1e-6)
    wrapped = MoodEncoder(enc, VOCAB)
    assert np.allclose(wrapped.encode_text(["mood:warm"])[0], expected, atol=1e-6)
    assert np.allclose(wrapped.encode_text(["blue"])[0], enc.encode_text(["blue"])[0])  # plain text passes through
    assert wrapped.space == enc.space and wrapped.supports("image")
    with pytest.raises(BadQuery, match="unknown mood 'grumpy'"):
        mood_part("grumpy")


def test_the_sixteen_curated_moods_each_have_picture_and_sound_prompts():
    # The README promises 16 curated moods, each several prompts for pictures and for sounds.
    listed = [json.loads(line) for line in CliRunner().invoke(cli, ["mood", "--list"]).stdout.splitlines()]
    assert [m["mood"] for m in listed] == list(MOODS) and len(MOODS) == 16
    for m in listed:
        for kind in ("image_prompts", "sound_prompts"):
            prompts = m[kind]
            assert len(prompts) >= 4 and len(set(prompts)) == len(prompts), (m["mood"], kind)
            assert all(isinstance(p, str) and p.strip() for p in prompts), (m["mood"], kind)
    every = [p for m in listed for p in m["image_prompts"] + m["sound_prompts"]]
    assert len(set(every)) == len(every)  # no two moods share a prompt: each averages to its own direction


def test_moods_rank_by_feel_and_combine_with_examples(search, palette):
    warm = stems(search.run([("warm", 1.0)], options=QueryOptions(k=3)))
    assert set(warm) == {"red", "orange", "yellow"}
    cool = stems(search.run([("cool", 1.0)], options=QueryOptions(k=3)))
    assert set(cool) <= {"blue", "purple", "green", "teal"}
    # "more like this red one, but cooler": the example pulls the cool list towards red.
    cool_all = stems(search.run([("cool", 1.0)], options=QueryOptions(k=7)))
    mixed = search.run([("cool", 1.0)], [QueryPart("image", str(palette / "red.png"))], QueryOptions(k=7))
    assert stems(mixed).index("red") < cool_all.index("red")  # the example rises among the cool ones
    assert stems(mixed).index("teal") > cool_all.index("teal")  # the one farthest from red falls
    assert {c.part for c in mixed.hits[0].contributions} == {"+1 mood:cool", "+1 image:red.png"}


def test_boards_pin_more_like_and_export(search, palette, tmp_path):
    boards = Boards(search.library)
    assert boards.pin("autumn", [str(palette / "red.png"), str(palette / "orange.png")]) == 2
    assert boards.names() == {"autumn": 2}
    answer = more_like_board(search, boards, "autumn", options=QueryOptions(k=2))
    assert stems(answer) == ["yellow", "purple"] or stems(answer)[0] == "yellow"
    assert not {"red", "orange"} & set(stems(answer))  # the board's own items are left out
    pins = boards.items("autumn")
    copied = export_folder(pins, tmp_path / "handoff")
    assert [p.name for p in copied] == ["001-orange.png", "002-red.png"]
    sheet = contact_sheet(pins, tmp_path / "sheet.png", columns=2, title="autumn")
    img = Image.open(sheet)
    assert img.size == (440, 36 + 242) and img.getpixel((110, 36 + 110))[0] > 180  # the orange tile
    boards.unpin("autumn", [str(palette / "red.png")])
    assert [p.path for p in boards.items("autumn")] == [str(palette / "orange.png")]


def test_mood_and_board_cli(settings, palette, tmp_path):
    runner = CliRunner()
    base = ["--data-dir", str(settings.data_dir), "--model", settings.model, "--pretrained", "", "--offline"]
    run = lambda *a: runner.invoke(cli, base + list(a), catch_exceptions=False,  # noqa: E731
                                   env={"MMSEARCH_MODELS_DIR": str(settings.models_dir)})
    assert run("index", "-q", str(palette)).exit_code == 0
    listed = [json.loads(line) for line in run("mood", "--list").stdout.splitlines()]
    assert {"melancholic", "energetic", "calm morning", "tense"} <= {m["mood"] for m in listed}
    res = run("mood", "calm morning", "2:melancholic", "-k", "3", "--pin", "moody", "--export", str(tmp_path / "m.jsonl"))
    assert res.exit_code == 0, res.output
    hits = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(hits) == 3 and {m["part"] for m in hits[0]["matched"]} == {"+1 mood:calm morning", "+2 mood:melancholic"}
    assert "pinned 3 to board moody" in res.stderr
    exported = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert [e["rank"] for e in exported] == [1, 2, 3] and exported[0]["path"] == hits[0]["path"]

    res = run("mood", "calm", "--like", str(palette / "teal.png"), "--target", "images", "-k", "2")
    assert res.exit_code == 0, res.output
    res = run("board", "like", "moody", "-k", "2", "--mood", "tense")
    assert res.exit_code == 0 and len(res.stdout.splitlines()) == 2
    assert not {json.loads(line)["path"] for line in res.stdout.splitlines()} & {h["path"] for h in hits}
    res = run("board", "export", "moody", "--to", str(tmp_path / "out"), "--sheet", str(tmp_path / "s.png"))
    assert res.exit_code == 0 and len(list((tmp_path / "out").iterdir())) == 3 and (tmp_path / "s.png").stat().st_size
    assert run("mood", "grumpy").exit_code != 0
