"""Fusion is pure: textbook examples computed by hand."""

from __future__ import annotations

import pytest

from mmsearch.query.fusion import FusionError, RankedList, fuse, normalize, rrf, weighted


def L(keys: str, scores=None, weight: float = 1.0) -> RankedList:
    ks = tuple(keys)
    return RankedList(ks, tuple(scores or [1.0 / (i + 1) for i in range(len(ks))]), weight)


def test_rrf_textbook_example():
    # Cormack et al.: d ranked 1st in one list and 3rd in another scores 1/61 + 1/63.
    scores = rrf([L("dab"), L("bcd")], k=60)
    assert scores["d"] == pytest.approx(1 / 61 + 1 / 63)
    assert scores["b"] == pytest.approx(1 / 63 + 1 / 61)
    assert scores["a"] == pytest.approx(1 / 62)
    assert scores["c"] == pytest.approx(1 / 62)


def test_item_in_two_lists_beats_items_in_one():
    fused = fuse([L("xa"), L("yb"), L("ba")], "rrf")
    assert [k for k, _ in fused[:2]] == ["a", "b"] or [k for k, _ in fused[:2]] == ["b", "a"]
    assert fused[0][1] > dict(fused)["x"]


def test_rrf_weights_and_negative_lists():
    pos, neg = L("abc"), L("a", weight=-1.0)
    scores = rrf([pos, neg], k=60)
    assert scores["a"] == pytest.approx(1 / 61 - 1 / 61)
    assert [k for k, _ in fuse([pos, neg])][0] == "b"


@pytest.mark.parametrize("k", [0, -5])
def test_rrf_k_must_be_positive(k):
    with pytest.raises(FusionError, match="positive"):
        rrf([L("a")], k=k)


def test_no_lists_or_no_positive_weight_is_refused():
    with pytest.raises(FusionError, match="nothing to fuse"):
        fuse([])
    with pytest.raises(FusionError, match="positive weight"):
        fuse([L("ab", weight=0.0), L("c", weight=-1.0)])


def test_minmax_and_zscore():
    assert normalize([2.0, 4.0, 3.0]).tolist() == [0.0, 1.0, 0.5]
    assert normalize([5.0, 5.0]).tolist() == [1.0, 1.0]
    z = normalize([1.0, 2.0, 3.0], "zscore")
    assert z.mean() == pytest.approx(0) and z.std() == pytest.approx(1)
    with pytest.raises(FusionError, match="unknown normalisation"):
        normalize([1.0], "softmax")  # type: ignore[arg-type]


def test_weighted_never_compares_raw_scores_across_lists():
    # Space A scores around 0.3, space B around 30: raw sums would let B decide alone.
    a = RankedList(("p", "q", "r"), (0.32, 0.31, 0.10))
    b = RankedList(("r", "q", "p"), (30.0, 29.0, 28.9))
    fused = dict(weighted([a, b]))
    # p: 1.0 + 0.0, q: 0.9545 + 0.0909, r: 0 + 1.0 -> q wins on balance, as min-max intends.
    assert fused["p"] == pytest.approx(1.0)
    assert fused["q"] == pytest.approx((0.31 - 0.10) / 0.22 + (29.0 - 28.9) / 1.1)
    assert max(fused, key=fused.get) == "q"


def test_missing_item_gets_the_list_floor():
    a = RankedList(("p", "q"), (0.9, 0.1))
    b = RankedList(("q",), (0.5,))
    fused = dict(weighted([a, b], "zscore"))
    assert fused["p"] == pytest.approx(2.0)  # z: +1 vs floor -1 in a; absent from b adds 0
    assert fused["q"] == pytest.approx(0.0)


def test_bad_lists_are_refused():
    with pytest.raises(FusionError, match="duplicate"):
        RankedList(("a", "a"), (1.0, 0.5))
    with pytest.raises(FusionError, match="2 keys but 1 scores"):
        RankedList(("a", "b"), (1.0,))
    with pytest.raises(FusionError, match="unknown fusion method"):
        fuse([L("a")], "borda")  # type: ignore[arg-type]


def test_rrf_gives_tied_scores_the_same_rank():
    # Two identical moments (or copies) tie in one list; the one that wins the other list must win the fusion,
    # whichever of the tied pair happens to be listed first.
    for tied in (("a", "b"), ("b", "a")):
        pictures = RankedList(tied + ("c",), (0.9, 0.9 + 1e-8, 0.1))  # a tie to within float noise
        sounds = RankedList(("c", "a", "b"), (0.8, 0.7, 0.2))
        fused = [k for k, _ in fuse([pictures, sounds])]
        assert fused.index("a") < fused.index("b")
    assert rrf([RankedList(("x", "y", "z"), (1.0, 1.0, 0.5))]) == {"x": 1 / 61, "y": 1 / 61, "z": 1 / 63}
