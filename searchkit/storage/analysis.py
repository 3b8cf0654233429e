"""Text analysis shared by indexing, queries and highlighting: words, stopwords and stems by
script and by language (Latin script in each document's own), the detection of a document's
language, and an index's languages as its manifest records them."""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from functools import cache, lru_cache
from itertools import accumulate, compress
from typing import Any

import tantivy

from ..choices import LANGUAGES, Language

DEFAULT_LANGUAGE: Language = "english"
Languages = tuple[Language, ...]  # those an index's documents are analyzed in, its main first
ENGLISH: Languages = (DEFAULT_LANGUAGE,)
MAX_TOKEN_CHARS = 40
# Words are runs of letters, combining marks and digits (marks: the vowel signs of Devanagari
# or Tamil are part of their word), joined by inner apostrophes so that the stemmer sees
# "Russia's" whole and strips the possessive; a split-off "s" would match every possessive.
# Chinese and Japanese are written without spaces: each Han or kana character is a token, and
# queries match them in adjacent pairs (``query_units``), as CJK bigram analyzers do.
_CJK = r"\p{Han}\p{Hiragana}\p{Katakana}"
_LETTERS = rf"[[\p{{L}}\p{{M}}\p{{N}}]--[{_CJK}]]"
WORD_PATTERN = rf"[{_CJK}]|{_LETTERS}+(?:'{_LETTERS}+)*"
# Snowball stemmers for the other scripts: each leaves words of other scripts alone, so one
# chain serves mixed text, whatever the index's Latin-script language.
_SCRIPT_STEMMERS = ("russian", "greek", "arabic", "tamil")
# Languages tantivy has a stopword list for: those the detection can recognise.
_STOPWORD_LISTS = (*(lang for lang in LANGUAGES if lang not in {"romanian", "turkish"}), "russian")
_CJK_NAMES = ("CJK UNIFIED", "CJK COMPATIBILITY IDEOGRAPH", "HIRAGANA", "KATAKANA")
# WORD_PATTERN in Python's terms, for highlighting: one CJK character, or letters and digits
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
Unit = tuple[str, ...]  # what a query searches for: one term, or two adjacent CJK characters
# Typographic apostrophes become ASCII ones; one code point for one, so offsets are unchanged.
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u02bc": "'", "\u2018": "'"})
_NEGATED = re.compile(r'(?:^|\s)(?:-|NOT\s+)(?:"[^"]*"|\S+)')
_FIELD_PREFIX = re.compile(r"\b\w+:")
# A document is in the language whose stopwords are the most of the words of its first
# DETECT_CHARS characters, when they are at least MIN_STOPWORD_SHARE of them, and at least
# MIN_STOPWORDS words (running text has 30-50%; a list of names or identifiers almost none).
DETECT_CHARS = 1000
# Words for detection: letters only, two or more (stopword lists hold no digits), split at
# apostrophes; a third of the cost of splitting exactly as the analyzer does.
_DETECTED_WORD = re.compile(r"[^\W\d_]{2,}")
MIN_STOPWORD_SHARE = 0.1
MIN_STOPWORDS = 3
# ... and by CLEAR_WIN times as many as the next language's: close neighbours that share most
# function words (Danish and Norwegian, say) are left to the index's main language.
CLEAR_WIN = 1.5


def _words_only() -> tantivy.TextAnalyzerBuilder:
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.regex(WORD_PATTERN))
        .filter(tantivy.Filter.remove_long(MAX_TOKEN_CHARS))
        .filter(tantivy.Filter.lowercase())
    )


@cache
def analyzer(
    language: Language = DEFAULT_LANGUAGE, stopwords_of: Languages = ()
) -> tantivy.TextAnalyzer:
    """Letter/digit words (CJK characters one by one), lowercase, drop the stopwords of
    ``language``, of ``stopwords_of`` and of Russian, stem Latin script as ``language``,
    Cyrillic as Russian, and Greek, Arabic and Tamil as themselves."""
    builder = _words_only()
    for stopwords in dict.fromkeys((language, *stopwords_of, "russian")):
        if stopwords in _STOPWORD_LISTS:
            builder = builder.filter(tantivy.Filter.stopword(stopwords))
    for stemmer in (language, *_SCRIPT_STEMMERS):
        builder = builder.filter(tantivy.Filter.stemmer(stemmer))
    return builder.build()


