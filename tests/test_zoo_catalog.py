"""`mmsearch models` (the zoo table), `models pull`, device/precision settings, several models per library."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import mmsearch
from mmsearch.cli import cli
from mmsearch.encoders.device import BadDeviceSetting, pick_dtype
from mmsearch.encoders.factory import parse_model_spec
from mmsearch.encoders.registry import encoder_names
from mmsearch.model_zoo import ZOO, find_entry
from mmsearch.query.parts import QueryOptions, QueryPart
from mmsearch.service import MMSearch
from tests.conftest import make_tiny_model_dir

# shipped in the package (mmsearch/data/README.md says where it comes from), so this runs on every checkout
RESULTS_CSV = Path(mmsearch.__file__).resolve().parent / "data" / "openclip_retrieval_results.csv"


def _models_json(tmp_path: Path) -> list[dict]:
    res = CliRunner().invoke(cli, ["--offline", "models", "--json"], env={"MMSEARCH_MODELS_DIR": str(tmp_path)})
    assert res.exit_code == 0, res.output
    return [json.loads(line) for line in res.stdout.splitlines()]


def test_models_table_covers_every_encoder_with_the_issue_columns(tmp_path):
    rows = _models_json(tmp_path)
    assert {r["encoder"] for r in rows} >= set(encoder_names())
    for key in ("modalities", "dim", "params_m", "licence", "gpu", "local", "quality", "source", "tested"):
        assert all(key in r for r in rows)
    by_model = {(r["encoder"], r["model"]): r for r in rows}
    remote = by_model[("jina-v4", "jinaai/jina-embeddings-v4")]
    assert remote["tested"] == "untested offline" and "non-commercial" in remote["licence"]
    assert by_model[("bge-vl", "BAAI/BGE-VL-base")]["modalities"] == "image,text,composed"
    assert by_model[("text-embed", "sentence-transformers/all-MiniLM-L6-v2")]["local"] is True  # pip package
    assert by_model[("open-clip", "ViT-L-14")]["gpu"] == "yes"
    res = CliRunner().invoke(cli, ["--offline", "models"], env={"MMSEARCH_MODELS_DIR": str(tmp_path)})
    assert "open_clip retrieval results table" in res.stdout and "F30k 66.8 / COCO 39.3" in res.stdout


def test_published_figures_are_copied_faithfully_from_the_open_clip_table():
    with open(RESULTS_CSV, newline="") as fh:
        table = {(r["name"], r["pretrained"]): r for r in csv.DictReader(fh)}
    checked = 0
    for e in ZOO:
        if e.flickr_r1 is None:
            continue
        row = table.get((e.model, e.pretrained or ""))
        assert row is not None, f"{e.model} {e.pretrained} cites a figure the open_clip table does not have"
        assert float(row["Flickr image retr. R@1"]) == pytest.approx(e.flickr_r1, abs=1e-4)
        assert float(row["MSCOCO image retr. R@1"]) == pytest.approx(e.coco_r1, abs=1e-4)
        assert float(row["params (M)"]) == pytest.approx(e.params_m, abs=0.1)
        checked += 1
    assert checked == sum(e.flickr_r1 is not None for e in ZOO) >= 6


def test_parameter_counts_are_those_of_the_architectures():
    import open_clip

    for name in ("ViT-B-32",):
        model = open_clip.create_model(name, pretrained=None, device="meta")
        counted = sum(p.numel() for p in model.parameters()) / 1e6
        assert counted == pytest.approx(find_entry(name).params_m, abs=0.1)


def test_pull_refuses_offline_with_instructions(tmp_path):
    res = CliRunner().invoke(cli, ["--offline", "models", "pull", "MobileCLIP2-S0"],
                             env={"MMSEARCH_MODELS_DIR": str(tmp_path)})
    assert res.exit_code == 1 and "offline" in res.stderr and "cannot download" in res.stderr
    res = CliRunner().invoke(cli, ["--offline", "models", "pull", "no-such-model"])
    assert res.exit_code == 1 and "not in the model zoo" in res.stderr


def test_model_specs():
    assert parse_model_spec("MobileCLIP2-S0@dfndr2b") == ("open-clip", "MobileCLIP2-S0", "dfndr2b")
    assert parse_model_spec("bge-vl:BAAI/BGE-VL-base") == ("bge-vl", "BAAI/BGE-VL-base", None)
    assert find_entry("jina-v4:jinaai/jina-embeddings-v4").tested == "untested offline"


def test_precision_rules():
    cpu = torch.device("cpu")
    assert pick_dtype(cpu, "auto") == torch.float32
    with pytest.raises(BadDeviceSetting, match="needs a GPU"):
        pick_dtype(cpu, "fp16")
    assert pick_dtype(torch.device("cuda"), "fp16") == torch.float16  # no card needed to pick the type
    with pytest.raises(BadDeviceSetting, match="unknown precision"):
        pick_dtype(cpu, "int4")


def test_second_image_model_gets_its_own_table_and_fuses(settings, photo_dir, tmp_path):
    other = make_tiny_model_dir(tmp_path / "other-clip", seed=5)
    svc = MMSearch(settings.model_copy(update={"audio": False, "extra_models": str(other)}))
    assert svc.index([photo_dir]).embedded == 14  # 7 pictures x 2 models
    assert len({t["weights"] for t in svc.status()["tables"]}) == 2
    answer = svc.query([QueryPart("text", "a dog")], QueryOptions(k=3, hybrid=False))
    assert len({c.table for h in answer.hits for c in h.contributions}) == 2


def test_cli_composed_search_with_bge_vl(tmp_path, photo_dir):
    from tests import zoo_support as zs

    model = zs.make_tiny_bge_vl(tmp_path / "bge")
    base = ["--offline", "--data-dir", str(tmp_path / "lib"), "--encoder", "bge-vl", "--model", str(model),
            "--device", "cpu"]
    env = {"MMSEARCH_AUDIO": "false", "MMSEARCH_MODELS_DIR": str(tmp_path / "models")}
    runner = CliRunner()
    assert runner.invoke(cli, base + ["index", "-q", str(photo_dir)], env=env).exit_code == 0
    res = runner.invoke(cli, base + ["search", "--composed", f"{photo_dir / 'img0.jpg'}::but in red", "-k", "2",
                                     "--no-hybrid"], env=env)
    assert res.exit_code == 0, res.output
    hits = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(hits) == 2 and hits[0]["matched"][0]["part"].startswith("+1 composed:img0.jpg")
    res = runner.invoke(cli, base + ["search", "--composed", "nope.jpg::red"], env=env)
    assert res.exit_code == 1 and "does not exist" in res.stderr
