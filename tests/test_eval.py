"""Metrics against hand-computed examples; judged files; `mmsearch eval` over a library built here."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from mmsearch.cli import cli
from mmsearch.errors import BadQuery
from mmsearch.eval.judged import load_caption_benchmark, load_judged
from mmsearch.eval.metrics import all_metrics, average_precision, dcg_at, ndcg_at, recall_at, reciprocal_rank

RANKED = [("a", 0.9), ("b", 0.8), ("c", 0.7), ("d", 0.6), ("e", 0.5)]


def test_recall_mrr_map_by_hand():
    rel = {"b": 1, "d": 1, "z": 1}  # z is never retrieved
    assert recall_at(RANKED, rel, 1) == 0
    assert recall_at(RANKED, rel, 2) == pytest.approx(1 / 3)
    assert recall_at(RANKED, rel, 5) == pytest.approx(2 / 3)
    assert reciprocal_rank(RANKED, rel) == 0.5
    assert average_precision(RANKED, rel) == pytest.approx((1 / 2 + 2 / 4) / 3)
    assert reciprocal_rank(RANKED, {"q": 1}) == 0 and average_precision(RANKED, {}) == 0


def test_graded_ndcg_by_hand():
    rel = {"a": 1, "c": 3, "e": 2}
    dcg = 1 / math.log2(2) + 7 / math.log2(4) + 3 / math.log2(6)
    ideal = 7 / math.log2(2) + 3 / math.log2(3) + 1 / math.log2(4)
    assert dcg_at(RANKED, rel, 10) == pytest.approx(dcg)
    assert ndcg_at(RANKED, rel, 10) == pytest.approx(dcg / ideal)
    assert ndcg_at(RANKED, rel, 1) == pytest.approx((1 / 1) / (7 / 1))
    assert ndcg_at([("c", 1), ("e", 0.5), ("a", 0.1)], rel, 10) == pytest.approx(1.0)


def test_ties_share_their_positions():
    tied = [("x", 0.9), ("rel", 0.5), ("other", 0.5)]
    # rel and other share positions 2 and 3: mean gain 0.5 over both discounts.
    expect = 0.5 * (1 / math.log2(3) + 1 / math.log2(4))
    assert dcg_at(tied, {"rel": 1}, 10) == pytest.approx(expect)
    flipped = [("x", 0.9), ("other", 0.5), ("rel", 0.5)]
    assert ndcg_at(tied, {"rel": 1}, 10) == ndcg_at(flipped, {"rel": 1}, 10)  # sort order of a tie is irrelevant
    assert dcg_at(tied, {"rel": 1}, 2) == pytest.approx(0.5 / math.log2(3))


def test_all_metrics_keys():
    assert set(all_metrics(RANKED, {"a": 1})) == {"R@1", "R@5", "R@10", "nDCG@10", "MRR", "mAP"}


def test_judged_files_jsonl_and_csv(tmp_path):
    (tmp_path / "q.jpg").write_bytes(b"x")
    jl = tmp_path / "judged.jsonl"
    jl.write_text(
        '{"query": "dog", "relevant": ["a.jpg", "b.jpg:2"]}\n'
        '# a comment\n'
        '{"image": "q.jpg", "query": "but red", "relevant": {"c.jpg": 3}}\n')
    js = load_judged(jl)
    assert [q.type for q in js.queries] == ["text", "text+image"]
    assert js.queries[0].relevant == {str(tmp_path / "a.jpg"): 1.0, str(tmp_path / "b.jpg"): 2.0}
    cs = tmp_path / "judged.csv"
    cs.write_text("query,image,audio,relevant,type\ncat,,,x.jpg;y.jpg:2,animals\n")
    (q,) = load_judged(cs).queries
    assert q.type == "animals" and q.relevant[str(tmp_path / "y.jpg")] == 2.0


@pytest.mark.parametrize("content,message", [
    ('{"query": "dog"}\n', "no 'relevant'"),
    ('{"relevant": ["a"]}\n', "needs 'query' text"),
    ("{not json\n", "not valid JSON"),
    ('{"image": "missing.jpg", "relevant": ["a"]}\n', "does not exist"),
])
def test_bad_judged_files_name_the_line(tmp_path, content, message):
    f = tmp_path / "bad.jsonl"
    f.write_text(content)
    with pytest.raises(BadQuery, match=f"bad.jsonl:1: .*{message}"):
        load_judged(f)


def test_caption_benchmarks(tmp_path):
    coco = tmp_path / "captions_val2014.json"
    coco.write_text(json.dumps({"images": [{"id": 1, "file_name": "1.jpg"}],
                                "annotations": [{"image_id": 1, "caption": "a cat"}, {"image_id": 1, "caption": "cat"}]}))
    js = load_caption_benchmark(coco, tmp_path / "imgs")
    assert [q.text for q in js.queries] == ["a cat", "cat"]
    assert js.queries[0].relevant == {str(tmp_path / "imgs" / "1.jpg"): 1.0}
    flickr = tmp_path / "results_20130124.token"
    flickr.write_text("1000092795.jpg#0\tTwo young guys with shaggy hair\n1000092795.jpg#1\tTwo friends\n")
    assert len(load_caption_benchmark(flickr, tmp_path, limit=1).queries) == 1


def test_mmsearch_eval_over_a_library(settings, photo_dir, tmp_path):
    base = ["--data-dir", str(settings.data_dir), "--model", settings.model, "--pretrained", "", "--offline"]
    runner = CliRunner()
    assert runner.invoke(cli, base + ["index", "-q", str(photo_dir)]).exit_code == 0
    judged = tmp_path / "judged.jsonl"
    lines = [json.dumps({"image": str(p), "relevant": [str(p)]}) for p in sorted(photo_dir.rglob("*.*"))]
    lines.append(json.dumps({"query": "img3", "relevant": [str(photo_dir / "img3.gif")]}))
    judged.write_text("\n".join(lines) + "\n")
    res = runner.invoke(cli, base + ["eval", str(judged), "--compare", "default,no-hybrid", "--json"])
    assert res.exit_code == 0, res.output
    default, no_hybrid = [json.loads(line) for line in res.stdout.splitlines()]
    # Each image query's relevant item is the image itself: it must come first.
    assert default["by_type"]["image"]["R@1"] == 1.0 and default["by_type"]["image"]["n"] == 7
    # The file name "img3" is found by the keyword side; dense alone on random weights need not.
    assert default["by_type"]["text"]["R@1"] == 1.0
    assert default["overall"]["MRR"] == 1.0
    # Without the keyword side, "img3" is found where the dense ranking puts it: rank it here in numpy.
    from mmsearch.service import MMSearch

    svc = MMSearch(settings)
    rows = svc.searcher.table().table.to_arrow().to_pylist()
    query = svc.encoder.encode_text(["img3"])[0]
    by_score = sorted(rows, key=lambda r: -float(np.dot(r["vector"], query)))
    rank = 1 + [r["path"] for r in by_score].index(str(photo_dir / "img3.gif"))
    assert no_hybrid["config"] == "no-hybrid" and no_hybrid["by_type"]["image"]["MRR"] == 1.0
    assert no_hybrid["by_type"]["text"]["MRR"] == pytest.approx(1 / rank, abs=1e-4)
    assert no_hybrid["overall"]["MRR"] == pytest.approx((7 + 1 / rank) / 8, abs=1e-4)
    table = runner.invoke(cli, base + ["eval", str(judged)]).stdout
    assert "R@1" in table and "nDCG@10" in table and "image" in table
    bad = runner.invoke(cli, base + ["eval", str(judged), "--compare", "nope"])
    assert bad.exit_code == 1 and "unknown configuration 'nope'" in bad.stderr
