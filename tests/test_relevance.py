"""Calibrated relevance: bounds, order, evidence from each leg, and the real seed index."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from searchkit import SearchEngine
from searchkit.records import Hit, LegScore, Ranked, Span
from searchkit.search.fusion import FusionOptions, fuse_legs
from searchkit.search.relevance import Evidence, likely_match, relevance

DEPTH = 50


def _leg(scores: list[float]) -> list[Ranked]:
    ordered = sorted(scores, reverse=True)
    return [Ranked(pid, rank, score) for rank, (pid, score) in enumerate(enumerate(ordered), 1)]


def _shifted(leg: list[Ranked], offset: int) -> list[Ranked]:
    return [Ranked(r.passage_id + offset, r.rank, r.score) for r in leg]


scores = st.lists(st.floats(0.0, 30.0, allow_nan=False), max_size=DEPTH)
cosines = st.lists(st.floats(-1.0, 1.0, allow_nan=False), max_size=DEPTH)


@given(scores, cosines, st.floats(0.0, 20.0), st.floats(0.0, 1.0), st.integers(0, 40))
def test_relevance_is_a_probability_that_falls_with_rank(
    bm25_scores: list[float], vector_scores: list[float], idf_sum: float, weight: float, shift: int
) -> None:
    bm25, vector = _leg(bm25_scores), _shifted(_leg(vector_scores), shift)
    for mode in ("bm25", "vector", "hybrid"):
        fused = fuse_legs(mode, bm25, vector, FusionOptions(vector_weight=weight))
        values = relevance(fused, mode, Evidence(idf_sum, bm25, vector, DEPTH), weight)
        assert len(values) == len(fused)
        assert all(0.0 <= v <= 1.0 for v in values)
        assert values == sorted(values, reverse=True)  # monotone in the fused score


def _top(mode: str, bm25: list[Ranked], vector: list[Ranked], idf_sum: float = 4.0) -> float:
    fused = fuse_legs(mode, bm25, vector, FusionOptions(vector_weight=0.5))
    return relevance(fused, mode, Evidence(idf_sum, bm25, vector, DEPTH), 0.5)[0]


def test_stronger_evidence_reads_as_more_relevant() -> None:
    close, far = [Ranked(1, 1, 0.85)], [Ranked(1, 1, 0.35)]
    assert _top("vector", [], close) > 0.5
    assert _top("vector", [], far) < 0.05
    every_term, one_term = [Ranked(1, 1, 4.0)], [Ranked(1, 1, 1.0)]
    assert _top("bm25", every_term, []) > 3 * _top("bm25", one_term, [])
    # Two legs that agree say more than either alone.
    assert _top("hybrid", every_term, close) > max(
        _top("bm25", every_term, []), _top("vector", [], close)
    )


def test_a_clear_winner_reads_as_more_relevant_than_the_same_evidence_among_rivals() -> None:
    clear = [Ranked(1, 1, 4.0), Ranked(2, 2, 1.0), Ranked(3, 3, 0.8)]
    close = [Ranked(1, 1, 4.0), Ranked(2, 2, 3.9), Ranked(3, 3, 3.8)]
    assert _top("bm25", clear, []) > 1.5 * _top("bm25", close, [])
    assert _top("vector", [], _cosines(0.6, 0.3)) > _top("vector", [], _cosines(0.6, 0.58))
    assert _top("hybrid", clear, _cosines(0.6, 0.3)) > _top("hybrid", close, _cosines(0.6, 0.58))
    # A lone match leads every passage BM25 did not match: as clear a winner as it gets, in
    # hybrid too when the vector leg found nothing related.
    assert _top("bm25", clear[:1], []) >= _top("bm25", clear, []) > 0.9
    assert _top("hybrid", clear[:1], []) == _top("bm25", clear[:1], [])


def test_only_the_best_hit_counts_a_lead(monkeypatch: pytest.MonkeyPatch) -> None:
    bm25 = [Ranked(1, 1, 4.0), Ranked(2, 2, 1.0), Ranked(3, 3, 0.8)]
    vector = [Ranked(1, 1, 0.6), Ranked(2, 2, 0.3), Ranked(4, 3, 0.2)]
    for mode in ("bm25", "vector", "hybrid"):
        fused = fuse_legs(mode, bm25, vector, FusionOptions(vector_weight=0.5))
        evidence = Evidence(4.0, bm25, vector, DEPTH)
        with_lead = relevance(fused, mode, evidence, 0.5)
        monkeypatch.setattr("searchkit.search.relevance.STANDOUT", 0.0)
        without = relevance(fused, mode, evidence, 0.5)
        monkeypatch.undo()
        assert with_lead[0] > without[0] and with_lead[1:] == without[1:], mode


@given(scores, cosines, st.floats(0.5, 20.0), st.integers(2, DEPTH))
def test_a_single_leg_page_reads_as_the_whole_list_does(
    bm25_scores: list[float], vector_scores: list[float], idf_sum: float, shown: int
) -> None:
    bm25, vector = _leg(bm25_scores), _leg(vector_scores)  # what the engine shows of one leg
    for mode in ("bm25", "vector"):
        fused = fuse_legs(mode, bm25, vector, FusionOptions())
        evidence = Evidence(idf_sum, bm25, vector, DEPTH)
        whole = relevance(fused, mode, evidence, None)
        assert relevance(fused[:shown], mode, evidence, None) == whole[:shown]


def _cosines(best: float, rest: float) -> list[Ranked]:
    return [Ranked(1, 1, best), *(Ranked(i, i, rest - i / 1000) for i in range(2, 5))]


def test_a_leg_the_index_does_not_trust_adds_nothing() -> None:
    bm25, noise = [Ranked(1, 1, 4.0)], [Ranked(1, 1, 0.95)]  # cosines of an unread script
    fused = fuse_legs("hybrid", bm25, noise, FusionOptions(vector_weight=0.0))
    evidence = Evidence(4.0, bm25, noise, DEPTH)
    assert relevance(fused, "hybrid", evidence, 0.0) == relevance(fused, "bm25", evidence, 0.0)


def test_a_vector_leg_that_found_nothing_related_does_not_judge() -> None:
    bm25 = [Ranked(1, 1, 4.0)]
    fused = fuse_legs("hybrid", bm25, [], FusionOptions(vector_weight=0.5))
    evidence = Evidence(4.0, bm25, [], DEPTH)
    assert relevance(fused, "hybrid", evidence, 0.5) == relevance(fused, "bm25", evidence, 0.5)


def test_semantic_highlights_need_more_than_unrelated_text_scores(seeds_index: Path) -> None:
    assert likely_match(0.3)
    assert not likely_match(0.15)
    engine = SearchEngine.open(seeds_index)
    hits = engine.query("defence chief's maiden trip abroad", k=5, mode="vector", explain=True)
    assert hits.hits[0].highlights and hits.hits[0].highlights[0].kind == "semantic"
    assert any(not hit.highlights for hit in hits.hits)  # no sentence close enough


def test_stopwords_and_unknown_words_find_nothing_in_every_mode(seeds_index: Path) -> None:
    engine = SearchEngine.open(seeds_index)
    for text in ("the and of", "qwxzt blorf"):
        for mode in ("hybrid", "bm25", "vector"):
            assert engine.query(text, k=10, mode=mode).hits == [], (text, mode)  # type: ignore[arg-type]
    best = engine.query("S-400 sanctions", k=3).hits
    assert "sanction" in best[0].text.lower()
    assert best[0].relevance >= 0.5  # the goal of issue 14
    assert best[1].relevance < 0.2  # the rest are weak matches
    # Neither a page of one hit nor one passage a document changes what the best hit leads.
    assert engine.query("S-400 sanctions", k=3, per_doc=1).hits[0].relevance == best[0].relevance
    for mode in ("bm25", "vector"):
        one = engine.query("S-400 sanctions", k=1, mode=mode).hits  # type: ignore[arg-type]
        assert one[0].relevance == engine.query("S-400 sanctions", k=5, mode=mode).hits[0].relevance


def test_the_same_verdict_on_a_query_in_every_mode(seeds_index: Path) -> None:
    for mode in ("hybrid", "bm25", "vector"):
        index = ["--index", str(seeds_index), "--mode", mode]
        out = subprocess.run(
            [sys.executable, "-m", "searchkit", "query", "the and of", *index],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert out.stdout.startswith("No results"), mode
        broken = subprocess.run(
            [sys.executable, "-m", "searchkit", "query", '"unclosed', "--syntax", *index],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert broken.returncode == 2 and broken.stderr.startswith("error: cannot parse query")


def test_min_relevance_drops_weak_hits_in_python_and_the_cli(seeds_index: Path) -> None:
    engine = SearchEngine.open(seeds_index)
    everything = engine.query("Russia China", k=10).hits
    floor = everything[2].relevance
    kept = engine.query("Russia China", k=10, min_relevance=floor).hits
    assert kept and all(hit.relevance >= floor for hit in kept)
    assert [h.start for h in kept] == [h.start for h in everything if h.relevance >= floor]
    assert engine.query("the and of", k=10, min_relevance=0.5).hits == []
    out = subprocess.run(
        [sys.executable, "-m", "searchkit", "query", "Russia China", "--json", "--index",
         str(seeds_index), "--min-relevance", str(floor)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    hits = json.loads(out.stdout)["hits"]
    assert len(hits) == len(kept) and all(hit["relevance"] >= floor for hit in hits)


def test_with_relevance_is_replace_and_leaves_the_hit_as_it_was() -> None:
    hit = Hit("d", "p", "t", "text", 0, 4, None, 1.5, LegScore(1, 2.0), None, [Span(0, 4)], "h")
    rated = hit.with_relevance(0.7)
    assert rated == dataclasses.replace(hit, relevance=0.7)
    assert hit.relevance == 0.0 and type(rated) is Hit


def test_saying_a_word_again_does_not_make_its_hits_more_relevant(seeds_index: Path) -> None:
    """A repeated query term weighs more in BM25's score, and as much more in the reference
    score relevance divides it by."""
    engine = SearchEngine.open(seeds_index)
    once = engine.query("sanctions", k=5, mode="bm25").hits
    thrice = engine.query("sanctions, sanctions and sanctions", k=5, mode="bm25").hits
    assert [h.start for h in thrice] == [h.start for h in once]
    assert [h.relevance for h in thrice] == pytest.approx([h.relevance for h in once], abs=1e-3)
