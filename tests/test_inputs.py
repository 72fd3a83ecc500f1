"""Inputs that must keep their meaning: the CLI takes text as written, filters mean what they say,
and bad settings or files get one line, not a traceback. Through the real CLI (click's CliRunner)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from mmsearch.cli import cli


@pytest.fixture
def run(settings):
    runner = CliRunner()
    base = ["--data-dir", str(settings.data_dir), "--model", settings.model, "--pretrained", "", "--device", "cpu",
            "--offline"]

    def invoke(*args: str, env: dict | None = None):
        return runner.invoke(cli, base + list(args), env={"MMSEARCH_MODELS_DIR": str(settings.models_dir), **(env or {})})

    return invoke


def matched_parts(res) -> set[str]:
    assert res.exit_code == 0, res.output
    hits = [json.loads(line) for line in res.stdout.splitlines()]
    assert hits
    return {m["part"] for h in hits for m in h["matched"]}


# -- 1. weights only where asked for -----------------------------------------------------------------
@pytest.mark.parametrize("text", ["12:30 meeting", "16:9 wallpaper", "0:00 countdown", "-1:people"])
def test_query_and_text_parts_are_taken_as_written(run, photo_dir, text):
    assert run("index", "-q", str(photo_dir)).exit_code == 0
    assert matched_parts(run("search", "-k", "2", "--", text)) == {f"+1 text:{text}"}
    res = run("search", "--text", text, "-k", "2")
    assert matched_parts(res) == {f"+1 text:{text}"}
    assert ("note:" in res.stderr) == (text == "-1:people")  # the old form gets a hint; times and ratios do not


def test_weight_option_weighs_the_part_before_it(run, photo_dir):
    run("index", "-q", str(photo_dir))
    res = run("search", "--text", "12:30 meeting", "--weight", "2", "--image", str(photo_dir / "img1.png"),
              "--text", "people", "-w", "-1.5", "-k", "3")
    assert matched_parts(res) == {"+2 text:12:30 meeting", "+1 image:img1.png", "-1.5 text:people"}


def test_weight_option_mistakes_are_usage_errors(run, photo_dir):
    run("index", "-q", str(photo_dir))
    res = run("search", "--weight", "2", "--text", "beach")
    assert res.exit_code == 2 and "--weight 2 must follow the part it weighs" in res.stderr
    res = run("search", "--text", "beach", "--weight", "2", "--weight", "3")
    assert res.exit_code == 2 and "--text beach has two --weight options" in res.stderr
    res = run("search", "--text", "beach", "--weight", "0")
    assert res.exit_code == 1 and "weight 0" in res.stderr


def test_file_names_with_colons_are_files(run, photo_dir):
    from tests.conftest import write_image

    odd = write_image(photo_dir / "12:30.png", seed=40)
    run("index", "-q", str(photo_dir))
    res = run("search", "--image", str(odd), "--paths-only", "-k", "1")
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == str(odd)
    res = run("search", "--image", f"2:{photo_dir / 'img1.png'}")
    assert res.exit_code == 1 and f"--image {photo_dir / 'img1.png'} --weight 2" in res.stderr
