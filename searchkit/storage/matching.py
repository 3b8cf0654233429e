"""Where a query's terms stand in a text, for highlighting: every word of a hit is looked at
(a stemmer may change any letter of a word: Dutch drops a leading "ge", French an elided "d'"),
each distinct word is analyzed once per process, and which words match is set arithmetic."""

from __future__ import annotations

import re
import string
from bisect import bisect_right
from collections.abc import Iterable
from functools import cache, lru_cache
from itertools import accumulate, compress
from typing import Any

from .analysis import ENGLISH, Languages, Unit, analyzer, normalize

# ``analysis.WORD_PATTERN`` in Python's terms: one CJK character, or letters and digits
# (not underscores) joined by inner apostrophes of either kind. Python's ``re`` knows no
# combining marks, and the ``regex`` module that does runs this pattern four times slower, so
# a text holding marks is scanned with each mark read as a letter (``word_spans``).
_PY_CJK = (  # Han, Hiragana and Katakana as the Unicode Script property assigns them
    "\u2e80-\u2e99\u2e9b-\u2ef3\u2f00-\u2fd5\u3005\u3007\u3021-\u3029\u3038-\u303b"
    "\u3041-\u3096\u309d-\u309f\u30a1-\u30fa\u30fd-\u30ff\u31f0-\u31ff\u3400-\u4dbf"
    "\u4e00-\u9fff\uf900-\ufa6d\ufa70-\ufad9\uff66-\uff6f\uff71-\uff9d"
    "\U00020000-\U0002ebef\U00030000-\U0003134f"
)
_PY_LETTERS = rf"[^\W_{_PY_CJK}]"
_APOSTROPHE_CHARS = "'\u2019\u02bc\u2018"
_PY_WORD = re.compile(rf"[{_PY_CJK}]|{_PY_LETTERS}+(?:[{_APOSTROPHE_CHARS}]{_PY_LETTERS}+)*")
_PY_WORD_SPLIT = re.compile(f"({_PY_WORD.pattern})")
# ``_PY_WORD`` in ASCII text, and what separates its words there.
_ASCII_WORD = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z0-9]+)*")
_ASCII_ALNUM = frozenset(string.ascii_letters + string.digits)
_ASCII_WORD_GAPS = bytes(c if chr(c) in _ASCII_ALNUM or c == ord("'") else 32 for c in range(256))
_MARK_PLANES = (range(0xD800), range(0xE000, 0x40000), range(0xE0000, 0xE1000))  # all marks
# What can make a non-ASCII character part of a word: a letter or digit beyond ASCII (Python's
# ``\w`` less ASCII), a CJK character (the radicals among them are symbols to ``\w``), or an
# apostrophe other than ASCII's. A text holding none of these (only dashes, symbols, odd spaces
# beyond ASCII: 43% of the non-ASCII SciFact passages a bm25 page shows) has only ASCII words,
# and is searched as ASCII.
_NON_ASCII_WORD_CHAR = re.compile(rf"[^\W\x00-\x7f]|[{_PY_CJK}{_APOSTROPHE_CHARS[1:]}]")


def term_spans(
    text: str, units: Iterable[Unit], languages: Languages = ENGLISH
) -> list[tuple[int, int]]:
    """Code-point spans of the words in ``text`` matching ``units``: a word with an analyzed
    form (in one of ``languages``) that is a one-term unit, two adjacent CJK characters that
    are a pair."""
    singles = frozenset(unit[0] for unit in units if len(unit) == 1)
    pairs: set[Unit] = {unit for unit in units if len(unit) == 2}
    if not singles and not pairs:  # nothing to mark (``highlight=False`` asks for that)
        return []
    if pairs or (not text.isascii() and _mark_pattern().search(text)):
        return _spans_by_word(text, singles, pairs, languages)
    # Hits are highlighted many times a second: the loops over words run in C.
    vocabulary = _vocabulary(languages)
    if not text.isascii() and not _NON_ASCII_WORD_CHAR.search(text):
        # Its non-ASCII characters only separate words, as "?" does: one code point for one,
        # so the spans found hold in ``text``.
        text = text.encode("ascii", "replace").decode()
    if text.isascii():  # analysis lowercases first: in ASCII, so can the search for words
        lowered = text.lower()
        found = _ascii_words(lowered)
        return _ascii_spans(lowered, found.intersection(vocabulary.forms(found, singles)))
    pieces = _PY_WORD_SPLIT.split(text)  # gaps and words, alternating
    words = pieces[1::2]
    marked = vocabulary.forms(set(words), singles)
    ends = list(accumulate(map(len, pieces)))
    at = compress(range(1, len(pieces), 2), map(marked.__contains__, words))
    return [(ends[i - 1], ends[i]) for i in at]


def _ascii_words(text: str) -> set[str]:
    """The distinct words of ASCII ``text``, as ``_PY_WORD`` finds them: split at every
    character that is neither a letter, a digit nor an apostrophe, in C; a piece holding an
    apostrophe is split by the pattern (an apostrophe joins words only between them)."""
    pieces = set(text.encode().translate(_ASCII_WORD_GAPS).decode().split())
    if "'" not in text:
        return pieces
    odd = {piece for piece in pieces if "'" in piece}
    return (pieces - odd).union(*(_ASCII_WORD.findall(piece) for piece in odd))


