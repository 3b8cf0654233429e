from __future__ import annotations

import pytest

from searchkit.choices import FusionMethod
from searchkit.records import Ranked
from searchkit.search.fusion import (
    FusionOptions,
    aggregate_documents,
    cap_per_group,
    fuse,
    normalized_fusion,
    reciprocal_rank_fusion,
    single_leg,
)


def test_rrf_matches_hand_computed_scores() -> None:
    bm25 = [Ranked(10, 1, 7.0), Ranked(20, 2, 5.0), Ranked(30, 3, 1.0)]
    vector = [Ranked(20, 1, 0.9), Ranked(40, 2, 0.8)]
    fused = reciprocal_rank_fusion(bm25, vector, k=60)
    scores = {f.passage_id: f.score for f in fused}
    assert scores[20] == pytest.approx(1 / 62 + 1 / 61)
    assert scores[10] == pytest.approx(1 / 61)
    assert scores[40] == pytest.approx(1 / 62)
    assert scores[30] == pytest.approx(1 / 63)
    assert [f.passage_id for f in fused] == [20, 10, 40, 30]
    top = fused[0]
    assert top.bm25 == Ranked(20, 2, 5.0) and top.vector == Ranked(20, 1, 0.9)
    assert fused[1].vector is None and fused[2].bm25 is None


def test_rrf_ties_break_deterministically() -> None:
    # 5 and 7 both score 1/61: rank ties go to the lower passage id, whatever the input order.
    first = reciprocal_rank_fusion([Ranked(7, 1, 1.0)], [Ranked(5, 1, 1.0)])
    second = reciprocal_rank_fusion([Ranked(5, 1, 1.0)], [Ranked(7, 1, 1.0)])
    assert [f.passage_id for f in first] == [5, 7] == [f.passage_id for f in second]


def test_rrf_k_changes_the_balance() -> None:
    bm25 = [Ranked(1, 1, 1.0), Ranked(2, 2, 1.0)]
    vector = [Ranked(2, 1, 1.0), Ranked(3, 30, 1.0)]
    fused = reciprocal_rank_fusion(bm25, vector, k=1)
    assert fused[0].passage_id == 2
    assert fused[0].score == pytest.approx(1 / 3 + 1 / 2)


def test_single_leg_keeps_scores_and_order() -> None:
    ranked = [Ranked(3, 1, 0.5), Ranked(1, 2, 0.4)]
    fused = single_leg(ranked, "vector")
    assert [(f.passage_id, f.score, f.bm25) for f in fused] == [(3, 0.5, None), (1, 0.4, None)]


def test_cap_per_group() -> None:
    fused = single_leg([Ranked(i, i + 1, 1.0 - i / 10) for i in range(6)], "bm25")
    groups = {0: "a", 1: "a", 2: "b", 3: "a", 4: "b", 5: "c"}
    kept = cap_per_group(fused, groups.__getitem__, 1)
    assert [f.passage_id for f in kept] == [0, 2, 5]
    assert cap_per_group(fused, groups.__getitem__, None) == fused


def test_weighted_rrf() -> None:
    bm25 = [Ranked(1, 1, 9.0)]
    vector = [Ranked(2, 1, 0.9)]
    fused = reciprocal_rank_fusion(bm25, vector, k=60, vector_weight=0.75)
    assert [f.passage_id for f in fused] == [2, 1]
    assert fused[0].score == pytest.approx(1.5 / 61)
    assert fused[1].score == pytest.approx(0.5 / 61)


def test_minmax_fusion_hand_computed() -> None:
    bm25 = [Ranked(1, 1, 10.0), Ranked(2, 2, 6.0), Ranked(3, 3, 2.0)]
    vector = [Ranked(3, 1, 0.9), Ranked(4, 2, 0.5)]
    fused = {f.passage_id: f.score for f in normalized_fusion(bm25, vector, 0.5, "minmax")}
    # bm25 normalized: 1 -> 1.0, 2 -> 0.5, 3 -> 0.0; vector: 3 -> 1.0, 4 -> 0.0
    assert fused == pytest.approx({1: 0.5, 2: 0.25, 3: 0.5, 4: 0.0})
    order = [f.passage_id for f in normalized_fusion(bm25, vector, 0.5, "minmax")]
    assert order == [1, 3, 2, 4]  # 1 and 3 tie on score and best rank: the lower id first


def test_zscore_fusion_hand_computed() -> None:
    bm25 = [Ranked(1, 1, 3.0), Ranked(2, 2, 1.0)]  # mean 2, std 1: z = +1, -1
    vector = [Ranked(2, 1, 0.8), Ranked(3, 2, 0.4)]  # mean 0.6, std 0.2: z = +1, -1
    fused = {f.passage_id: f.score for f in normalized_fusion(bm25, vector, 0.25, "zscore")}
    # each leg shifted so its worst candidate adds 0: bm25 1 -> 2, 2 -> 0; vector 2 -> 2, 3 -> 0
    assert fused == pytest.approx({1: 0.75 * 2, 2: 0.25 * 2, 3: 0.0})


@pytest.mark.parametrize("method", ["minmax", "zscore"])
def test_a_leg_whose_candidates_tie_gives_each_its_whole_weight(method: FusionMethod) -> None:
    # A filter that leaves one candidate: it is its legs' best, not a hit scoring 0.
    alone = normalized_fusion([Ranked(3, 1, 4.2)], [Ranked(3, 1, 0.61)], 0.4, method)
    assert [(f.passage_id, f.score) for f in alone] == [(3, pytest.approx(1.0))]
    tied = normalized_fusion(
        [Ranked(1, 1, 2.0), Ranked(2, 2, 2.0)], [Ranked(9, 1, 0.5)], 0.5, method
    )
    assert [f.score for f in tied] == [pytest.approx(0.5)] * 3
    # Equal floats whose std comes out a hair above 0 (1.4e-17 for three 0.1s) tie all the same.
    floats = normalized_fusion([Ranked(i, i, 0.1) for i in (1, 2, 3)], [], 0.5, method)
    assert [f.score for f in floats] == [pytest.approx(0.5)] * 3
    # Scores a subnormal apart: their std rounds to 0, and zscore counts them as tied; their
    # range does not, and minmax spreads them as any two scores.
    tiny = normalized_fusion([Ranked(1, 1, 5e-324), Ranked(2, 2, 0.0)], [], 0.5, method)
    expected = [0.5, 0.5] if method == "zscore" else [0.5, 0.0]
    assert [f.score for f in tiny] == pytest.approx(expected)


def test_fuse_dispatches_on_method() -> None:
    bm25, vector = [Ranked(1, 1, 5.0)], [Ranked(2, 1, 0.5)]
    assert fuse(bm25, vector, FusionOptions(method="rrf")) == reciprocal_rank_fusion(bm25, vector)
    minmax = FusionOptions(method="minmax", vector_weight=0.2)
    assert fuse(bm25, vector, minmax) == normalized_fusion(bm25, vector, 0.2, "minmax")


def test_aggregate_documents_max_and_decay() -> None:
    items = single_leg([Ranked(0, 1, 0.9), Ranked(1, 2, 0.8), Ranked(2, 3, 0.7)], "vector")
    doc_of = {0: "a", 1: "b", 2: "b"}.__getitem__
    assert aggregate_documents(items, doc_of, "max") == [("a", 0.9), ("b", 0.8)]
    decayed = aggregate_documents(items, doc_of, "decay", decay=0.5)
    assert decayed[0] == ("b", pytest.approx(0.8 + 0.5 * 0.7))
    assert decayed[1] == ("a", pytest.approx(0.9))
