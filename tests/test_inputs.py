"""Inputs that must keep their meaning: the CLI takes text as written, filters mean what they say,
and bad settings or files get one line, not a traceback. Through the real CLI (click's CliRunner)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
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


# -- 2. dates on timestamp columns, on every search path ----------------------------------------------
def _dated(lib, n: int = 400):
    from tests.test_query import WORDS, make_table, row, scene

    rng = np.random.default_rng(5)
    rows = [row(f"/lib/{i}.jpg", scene(rng, WORDS[i % 6], noise=0.8), text=f"photo {i}",
                indexed_at=datetime(2020 + i % 5, 6, 1, tzinfo=timezone.utc)) for i in range(n)]
    return make_table(lib, rows), rows


DATE_CASES = [
    (["indexed_at>=2022-06-01"], lambda y: y >= 2022),  # the boundary itself is kept
    (["indexed_at>2022-06-01T05:00+05:00"], lambda y: y > 2022),  # the same moment, written in another zone
    (["indexed_at<2021-01-01"], lambda y: y == 2020),
    (["indexed_at>=2021-01-01", "indexed_at<2023-01-01"], lambda y: y in (2021, 2022)),
]


@pytest.mark.parametrize("path", ["exact", "ann"])
@pytest.mark.parametrize("where,keep", DATE_CASES)
def test_date_filters_on_timestamp_columns(tmp_path, path, where, keep):
    from mmsearch.query.parts import QueryOptions, QueryPart
    from mmsearch.store import Library
    from tests.test_query import engine

    lib = Library(tmp_path / "lib")
    table, rows = _dated(lib)
    if path == "ann":
        table.build_ann_index()
    expected = {r["path"] for r in rows if keep(r["indexed_at"].year)}
    # k covers every row, so a row that leaked from any list (dense or keyword) would show up here
    answer = engine(lib, threshold=100 if path == "ann" else 10**9).run(
        [QueryPart("text", "beach photo")], QueryOptions(k=400, where=where))
    assert {h.result.path for h in answer.hits} == expected
    keyword = [h for h in answer.hits if any(c.kind == "keyword" for c in h.contributions)]
    assert len(keyword) == len(expected)  # every kept row ("photo N") came through the keyword side too
    assert engine(lib, threshold=100 if path == "ann" else 10**9).vectors.uses_ann(table) == (path == "ann")


def test_date_filter_through_the_cli(run, photo_dir):
    run("index", "-q", str(photo_dir))
    res = run("search", "x", "--where", "indexed_at>=2024-01-01", "--paths-only", "-k", "20")
    assert res.exit_code == 0, res.output
    assert len(res.stdout.splitlines()) == 7  # everything was indexed just now
    res = run("search", "x", "--where", "indexed_at<2024-01-01", "-k", "3")
    assert res.exit_code == 0 and res.stdout == "" and "Traceback" not in res.output
    res = run("search", "x", "--where", "indexed_at>=soon")
    assert res.exit_code == 1 and "cannot read date 'soon' for indexed_at" in res.stderr


# -- 3. folder filters mean the folder, however it is written ----------------------------------------
def test_relative_and_home_folders_match_stored_absolute_paths(run, photo_dir, monkeypatch):
    run("index", "-q", str(photo_dir))
    deep = {str(photo_dir / "sub" / "deep" / "img6.jpg")}
    monkeypatch.chdir(photo_dir.parent)
    for folder in ["./photos/sub", "photos/sub/", "photos/sub/../sub"]:
        res = run("search", "x", "--folder", folder, "--paths-only", "-k", "7")
        assert res.exit_code == 0, res.output
        assert set(res.stdout.splitlines()) == deep, folder
    res = run("search", "x", "--folder", "~/sub", "--paths-only", "-k", "7", env={"HOME": str(photo_dir)})
    assert set(res.stdout.splitlines()) == deep
    res = run("search", "x", "--folder", "~", "--paths-only", "-k", "7", env={"HOME": str(photo_dir)})
    assert len(res.stdout.splitlines()) == 7
    res = run("search", "x", "--folder", "./photos/su", "--paths-only", "-k", "7")  # a prefix is not a folder
    assert res.stdout == ""


def test_the_engine_normalises_folders_for_every_caller(tmp_path, monkeypatch):
    from mmsearch.query.parts import QueryOptions, QueryPart
    from mmsearch.store import Library
    from tests.test_query import engine, make_table, row, scene

    rng = np.random.default_rng(1)
    lib = Library(tmp_path / "lib")
    make_table(lib, [row(str(tmp_path / d / f"{i}.jpg"), scene(rng, "beach")) for d in ("a", "ab") for i in range(3)])
    monkeypatch.chdir(tmp_path)
    answer = engine(lib).run([QueryPart("text", "beach")], QueryOptions(k=10, folder=" a/ "))
    assert sorted(h.result.path for h in answer.hits) == [str(tmp_path / "a" / f"{i}.jpg") for i in range(3)]


# -- 4. bad settings: one line naming the variable or flag, exit code 2 ------------------------------
@pytest.mark.parametrize("env,flags,message", [
    ({"MMSEARCH_WORKERS": "0"}, [], "MMSEARCH_WORKERS=0: a whole number from 1 to 64"),
    ({"MMSEARCH_WORKERS": "lots"}, [], "MMSEARCH_WORKERS=lots: a whole number from 1 to 64"),
    ({"MMSEARCH_OFFLINE": "maybe"}, [], "MMSEARCH_OFFLINE=maybe: true or false"),
    ({"MMSEARCH_AUDIO_OVERLAP": "1"}, [], "MMSEARCH_AUDIO_OVERLAP=1: a number, at least 0.0 and less than 1.0"),
    ({"MMSEARCH_PORT": "0"}, [], "MMSEARCH_PORT=0: a whole number from 1 to 65535"),
    ({"MMSEARCH_TRUNCATE_DIM": "8"}, [], "MMSEARCH_TRUNCATE_DIM=8: a whole number, at least 32"),
    ({"MMSEARCH_BATCH_SIZE": "0"}, [], "MMSEARCH_BATCH_SIZE=0: 0 is not in the range 1<=x<=1024"),
    ({"MMSEARCH_PRECISION": "fp8"}, [], "MMSEARCH_PRECISION=fp8: 'fp8' is not one of"),
    ({}, ["--truncate-dim", "8"], "--truncate-dim=8: a whole number, at least 32"),
    ({}, ["--batch-size", "0"], "Invalid value for '--batch-size': 0 is not in the range 1<=x<=1024"),
])
def test_bad_settings_are_one_line_naming_the_variable_or_flag(tmp_path, env, flags, message):
    res = CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "lib"), *flags, "status"], env=env)
    assert res.exit_code == 2, res.output
    errors = [line for line in res.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0], res.stderr
    assert "Traceback" not in res.output and "pydantic" not in res.output and res.exception is not None
    assert isinstance(res.exception, SystemExit)


def test_bad_settings_through_a_real_process(tmp_path):
    import os
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "mmsearch", "status"], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "MMSEARCH_WORKERS": "0", "MMSEARCH_DATA_DIR": str(tmp_path / "lib")})
    assert out.returncode == 2 and out.stderr.strip() == "Error: MMSEARCH_WORKERS=0: a whole number from 1 to 64"


# -- 5. domain errors: every verb says one line --------------------------------------------------------
def _leaves(group, prefix=()):
    import click

    for name, cmd in group.commands.items():
        path = (*prefix, name)
        if isinstance(cmd, click.Group):
            if cmd.invoke_without_command:  # the group itself does work
                yield path, cmd
            yield from _leaves(cmd, path)
        else:
            yield path, cmd


def test_every_verb_translates_domain_errors():
    from mmsearch.errors import FusionError, MMSearchError
    from mmsearch.query.fusion import FusionError as same

    assert same is FusionError and issubclass(FusionError, MMSearchError) and issubclass(FusionError, ValueError)
    verbs = dict(_leaves(cli))
    assert len(verbs) >= 30  # the tree was walked, not an empty group
    bare = [" ".join(path) for path, cmd in verbs.items() if not getattr(cmd.callback, "translates_domain_errors", False)]
    assert bare == []


@pytest.mark.parametrize("args", [
    ["search", "x"], ["search", "--like", "a.jpg"], ["status"], ["bridge", "show"], ["moderate"],
    ["moderate", "queue"], ["moderate", "watch", "list"], ["moderate", "dupes"], ["catalog", "list"],
    ["catalog", "search", "shop", "shoe"], ["mood", "calm"], ["board", "list"], ["board", "show", "b"], ["ocr"],
])
def test_verbs_on_a_missing_library_say_one_line(tmp_path, args):
    res = CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "none"), "--offline", *args])
    assert res.exit_code == 1, res.output
    assert res.stderr.count("Error:") == 1 and "Traceback" not in res.output, res.stderr
    assert isinstance(res.exception, SystemExit)


def test_fusion_errors_reach_the_cli_as_one_line(run, photo_dir, monkeypatch):
    """No CLI input reaches fuse() with bad arguments (the engine checks first), so make the engine skip
    one check and let the real rrf() refuse k <= 0: the edge must still say one line."""
    from mmsearch.query.parts import QueryOptions

    run("index", "-q", str(photo_dir))
    monkeypatch.setattr(QueryOptions, "validate", lambda self: None)
    res = run("search", "x", "--rrf-k", "0")
    assert res.exit_code == 1 and res.stderr.strip() == "Error: RRF k must be positive, got 0.0"


LABEL_FILES = [
    ("labels.csv", b"\xff\xfe\x00\x81 not text", "not a text file"),
    ("labels.jsonl", b'{"path": "img0.jpg", "label": 1}\n{not json\n', "line 2 is not JSON"),
    ("labels.jsonl", b"[1, 2]\n", "each JSON line must be an object"),
    ("labels.csv", b"", "no labels in"),
    ("labels.csv", b"path,label\nimg0.jpg,maybe\n", "need a path and a label"),
]


@pytest.mark.parametrize("name,content,message", LABEL_FILES)
def test_unreadable_label_files_are_one_line(run, photo_dir, tmp_path, name, content, message):
    run("index", "-q", str(photo_dir))
    assert run("moderate", "watch", "add", "known", "--example", str(photo_dir / "img0.jpg")).exit_code == 0
    labels = tmp_path / name
    labels.write_bytes(content)
    res = run("moderate", "calibrate", "known", "--labels", str(labels))
    assert res.exit_code == 1, res.output
    assert res.stderr.count("Error:") == 1 and message in res.stderr and "Traceback" not in res.output
    assert name in res.stderr


# -- the cli package: no heavy imports for --help, no import circles ----------------------------------
HEAVY = ("torch", "lancedb", "gradio", "open_clip", "transformers", "pydantic", "pydantic_settings", "numpy",
         "pyarrow", "PIL", "tqdm")


@pytest.mark.parametrize("args", [["--help"], ["search", "--help"], ["index", "--help"], ["moderate", "--help"]])
def test_help_imports_nothing_heavy(args):
    import subprocess
    import sys

    code = ("import sys\nfrom mmsearch.cli import cli\ntry:\n    cli(%r, prog_name='mmsearch')\nexcept SystemExit:\n"
            "    pass\nprint(sorted({m.split('.')[0] for m in sys.modules} & set(%r)), file=sys.stderr)" % (args, HEAVY))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "Usage: mmsearch" in out.stdout, out.stderr
    assert out.stderr.strip() == "[]"


@pytest.mark.parametrize("module", ["common", "parts", "root", "index", "search", "serve", "status", "models",
                                    "evaluate", "catalogs", "moderate", "mood"])
def test_each_cli_module_imports_on_its_own(module):
    """Imported first and alone, each module must load: an import circle fails in some order."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", f"import mmsearch.cli.{module}"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
