"""Sounds from the command line: index a mixed folder, search across modalities, fit the bridge."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from mmsearch.cli import cli
from tests.audio_support import sound_dir, tiny_clap_dir  # noqa: F401


@pytest.fixture
def run(settings, tiny_clap_dir):  # noqa: F811
    runner = CliRunner()
    base = ["--data-dir", str(settings.data_dir), "--model", settings.model, "--pretrained", "", "--device", "cpu",
            "--offline", "--audio-model", str(tiny_clap_dir)]

    def invoke(*args: str):
        return runner.invoke(cli, base + list(args), catch_exceptions=False,
                             env={"MMSEARCH_MODELS_DIR": str(settings.models_dir)})

    return invoke


@pytest.fixture
def library(run, sound_dir, photo_dir):  # noqa: F811
    shutil.copytree(photo_dir, sound_dir / "photos")
    (sound_dir / "broken.mp3").write_text("text, not sound")
    res = run("index", "-q", str(sound_dir))
    assert res.exit_code == 0, res.output
    assert "embedded 11" in res.stderr and "s of audio" in res.stderr
    assert "skipped" in res.stderr and "broken.mp3: not a readable audio file" in res.stderr
    return sound_dir


def test_every_direction_from_the_command_line(run, library):
    out = run("search", "dog barking", "--target", "audio", "-k", "3").stdout
    texts = [json.loads(line) for line in out.splitlines()]
    assert len(texts) == 3 and {t["modality"] for t in texts} == {"audio"} and texts[0]["duration_s"] > 0
    by_sound = run("search", "--audio", str(library / "tone.wav"), "--target", "audio", "--paths-only", "-k", "1")
    assert by_sound.stdout.strip() == str(library / "tone.wav")
    photos = run("search", "--audio", str(library / "tone.wav"), "--target", "images", "--paths-only", "-k", "2")
    assert len(photos.stdout.splitlines()) == 2 and all("/photos/" in p for p in photos.stdout.splitlines())
    sounds = run("search", "--image", str(library / "photos" / "img1.png"), "--target", "audio", "--plain", "-k", "2")
    lines = sounds.stdout.splitlines()
    assert lines[0].split() == ["#", "score", "type", "size", "path"] and len(lines) == 3
    assert all(" audio " in line and "s " in line for line in lines[1:])  # durations in the size column
    like = run("search", "--like", str(library / "noise.flac"), "--paths-only", "-k", "2").stdout.splitlines()
    assert len(like) == 2 and str(library / "noise.flac") not in like
    assert all(p.endswith((".wav", ".ogg", ".mp3")) for p in like)


def test_bridge_fit_and_show(run, library):
    assert "not fitted yet" in run("bridge", "show").stdout
    res = run("bridge", "fit")
    assert res.exit_code == 0 and "fitted clap tiny-clap" in res.stderr and res.stdout.strip().endswith(".npz")
    assert "captions:" in run("bridge", "show").stdout


def test_status_lists_the_audio_table(run, library):
    st = json.loads(run("status", "--json").stdout)
    assert sorted((t["modality"], t["rows"]) for t in st["tables"]) == [("audio", 4), ("image", 7)]


def test_models_lists_the_clap_models_and_which_are_here(tmp_path, tiny_clap_dir):  # noqa: F811
    shutil.copytree(tiny_clap_dir, tmp_path / "models" / "laion" / "larger_clap_general")
    res = CliRunner().invoke(cli, ["--offline", "models", "--json"],
                             env={"MMSEARCH_MODELS_DIR": str(tmp_path / "models")})
    clap = {r["model"]: r for r in map(json.loads, res.stdout.splitlines()) if r["encoder"] == "clap"}
    assert set(clap) == {"laion/clap-htsat-unfused", "laion/larger_clap_general", "laion/larger_clap_music_and_speech"}
    assert clap["laion/larger_clap_general"]["local"] and not clap["laion/clap-htsat-unfused"]["local"]