def _ascii_spans(text: str, forms: set[str]) -> list[tuple[int, int]]:
    """Where in ASCII ``text`` each of ``forms`` (words it holds) stands as a whole word."""
    spans = []
    for form in forms:
        start = text.find(form)
        while start >= 0:
            end = start + len(form)
            if _word_starts(text, start) and _word_ends(text, end):
                spans.append((start, end))
            start = text.find(form, start + 1)
    return sorted(spans)


def _word_starts(text: str, at: int) -> bool:
    """Whether an ASCII word begins at ``at``: no letter or digit before it, nor an
    apostrophe joining it to one."""
    if at == 0:
        return True
    before = text[at - 1]
    return before not in _ASCII_ALNUM and not (
        before == "'" and at >= 2 and text[at - 2] in _ASCII_ALNUM
    )


def _word_ends(text: str, at: int) -> bool:
    """Whether an ASCII word ends at ``at`` (the mirror of ``_word_starts``)."""
    if at == len(text):
        return True
    after = text[at]
    return after not in _ASCII_ALNUM and not (
        after == "'" and at + 1 < len(text) and text[at + 1] in _ASCII_ALNUM
    )


class _Vocabulary:
    """The words highlighting has seen, by the terms they analyze to (in one tuple of
    languages): which words of a text match a query is then set arithmetic, with only the
    words never seen before analyzed."""

    LIMIT = 500_000  # words; then it starts again (a few tens of MB at most)

    def __init__(self, languages: Languages) -> None:
        self._languages = languages
        # The known words and the words of each term, replaced together (never cleared): a
        # thread reading them meanwhile keeps a consistent pair.
        self._state: tuple[set[str], dict[str, set[str]]] = (set(), {})

    def forms(self, words: set[str], terms: frozenset[str]) -> set[str]:
        """The words analyzing to one of ``terms``, once any of ``words`` never seen before
        are learned: every word of ``words`` that matches is among them."""
        known, words_of = self._state
        new = words.difference(known)
        if new:
            if len(known) > self.LIMIT:  # start again, from these words
                known, words_of = self._state = (set(), {})
                new = words
            self._learn(new, known, words_of)
        return set().union(*(words_of.get(term, ()) for term in terms))

    def _learn(self, new: set[str], known: set[str], words_of: dict[str, set[str]]) -> None:
        """Analyze ``new`` words in one call per language (half the time of a call a word);
        a word has a form where it gives exactly one token, as ``_analyze_word`` requires."""
        ordered = list(new)
        starts = list(accumulate((len(word) + 1 for word in ordered[:-1]), initial=0))
        joined = normalize(" ".join(ordered))
        for language in self._languages:
            forms: dict[int, list[str]] = {}  # word index -> its tokens' terms
            for token in analyzer(language).pre_tokenize(joined).tokens:
                at = bisect_right(starts, token.char_offset_from) - 1
                forms.setdefault(at, []).append(token.text)
            for at, terms in forms.items():
                if len(terms) == 1:
                    words_of.setdefault(terms[0], set()).add(ordered[at])
        known.update(new)


@cache
def _vocabulary(languages: Languages) -> _Vocabulary:
    return _Vocabulary(languages)


def _spans_by_word(
    text: str, singles: frozenset[str], pairs: set[Unit], languages: Languages
) -> list[tuple[int, int]]:
    """``term_spans`` word by word: for CJK pairs, and for text holding combining marks."""
    found = _words(text, word_spans(text), languages)
    marked: set[int] = set()
    for i, (terms, _, end) in enumerate(found):
        if not singles.isdisjoint(terms):
            marked.add(i)
        if pairs and i + 1 < len(found) and end == found[i + 1][1]:
            following = found[i + 1][0]
            if any((term, other) in pairs for term in terms for other in following):
                marked.update((i, i + 1))
    return [(found[i][1], found[i][2]) for i in sorted(marked)]


def _words(
    text: str, spans: list[tuple[int, int]], languages: Languages
) -> list[tuple[tuple[str, ...], int, int]]:
    """The analyzed forms of the words of ``text`` at ``spans``: tantivy's own offsets come
    as one Python object per word, so words are found by a Python pattern that splits text as
    the analyzer does, and each distinct word is analyzed once per process."""
    found = []
    for start, end in spans:
        terms = _analyze_word(text[start:end], languages)
        if terms:
            found.append((terms, start, end))
    return found


def word_spans(text: str) -> list[tuple[int, int]]:
    """The code-point spans of the words tantivy's tokenizer (``WORD_PATTERN``) finds."""
    scanned = text
    if not text.isascii() and _mark_pattern().search(text):
        scanned = text.translate(_marks_as_letters())  # one code point for one: spans hold
    return [match.span() for match in _PY_WORD.finditer(scanned)]


@cache
def _mark_pattern() -> Any:
    """``\\p{M}``, from the ``regex`` module, imported only once a text is not ASCII: its
    import costs a process about 19 ms (``python -X importtime -c "import regex"``)."""
    import regex

    return regex.compile(r"\p{M}")


@cache
def _marks_as_letters() -> dict[int, str]:
    """A translation of every combining mark to a letter, made once, when first needed."""
    every = "".join(chr(point) for plane in _MARK_PLANES for point in plane)
    return dict.fromkeys(map(ord, "".join(_mark_pattern().findall(every))), "a")


@lru_cache(maxsize=200_000)
def _analyze_word(word: str, languages: Languages) -> tuple[str, ...]:
    """A word's analyzed forms, one per language at most (none where each analyzer drops it:
    a stopword, too long)."""
    forms = (analyzer(language).analyze(normalize(word)) for language in languages)
    return tuple(dict.fromkeys(terms[0] for terms in forms if len(terms) == 1))
