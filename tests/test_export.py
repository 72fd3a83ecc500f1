"""Export: any result list as CSV or JSON lines (rank, path, modality, score, matched parts, metadata), and
copying the files to a folder for hand-off."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mmsearch.cli import cli
from mmsearch.search.results import SearchResult
from mmsearch.workflows.export import ExportError, copy_files, export, records


def test_search_exports_csv_and_jsonl_and_copies_files(settings, photo_dir, tmp_path):
    runner = CliRunner()
    base = ["--data-dir", str(settings.data_dir), "--model", settings.model, "--pretrained", "", "--offline"]
    run = lambda *a: runner.invoke(cli, base + list(a), catch_exceptions=False,  # noqa: E731
                                   env={"MMSEARCH_MODELS_DIR": str(settings.models_dir)})
    run("index", "-q", str(photo_dir))
    res = run("search", "--text", "beach", "--text", "people", "--weight", "-1", "-k", "3", "--export", str(tmp_path / "r.csv"),
              "--copy-to", str(tmp_path / "handoff"))
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert [r["rank"] for r in rows] == ["1", "2", "3"]
    assert list(rows[0])[:6] == ["rank", "path", "modality", "score", "fused_score", "matched"]
    assert "+1 text:beach via image__" in rows[0]["matched"] and "-1 text:people" in rows[0]["matched"]
    assert {"width", "height", "format", "size", "name"} <= set(rows[0])
    copied = sorted(p.name for p in (tmp_path / "handoff").iterdir())
    assert [c[:4] for c in copied] == ["001-", "002-", "003-"] and copied[0][4:] == rows[0]["name"]

    like = str(next(photo_dir.glob("img0.*")))
    res = run("search", "--like", like, "-k", "2", "--export", str(tmp_path / "like.jsonl"))
    lines = [json.loads(line) for line in (tmp_path / "like.jsonl").read_text().splitlines()]
    assert [line["rank"] for line in lines] == [1, 2] and lines[0]["modality"] == "image"
    assert [m["part"] for m in lines[0]["matched"]] == [f"+1 like:{Path(like).name}"]  # one path: the engine's


def test_export_formats_and_errors(tmp_path):
    hit = SearchResult(path=str(tmp_path / "a.jpg"), score=0.5, name="a.jpg", folder=str(tmp_path), width=2,
                       height=2, format="JPEG", size=10)
    assert records([hit, {"path": "b", "tags": ["x", "y"]}])[1] == {"rank": 2, "path": "b", "tags": ["x", "y"]}
    export([{"path": "b", "tags": ["x", "y"]}], tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_text().splitlines() == ["rank,path,tags", "1,b,x; y"]
    with pytest.raises(ExportError, match="name the file .csv or .jsonl"):
        export([hit], tmp_path / "r.xlsx")
    with pytest.raises(ExportError, match="the file is gone"):
        copy_files([str(tmp_path / "missing.jpg")], tmp_path / "out")
