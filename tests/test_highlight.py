from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from searchkit.choices import LANGUAGES, Language
from searchkit.records import Span
from searchkit.search.highlight import merge_spans, segments, to_html
from searchkit.storage import matching
from searchkit.storage.analysis import query_units
from searchkit.storage.matching import _words, term_spans, word_spans


def _marks(text: str, query: str) -> list[str]:
    spans = merge_spans(text, term_spans(text, query_units(query)))
    return [text[s.start : s.end] for s in spans]


def test_hyphenated_match_is_one_span_and_stems_match() -> None:
    text = "He faced US sanctions after buying S-400 systems."
    assert _marks(text, "S-400 sanctions") == ["sanctions", "S-400"]
    assert _marks(text, "sanction") == ["sanctions"]


def test_possessives_do_not_match_single_letters() -> None:
    assert _marks("Russia's main exporter", "S-400") == []
    assert _marks("Russia's main exporter", "russia") == ["Russia's"]


def test_offsets_are_code_points_after_non_ascii() -> None:
    text = "Café crème — résumé: the fox jumps 🦊 over the fox."
    spans = merge_spans(text, term_spans(text, query_units("fox")))
    assert [text[s.start : s.end] for s in spans] == ["fox", "fox"]


def test_html_escapes_before_marking() -> None:
    text = "<script>alert('x')</script> café & fox <b>"
    spans = merge_spans(text, term_spans(text, query_units("fox alert")))
    html = to_html(text, spans)
    assert "<script>" not in html and "<b>" not in html
    assert html.startswith('&lt;script&gt;<mark class="lexical">alert</mark>(&#x27;x&#x27;)')
    assert 'café &amp; <mark class="lexical">fox</mark> &lt;b&gt;' in html


def test_merge_joins_only_across_punctuation() -> None:
    text = "a-b c"
    merged = merge_spans(text, [(4, 5), (0, 1), (2, 3)])
    assert merged == [Span(0, 3), Span(4, 5)]


def test_segments_cover_the_text() -> None:
    text = "one two three"
    pieces = segments(text, [Span(4, 7)])
    assert pieces == [("one ", None), ("two", "lexical"), (" three", None)]
    assert "".join(p for p, _ in pieces) == text


def test_overlapping_spans_merge_and_the_earlier_one_is_rendered() -> None:
    text = "one two three"
    assert merge_spans(text, [(4, 13), (0, 3), (4, 7)]) == [Span(0, 3), Span(4, 13)]
    spans = [Span(8, 13), Span(4, 9, "semantic"), Span(0, 3)]  # the one at 8 overlaps 4-9
    assert segments(text, spans) == [
        ("one", "lexical"), (" ", None), ("two t", "semantic"), ("hree", None)
    ]  # fmt: skip
    html = '<mark class="lexical">one</mark> <mark class="semantic">two t</mark>hree'
    assert to_html(text, spans) == html


# Letters and apostrophes beyond ASCII; and ASCII words between dashes, symbols and odd spaces
# beyond ASCII, which highlighting searches as ASCII unless a CJK radical (a word of its own,
# but a symbol to Python's ``\w``) is among them.
_MIXED = "aAbBsSdDyingleTv0 '_-.,\u00e9\u00c4\u00df\u03a9\u03c9\u2019\u02bc"
_ASCII_WORDS = "aAbsSdyingT0 '_-.\u2013\u00b1\u00a0\u2022\u2f00"  # and a CJK radical


@settings(max_examples=400, deadline=None)
@given(
    text=st.one_of(
        st.text(alphabet=_MIXED, max_size=60), st.text(alphabet=_ASCII_WORDS, max_size=60)
    ),
    picks=st.lists(st.integers(0, 30), max_size=4),
    language=st.sampled_from(LANGUAGES),
)
def test_highlighting_marks_the_words_a_word_by_word_scan_marks(
    text: str, picks: list[int], language: Language
) -> None:
    """Highlighting splits a text in one pass; it must mark exactly what analyzing every word
    on its own marks, in every language (stemmers change more than endings: Dutch drops a
    leading "ge", French an elided "d'", German reads "ae" as "a")."""
    languages: tuple[Language, ...] = (language,)
    every = _words(text, word_spans(text), languages)
    units = [(every[i % len(every)][0][0],) for i in picks] if every else [("s",)]
    expected = [(start, end) for terms, start, end in every if (terms[0],) in units]
    assert term_spans(text, units, languages) == expected


@pytest.mark.parametrize(
    ("language", "text", "query", "marked"),
    [
        ("dutch", "Het is een Generaal.", "generaal", "Generaal"),
        ("french", "la salle d'Information", "information", "d'Information"),
        ("german", "Aerobic und Sport", "aerobic", "Aerobic"),
    ],
)
def test_a_stemmer_that_changes_a_word_s_beginning_is_still_highlighted(
    language: Language, text: str, query: str, marked: str
) -> None:
    languages: tuple[Language, ...] = (language,)
    spans = term_spans(text, query_units(query, languages), languages)
    assert [text[start:end] for start, end in spans] == [marked]


def test_highlighting_is_the_same_after_the_vocabulary_starts_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The words seen are forgotten past a limit; what is marked must not change."""
    monkeypatch.setattr(matching._Vocabulary, "LIMIT", 3)
    texts = ["Sanctions on S-400 missiles", "new sanctioned parts", "the S-400's radar", "x y z"]
    units = query_units("S-400 sanctions")
    first = [term_spans(text, units) for text in texts]
    assert [term_spans(text, units) for text in texts] == first
    assert first[0] == [(0, 9), (13, 14), (15, 18)]
    assert first[2] == [(4, 5), (6, 11)]  # "400's" is one word, its possessive stripped
