"""The CLI through click's CliRunner (in-process) and one real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from mmsearch.cli import cli


@pytest.fixture
def run(settings):
    runner = CliRunner()
    base = ["--data-dir", str(settings.data_dir), "--model", settings.model, "--pretrained", "", "--device", "cpu",
            "--offline"]

    def invoke(*args: str):
        return runner.invoke(cli, base + list(args), catch_exceptions=False,
                             env={"MMSEARCH_MODELS_DIR": str(settings.models_dir)})

    return invoke


def test_index_then_search_json_lines(run, photo_dir):
    res = run("index", "-q", str(photo_dir))
    assert res.exit_code == 0, res.output
    assert "embedded 7" in res.stderr
    res = run("search", "a cat", "-k", "3")
    lines = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(lines) == 3 and {"path", "score", "width", "height"} <= lines[0].keys()
    assert lines[0]["score"] >= lines[1]["score"] >= lines[2]["score"]


def test_second_index_says_nothing_to_do(run, photo_dir):
    run("index", "-q", str(photo_dir))
    res = run("index", "-q", str(photo_dir))
    assert "nothing to do: 7 files unchanged" in res.stderr


def test_search_output_formats(run, photo_dir):
    run("index", "-q", str(photo_dir))
    paths = run("search", "x", "--paths-only", "-k", "7").stdout.splitlines()
    assert sorted(paths) == sorted(str(p) for p in photo_dir.rglob("*") if p.is_file())
    plain = run("search", "x", "--plain", "-k", "2").stdout.splitlines()
    assert plain[0].split() == ["#", "score", "type", "size", "path"] and len(plain) == 3
    by_image = run("search", "--image", str(photo_dir / "img1.png"), "--paths-only", "-k", "1").stdout
    assert by_image.strip() == str(photo_dir / "img1.png")
    like = run("search", "--like", str(photo_dir / "img1.png"), "--paths-only", "-k", "3").stdout.splitlines()
    assert len(like) == 3 and str(photo_dir / "img1.png") not in like


def test_status_reports_rows_model_and_size(run, photo_dir):
    run("index", "-q", str(photo_dir))
    res = run("status", "--json")
    st = json.loads(res.stdout)
    assert st["roots"] == [str(photo_dir)] and st["tables"][0]["rows"] == 7 and st["size_bytes"] > 0
    assert "7 rows" in run("status").stdout


def test_errors_are_one_clear_line_not_a_traceback(run, photo_dir, settings):
    res = run("search", "cat")
    assert res.exit_code == 1 and "Error: no library at" in res.stderr and "Traceback" not in res.output
    run("index", "-q", str(photo_dir))
    res = run("search", "  ")
    assert res.exit_code == 1 and "query is empty" in res.stderr
    res = run("search")
    assert res.exit_code == 2 and "give a text QUERY" in res.stderr
    res = run("search", "x", "--where", "colour=red")
    assert res.exit_code == 1 and "unknown filter column 'colour'" in res.stderr
    res = run("search", "--text", "x", "--weight", "0")
    assert res.exit_code == 1 and "weight 0" in res.stderr
    res = run("search", "--image", "/no/such.jpg")
    assert res.exit_code == 1 and "does not exist" in res.stderr


def test_unknown_model_and_missing_weights(settings, tmp_path, photo_dir):
    runner = CliRunner()
    base = ["--data-dir", str(tmp_path / "lib"), "--offline"]
    res = runner.invoke(cli, base + ["--model", "ViT-B-33", "--pretrained", "x", "index", str(photo_dir)])
    assert res.exit_code == 1 and "unknown OpenCLIP model 'ViT-B-33'" in res.stderr
    res = runner.invoke(cli, base + ["--model", "ViT-B-32", "--pretrained", "laion2b_s34b_b79k", "index",
                                     str(photo_dir)], env={"MMSEARCH_MODELS_DIR": str(tmp_path / "models")})
    assert res.exit_code == 1 and "are not on this machine" in res.stderr
    assert not (tmp_path / "lib").exists()  # nothing half-created


def test_models_lists_local_presence(settings, tiny_model_dir, tmp_path):
    import shutil

    shutil.copytree(tiny_model_dir, tmp_path / "models" / "tiny-clip")
    res = CliRunner().invoke(cli, ["--offline", "models", "--json"], env={"MMSEARCH_MODELS_DIR": str(tmp_path / "models")})
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    default = next(r for r in rows if (r["model"], r["pretrained"]) == ("ViT-B-32", "laion2b_s34b_b79k"))
    assert default["local"] is False and default["dim"] == 512
    local = [r for r in rows if r["pretrained"] == "(local folder)"]
    assert local and local[0]["local"] is True


def test_python_dash_m_entry_point(settings, photo_dir):
    env = {**os.environ, "MMSEARCH_DATA_DIR": str(settings.data_dir), "MMSEARCH_MODEL": settings.model,
           "MMSEARCH_PRETRAINED": "", "MMSEARCH_DEVICE": "cpu", "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-m", "mmsearch", "index", "-q", str(photo_dir)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    out = subprocess.run([sys.executable, "-m", "mmsearch", "search", "sunset", "--paths-only", "-k", "2"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and len(out.stdout.splitlines()) == 2


def test_multi_part_query_with_filters_and_explanations(run, photo_dir):
    run("index", "-q", str(photo_dir))
    res = run("search", "--text", "sunset", "-w", "2", "--image", str(photo_dir / "img1.png"), "--text", "people",
              "--weight", "-1",
              "--where", "format=PNG", "-k", "5")
    hits = [json.loads(line) for line in res.stdout.splitlines()]
    assert [h["path"] for h in hits] == [str(photo_dir / "img1.png")]  # the only PNG
    assert res.stderr.strip() == "only 1 item matches the filters (asked for 5)"
    parts = {m["part"] for m in hits[0]["matched"]}
    assert parts == {"+2 text:sunset", "+1 image:img1.png", "-1 text:people"}
    plain = run("search", "x", "--plain", "--explain", "-k", "1").stdout
    assert "matched: +1 text:x via image__" in plain


def test_keyword_side_finds_file_names(run, photo_dir):
    from tests.conftest import write_image

    write_image(photo_dir / "SKU-48213.jpg", seed=77)
    run("index", "-q", str(photo_dir))  # also builds the keyword index
    top = run("search", "48213", "--paths-only", "-k", "1").stdout.strip()
    assert top == str(photo_dir / "SKU-48213.jpg")
