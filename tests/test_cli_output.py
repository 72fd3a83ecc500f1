"""What `mmsearch index` and `mmsearch serve` print: skips grouped by cause, no library warnings, an
intact progress bar, and a busy port named with the way out."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from mmsearch.cli import cli
from tests.audio_support import write_sound
from tests.conftest import write_image

SOUNDS = 5
BAR = re.compile(r"\d+%\||\d+file \[|file/s")  # a tqdm render, full or partial


def palette_png(path: Path) -> None:
    """Transparency given as bytes on a palette image: Pillow warns when it is converted."""
    im = Image.new("P", (40, 30))
    im.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] * 85 + [0, 0, 0])
    im.putpixel((1, 1), 1)
    im.save(path, transparency=bytes([0, 255, 128]))


@pytest.fixture
def messy(tmp_path: Path) -> Path:
    root = tmp_path / "messy"
    for i in range(4):
        write_image(root / f"img{i}.jpg", seed=i)
    for i in range(3):
        palette_png(root / f"pal{i}.png")
    for i in range(SOUNDS):  # no CLAP weights in the test's model folder: every sound is skipped
        write_sound(root / "sounds" / f"s{i}.wav", 0.5, seed=i)
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    (root / "also-broken.jpg").write_bytes(b"\xff\xd8\xff other garbage")
    (root / "empty.png").write_bytes(b"")
    return root


def _segments(stderr: str) -> list[str]:
    """What the terminal shows, without the bar's own renders."""
    return [s.strip() for line in stderr.split("\n") for s in line.split("\r") if s.strip() and not BAR.search(s)]


def test_index_output_is_grouped_quiet_and_keeps_the_bar_whole(settings, messy):
    """A real process: Python warnings reach the terminal only outside pytest's own warning capture."""
    env = {**os.environ, "MMSEARCH_DATA_DIR": str(settings.data_dir), "MMSEARCH_MODEL": settings.model,
           "MMSEARCH_PRETRAINED": "", "MMSEARCH_DEVICE": "cpu", "MMSEARCH_MODELS_DIR": str(settings.models_dir),
           "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-m", "mmsearch", "index", str(messy)], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    shown = _segments(out.stderr)
    report = settings.data_dir / "skipped.tsv"
    expected = {
        "notes": [s for s in shown if re.fullmatch(rf"{re.escape(str(messy))}: \d+ new or changed \w+ files, \d+ unchanged", s)],
        "summary": [s for s in shown if s.startswith("embedded 7, reused 0")],
        "groups": [s for s in shown if s.startswith("skipped ")],
        "report": [s for s in shown if s == f"the skipped files and their reasons: {report}"],
        "indexes": [s for s in shown if s.endswith(": keyword index built")],
    }
    unexpected = [s for s in shown if not any(s in lines for lines in expected.values())]
    assert unexpected == []  # no warnings, no library log lines, no message glued into the bar
    assert "Warning" not in out.stderr and "WARNING" not in out.stderr
    groups = expected["groups"]
    assert len(groups) == 3, groups  # one line per cause, however many files share it
    sounds = [g for g in groups if "no audio model" in g]
    assert len(sounds) == 1 and sounds[0].startswith(f"skipped {SOUNDS} files: no audio model: ")
    assert "Copy " in sounds[0]  # the model message says what to do, once
    assert "skipped 2 files (also-broken.jpg, broken.jpg): not a readable image" in out.stderr
    assert f"skipped {messy / 'empty.png'}: empty file (0 bytes) - remove or copy again" in out.stderr
    listed = [line.split("\t")[0] for line in report.read_text().splitlines()[1:]]
    assert sorted(listed) == sorted([str(messy / n) for n in ("broken.jpg", "also-broken.jpg", "empty.png")]
                                    + [str(messy / "sounds" / f"s{i}.wav") for i in range(SOUNDS)])
    # Pillow's "Palette images with Transparency" warning is filtered once at import (media/images.py), so it
    # reaches neither the terminal (checked above) nor the log.


@pytest.fixture
def run(settings):
    runner = CliRunner()
    base = ["--data-dir", str(settings.data_dir), "--model", settings.model, "--pretrained", "", "--device", "cpu",
            "--offline"]
    return lambda *a: runner.invoke(cli, base + list(a), env={"MMSEARCH_MODELS_DIR": str(settings.models_dir)})


def test_verbose_lists_each_file_and_quiet_only_sums_up(run, messy, settings):
    res = run("index", "-v", str(messy))
    assert res.exit_code == 0, res.output
    for name in ("broken.jpg", "also-broken.jpg", "empty.png", *(f"sounds/s{i}.wav" for i in range(SOUNDS))):
        assert f"skipped {messy / name}: " in res.stderr
    (messy / "new.jpg").write_bytes((messy / "img0.jpg").read_bytes()[:40])  # truncated
    res = run("index", "-q", str(messy))
    assert res.exit_code == 0, res.output
    shown = res.stderr.splitlines()
    assert not [s for s in shown if BAR.search(s) or "new or changed" in s]
    groups = [s for s in shown if s.startswith("skipped ")]
    assert len(groups) == 4 and shown[0].startswith("embedded 0")  # broken files are tried again each run
    assert f"skipped {messy / 'new.jpg'}: " in res.stderr
    assert "new.jpg" in (settings.data_dir / "skipped.tsv").read_text()


def test_a_clean_run_removes_the_old_skip_report(run, photo_dir, settings):
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "skipped.tsv").write_text("path\treason\n/old\tgone\n")
    res = run("index", "-q", str(photo_dir))
    assert res.exit_code == 0 and "skipped" not in res.stderr.replace("skipped 0", "")
    assert not (settings.data_dir / "skipped.tsv").exists()


def test_serve_on_a_busy_port_names_it_and_the_option(run):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        res = run("serve", "--port", str(port))
    assert res.exit_code == 1, res.output
    assert res.stderr.strip() == (f"Error: port {port} on 127.0.0.1 is already in use (another mmsearch serve?); "
                                  f"choose a free one with --port N (or MMSEARCH_PORT)")
    assert "gradio" not in sys.modules or res.exception is not None  # answered before the app was built
