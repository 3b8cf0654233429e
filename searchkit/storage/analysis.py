"""Text analysis shared by indexing, queries and highlighting: words, stopwords and stems by
script and by language (Latin script in each document's own), the detection of a document's
language, and an index's languages as its manifest records them."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Mapping
from functools import cache, lru_cache
from typing import Any

import tantivy

from ..choices import LANGUAGES, Language

DEFAULT_LANGUAGE: Language = "english"
Languages = tuple[Language, ...]  # those an index's documents are analyzed in, its main first
ENGLISH: Languages = (DEFAULT_LANGUAGE,)
MAX_TOKEN_CHARS = 40
QUERY_K3 = 1.2  # how fast a repeated query term's weight saturates: tantivy's BM25 k1
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
    each of the index's ``languages`` analyzes it."""
    analyzed = (_query_analyzer(lang, languages).analyze(normalize(text)) for lang in languages)
    return list(dict.fromkeys(term for terms in analyzed for term in terms))


def query_units(text: str, languages: Languages = ENGLISH) -> list[Unit]:
    """What plain ``text`` searches for: each analyzed term (in each of ``languages``), except
    that a run of CJK characters is searched as its adjacent pairs (a lone one as itself)."""
    return [unit for unit, _ in _query_units(text, languages)]


def weighted_units(text: str, languages: Languages = ENGLISH) -> list[tuple[Unit, float]]:
    """``query_units``, each with its weight in BM25's query: ``query_weight`` of the times
    ``text`` says it (in the language that says it most often)."""
    return [(unit, query_weight(said)) for unit, said in _query_units(text, languages)]


def term_weights(text: str, languages: Languages = ENGLISH) -> dict[str, float]:
    """Each of ``query_terms`` with its weight in BM25's query (``weighted_units``); a CJK
    character searched in pairs weighs as the pair said most often."""
    weights: dict[str, float] = {}
    for unit, weight in weighted_units(text, languages):
        for term in unit:
            weights[term] = max(weights.get(term, 0.0), weight)
    return weights


def query_weight(said: int) -> float:
    """The weight of a query term said ``said`` times: BM25's saturation of a term's frequency,
    applied to the query as to a passage (Robertson's k3, here equal to tantivy's k1). A term a
    long query repeats is what it is about, but "what" asked three times is not three queries:
    twice weighs 1.38, three times 1.65, never more than 2.2."""
    return said * (QUERY_K3 + 1) / (QUERY_K3 + said)


@lru_cache(maxsize=1024)
def _query_units(text: str, languages: Languages) -> tuple[tuple[Unit, int], ...]:
    """Each of ``query_units`` with the times ``text`` says it (in the language that says it
    most often), once per query text: its lexical leg and its highlights both ask."""
    said: dict[Unit, int] = {}
    for language in languages:
        found = list(_query_analyzer(language, languages).pre_tokenize(normalize(text)).tokens)
        units: Counter[Unit] = Counter()
        for i, token in enumerate(found):
            if not _is_cjk(token.text):
                units[(token.text,)] += 1
            elif _cjk_pair(found, i):
                units[(token.text, found[i + 1].text)] += 1
            elif i == 0 or not _cjk_pair(found, i - 1):
                units[(token.text,)] += 1
        for unit, count in units.items():
            said[unit] = max(said.get(unit, 0), count)
    return tuple(said.items())


def highlight_units(text: str, syntax: bool, languages: Languages = ENGLISH) -> list[Unit]:
    """Units worth marking in hits: for syntax queries (which tantivy parses in the main
    language alone), minus field names and negated clauses."""
    if syntax:
        text = _FIELD_PREFIX.sub(" ", _NEGATED.sub(" ", text))
        languages = languages[:1]
    return query_units(text, languages)


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