def normalize(text: str) -> str:
    """What the analyzer is given, for indexing, queries and highlighting alike."""
    return text.translate(_APOSTROPHES)


def tokens(text: str, language: Language = DEFAULT_LANGUAGE) -> list[str]:
    """Every analyzed token of ``text``, repeats included: what tantivy counts and stores."""
    return list(analyzer(language).analyze(normalize(text)))


def _query_analyzer(language: Language, languages: Languages) -> tantivy.TextAnalyzer:
    """``language``'s analyzer for a query to an index holding ``languages`` (the main one
    first): another language's reading also drops the main language's stopwords. Otherwise
    "of", which no English document holds, would match the one French document holding it.
    A minority language's stopwords are not dropped from the main reading: one German
    document must not take "man" out of every English query."""
    main = languages[0]
    return analyzer(language, (main,) if language != main else ())


def query_terms(text: str, languages: Languages = ENGLISH) -> list[str]:
    """The distinct analyzed terms of natural-language ``text``, in order of appearance, as
    each of the index's ``languages`` analyzes it (``languages[:1]``: as its main language
    does, which is what BM25's reference score counts)."""
    analyzed = (_query_analyzer(lang, languages).analyze(normalize(text)) for lang in languages)
    return list(dict.fromkeys(term for terms in analyzed for term in terms))


def query_units(text: str, languages: Languages = ENGLISH) -> list[Unit]:
    """What plain ``text`` searches for: each analyzed term (in each of ``languages``), except
    that a run of CJK characters is searched as its adjacent pairs (a lone one as itself)."""
    return list(_query_units(text, languages))


@lru_cache(maxsize=1024)
def _query_units(text: str, languages: Languages) -> tuple[Unit, ...]:
    """``query_units``, once per query text: its lexical leg and its highlights both ask."""
    units: list[Unit] = []
    for language in languages:
        found = list(_query_analyzer(language, languages).pre_tokenize(normalize(text)).tokens)
        for i, token in enumerate(found):
            if not _is_cjk(token.text):
                units.append((token.text,))
            elif _cjk_pair(found, i):
                units.append((token.text, found[i + 1].text))
            elif i == 0 or not _cjk_pair(found, i - 1):
                units.append((token.text,))
    return tuple(dict.fromkeys(units))


def highlight_units(text: str, syntax: bool, languages: Languages = ENGLISH) -> list[Unit]:
    """Units worth marking in hits: for syntax queries (which tantivy parses in the main
    language alone), minus field names and negated clauses."""
    if syntax:
        text = _FIELD_PREFIX.sub(" ", _NEGATED.sub(" ", text))
        languages = languages[:1]
    return query_units(text, languages)


def term_spans(
    text: str, units: Iterable[Unit], languages: Languages = ENGLISH
) -> list[tuple[int, int]]:
    """Code-point spans of the words in ``text`` matching ``units``: a word with an analyzed
    form (in one of ``languages``) that is a one-term unit, two adjacent CJK characters that
    are a pair."""
    singles = frozenset(unit[0] for unit in units if len(unit) == 1)
    pairs: set[Unit] = {unit for unit in units if len(unit) == 2}
    if pairs or (not text.isascii() and _mark_pattern().search(text)):
        return _spans_by_word(text, singles, pairs, languages)
    if not singles:
        return []
    # Hits are highlighted many times a second: every word is looked at (a stemmer may change
    # any letter of a word: Dutch drops a leading "ge", French an elided "d'"), but the loops
    # over words run in C: the words are split once, and only those never seen before are
    # analyzed (``_Vocabulary``).
    vocabulary = _vocabulary(languages)
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
        """Analyze ``new`` words in one call per language (half the time of a call a word): a
        word has a form where one token spans it whole, as ``_analyze_word`` requires."""
        ordered = list(new)
        starts = accumulate((len(word) + 1 for word in ordered[:-1]), initial=0)
        spans = {
            start: (start + len(word), word) for start, word in zip(starts, ordered, strict=True)
        }
        joined = normalize(" ".join(ordered))
        for language in self._languages:
            for token in analyzer(language).pre_tokenize(joined).tokens:
                end, word = spans.get(token.char_offset_from, (-1, ""))
                if token.char_offset_to == end:
                    words_of.setdefault(token.text, set()).add(word)
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


