from __future__ import annotations

from pathlib import Path

import pytest

from searchkit.build.selfcheck import BM25_K1
from searchkit.errors import QuerySyntaxError
from searchkit.storage.analysis import (
    QUERY_K3,
    query_terms,
    query_weight,
    term_weights,
    weighted_units,
)
from searchkit.storage.lexical import LexicalIndex, LexicalRow, check_syntax_limits, write_lexical

CLAIMS = [
    "The minor G allele of FOXO3 is related to more severe symptoms of Crohn's Disease.",
    "The ureABIEFGH gene cluster encodes urease maturation proteins : UreD/UreH, UreE, UreF, "
    "and UreG.",
    "1 in 5 million in UK have abnormal PrP positivity.",
    "HOTEL DE LA COTE D OR",
    'unbalanced "quote ( and AND OR NOT - + title: *',
]


@pytest.fixture(scope="module")
def lexical(tmp_path_factory: pytest.TempPathFactory) -> LexicalIndex:
    directory = tmp_path_factory.mktemp("lexical") / "lexical"
    rows = [
        LexicalRow(0, "a", "a", "FOXO3 and Crohn's", "The minor G allele of FOXO3 in Crohn's."),
        LexicalRow(1, "b", "b", "Urease", "UreD/UreH and UreE form urease maturation proteins."),
        LexicalRow(2, "c", "c", "Hotel", "A hotel on the Cote d'Or serves wine."),
    ]
    write_lexical(directory, iter(rows))
    return LexicalIndex(directory)


def test_analysis_stems_and_drops_stopwords() -> None:
    assert query_terms("The sanctions of the S-400") == ["sanction", "s", "400"]
    assert query_terms("the of and") == []


@pytest.mark.parametrize("claim", CLAIMS)
def test_natural_language_never_raises(lexical: LexicalIndex, claim: str) -> None:
    lexical.search_units(weighted_units(claim), 10)


def test_claims_find_their_passages(lexical: LexicalIndex) -> None:
    assert lexical.search_units(weighted_units(CLAIMS[0]), 10)[0].passage_id == 0
    assert lexical.search_units(weighted_units(CLAIMS[1]), 10)[0].passage_id == 1


def test_syntax_mode(lexical: LexicalIndex) -> None:
    assert [r.passage_id for r in lexical.search_syntax('"maturation proteins"', 10)] == [1]
    assert [r.passage_id for r in lexical.search_syntax("hotel -wine", 10)] == []
    assert [r.passage_id for r in lexical.search_syntax("title:urease", 10)] == [1]
    for bad in ["foo AND", "(", "title:", "nosuchfield:x"]:
        with pytest.raises(QuerySyntaxError):
            lexical.search_syntax(bad, 10)


def test_ranks_are_dense_and_scores_descend(lexical: LexicalIndex) -> None:
    ranked = lexical.search_units(weighted_units("urease foxo3 hotel"), 10)
    assert [r.rank for r in ranked] == [1, 2, 3]
    assert [r.score for r in ranked] == sorted((r.score for r in ranked), reverse=True)
    assert lexical.count == 3


def test_syntax_limits() -> None:
    check_syntax_limits("(a (b c))", max_depth=16, max_terms=64)
    with pytest.raises(QuerySyntaxError, match="nests"):
        check_syntax_limits("(" * 17 + "a" + ")" * 17, max_depth=16, max_terms=64)
    with pytest.raises(QuerySyntaxError, match="terms"):
        check_syntax_limits(" ".join(["w"] * 65), max_depth=16, max_terms=64)


def test_writing_into_a_fresh_directory(tmp_path: Path) -> None:
    assert write_lexical(tmp_path / "new", iter([])) == 0
    assert LexicalIndex(tmp_path / "new").count == 0


def test_a_tie_across_the_cutoff_goes_to_the_lowest_passage_ids(tmp_path: Path) -> None:
    """tantivy breaks ties by document address, which follows the order (and, with several
    writer threads, the timing) of writing: here the highest ids are written first."""
    rows = [
        LexicalRow(pid, f"d{pid}", f"d{pid}.txt", "", "identical words in every passage", None)
        for pid in (6, 5, 4, 3, 2, 1, 0)
    ]
    write_lexical(tmp_path / "lexical", iter(rows))
    index = LexicalIndex(tmp_path / "lexical")
    ranked = index.search_units(weighted_units("identical words"), 3)
    assert [r.passage_id for r in ranked] == [0, 1, 2]
    assert [r.rank for r in ranked] == [1, 2, 3]


def test_a_term_the_query_repeats_weighs_more_up_to_a_bound() -> None:
    weights = [query_weight(said) for said in range(1, 50)]
    assert weights[0] == 1.0 and weights == sorted(weights) and weights[-1] < QUERY_K3 + 1
    [urease], [cell] = query_terms("urease"), query_terms("cells")
    said = dict(weighted_units("Urease in cells, and urease"))
    assert said == {(urease,): query_weight(2), (cell,): 1.0}
    # Two languages reading a word alike say it once, not twice.
    assert dict(weighted_units("radio", ("english", "german"))) == {("radio",): 1.0}
    # CJK characters are searched in pairs; each character weighs as its most said pair.
    assert dict(weighted_units("東京東京")) == {("東", "京"): query_weight(2), ("京", "東"): 1.0}
    assert term_weights("東京東京") == {"東": query_weight(2), "京": query_weight(2)}
    assert QUERY_K3 == BM25_K1  # a query saturates as a passage does


def test_a_passage_with_the_repeated_term_ranks_first(tmp_path: Path) -> None:
    rows = [
        LexicalRow(0, "a", "a.txt", "", "banana pie recipe", None),
        LexicalRow(1, "b", "b.txt", "", "apple pie recipe", None),
        LexicalRow(2, "c", "c.txt", "", "cherry pie recipe", None),
    ]
    write_lexical(tmp_path / "lexical", iter(rows))
    index = LexicalIndex(tmp_path / "lexical")
    ranked = index.search_units(weighted_units("apple banana, apple"), 3)
    # Without weights the two would tie, and a tie goes to the lower passage id.
    assert [r.passage_id for r in ranked] == [1, 0]
    assert ranked[0].score == pytest.approx(query_weight(2) * ranked[1].score)