def _is_cjk(term: str) -> bool:
    return len(term) == 1 and unicodedata.name(term, "").startswith(_CJK_NAMES)


def _cjk_pair(found: list[tantivy.Token], i: int) -> bool:
    """Whether tokens ``i`` and ``i + 1`` are CJK characters written side by side."""
    return (
        i + 1 < len(found)
        and found[i].char_offset_to == found[i + 1].char_offset_from
        and _is_cjk(found[i].text)
        and _is_cjk(found[i + 1].text)
    )


@cache
def _stopwords_removed(*languages: str) -> tantivy.TextAnalyzer:
    """Words, lowercased, without the stopwords of ``languages`` (none: every word)."""
    builder = _words_only()
    for language in languages:
        builder = builder.filter(tantivy.Filter.stopword(language))
    return builder.build()


def _stopword_in(word: str) -> tuple[str, ...]:
    """The languages that list the lowercased ``word`` as a stopword."""
    if _stopwords_removed(*_STOPWORD_LISTS).analyze(word):  # most words: in no list at all
        return ()
    return tuple(lang for lang in _STOPWORD_LISTS if not _stopwords_removed(lang).analyze(word))


# _stopword_in of words seen, in a plain dict: detection looks up every word of every
# document, and an lru_cache call costs three times a dict lookup.
_SEEN_WORDS: dict[str, tuple[str, ...]] = {}
_SEEN_LIMIT = 200_000


def document_language(text: str) -> str | None:
    """The language whose stopwords make up most of the words at the start of ``text``, or
    None: too little running text to tell (a title, a list of names, a script without a
    stopword list), or no clear winner. One-letter words are left out: as initials and
    symbols ("U. aurea L.", "n = 21") they would read as French or Dutch stopwords."""
    words = _DETECTED_WORD.findall(text[:DETECT_CHARS].lower())
    if len(_SEEN_WORDS) > _SEEN_LIMIT:
        _SEEN_WORDS.clear()
    found: dict[str, int] = {}
    for word in words:
        languages = _SEEN_WORDS.get(word)
        if languages is None:
            languages = _SEEN_WORDS[word] = _stopword_in(word)
        for language in languages:
            found[language] = found.get(language, 0) + 1
    ranked = sorted(found.items(), key=lambda item: (-item[1], item[0] != DEFAULT_LANGUAGE))
    if not ranked:
        return None
    language, count = ranked[0]
    runner_up = ranked[1][1] if len(ranked) > 1 else 0
    enough = count >= max(MIN_STOPWORDS, MIN_STOPWORD_SHARE * len(words))
    return language if enough and count >= CLEAR_WIN * runner_up else None


def latin_language(detected: str | None) -> Language | None:
    """``detected`` where it is a language of Latin script (one with a stemmer here)."""
    return next((language for language in LANGUAGES if language == detected), None)


def main_language(documents: Mapping[str, int]) -> Language:
    """The Latin-script language most documents are written in (English where none is: its
    stems touch only Latin script)."""
    counts = {lang: documents[lang] for lang in LANGUAGES if documents.get(lang)}
    if not counts:
        return DEFAULT_LANGUAGE
    return max(counts, key=lambda language: (counts[language], language == DEFAULT_LANGUAGE))


def manifest_languages(manifest: dict[str, Any]) -> Languages:
    """The languages a generation's documents are analyzed in, its main language first; for a
    cluster manifest, all its shards' (each chooses its main language from its own documents:
    the one most shards chose comes first)."""
    entries = manifest.get("shards") or [manifest]
    mains = Counter(entry.get("language") or DEFAULT_LANGUAGE for entry in entries)
    main = main_language(mains)
    named = {lang for entry in entries for lang in [*(entry.get("languages") or {}), *mains]}
    return (main, *(language for language in LANGUAGES if language in named - {main}))
