"""tantivy BM25: schema, writing, natural-language and syntax queries, and term matches."""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import tantivy

from ..errors import QuerySyntaxError
from ..records import Ranked

ANALYZER_NAME = "searchkit_scripts"
# Plain queries search one field holding the title and the passage: measured on SciFact train,
# one field ranks better than BM25 summed over separate title and text fields (0.698 vs 0.667
# nDCG@10). The title field stays for `title:` in syntax mode.
SEARCH_FIELDS = ["text"]
MAX_TOKEN_CHARS = 40
WRITER_HEAP_BYTES = 128 * 1024 * 1024
# Words are runs of letters and digits, joined by inner apostrophes so that the stemmer sees
# "Russia's" whole and strips the possessive; a split-off "s" would match every possessive.
# Chinese and Japanese are written without spaces: each Han or kana character is a token, and
# queries match them in adjacent pairs (``query_units``), as CJK bigram analyzers do.
_CJK = r"\p{Han}\p{Hiragana}\p{Katakana}"
_LETTERS = rf"[[\p{{L}}\p{{N}}]--[{_CJK}]]"
_WORD_PATTERN = rf"[{_CJK}]|{_LETTERS}+(?:'{_LETTERS}+)*"
# Snowball stemmers for scripts: each leaves words of other scripts alone, so one chain serves
# mixed text. Latin script is stemmed as English: French or German words are matched as written.
_STEMMERS = ("english", "russian", "greek", "arabic")
_STOPWORDS = ("english", "russian")
_CJK_NAMES = ("CJK UNIFIED", "CJK COMPATIBILITY IDEOGRAPH", "HIRAGANA", "KATAKANA")
# _WORD_PATTERN in Python's terms, for highlighting: one CJK character, or letters and digits
# (not underscores) joined by inner apostrophes of either kind.
_PY_CJK = (  # Han, Hiragana and Katakana as the Unicode Script property assigns them
    "\u2e80-\u2e99\u2e9b-\u2ef3\u2f00-\u2fd5\u3005\u3007\u3021-\u3029\u3038-\u303b"
    "\u3041-\u3096\u309d-\u309f\u30a1-\u30fa\u30fd-\u30ff\u31f0-\u31ff\u3400-\u4dbf"
    "\u4e00-\u9fff\uf900-\ufa6d\ufa70-\ufad9\uff66-\uff6f\uff71-\uff9d"
    "\U00020000-\U0002ebef\U00030000-\U0003134f"
)
_PY_LETTERS = rf"[^\W_{_PY_CJK}]"
_APOSTROPHE_CHARS = "'\u2019\u02bc\u2018"
_PY_WORD = re.compile(rf"[{_PY_CJK}]|{_PY_LETTERS}+(?:[{_APOSTROPHE_CHARS}]{_PY_LETTERS}+)*")
Unit = tuple[str, ...]  # what a query searches for: one term, or two adjacent CJK characters
# Typographic apostrophes become ASCII ones; one code point for one, so offsets are unchanged.
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u02bc": "'", "\u2018": "'"})
_NEGATED = re.compile(r'(?:^|\s)(?:-|NOT\s+)(?:"[^"]*"|\S+)')
_FIELD_PREFIX = re.compile(r"\b\w+:")


@lru_cache(maxsize=1)
def analyzer() -> tantivy.TextAnalyzer:
    """Letter/digit words (CJK characters one by one), lowercase, drop English and Russian
    stopwords, stem by script (Latin as English, Cyrillic as Russian, Greek, Arabic)."""
    builder = (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.regex(_WORD_PATTERN))
        .filter(tantivy.Filter.remove_long(MAX_TOKEN_CHARS))
        .filter(tantivy.Filter.lowercase())
    )
    for language in _STOPWORDS:
        builder = builder.filter(tantivy.Filter.stopword(language))
    for language in _STEMMERS:
        builder = builder.filter(tantivy.Filter.stemmer(language))
    return builder.build()


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_unsigned_field("pid", stored=True, indexed=True, fast=True)
    builder.add_text_field("doc_id", stored=False, tokenizer_name="raw")
    builder.add_text_field("path", stored=False, tokenizer_name="raw")
    builder.add_text_field("title", stored=False, tokenizer_name=ANALYZER_NAME)
    builder.add_text_field("text", stored=False, tokenizer_name=ANALYZER_NAME)
    return builder.build()


def normalize(text: str) -> str:
    """What the analyzer is given, for indexing, queries and highlighting alike."""
    return text.translate(_APOSTROPHES)


def tokens(text: str) -> list[str]:
    """Every analyzed token of ``text``, repeats included: what tantivy counts and stores."""
    return list(analyzer().analyze(normalize(text)))


def query_terms(text: str) -> list[str]:
    """The distinct analyzed terms of natural-language ``text``, in order of appearance."""
    return list(dict.fromkeys(tokens(text)))


def query_units(text: str) -> list[Unit]:
    """What plain ``text`` searches for: each analyzed term, except that a run of CJK
    characters is searched as its adjacent pairs (a lone character as itself)."""
    found = _analyzed(text)
    units: list[Unit] = []
    for i, token in enumerate(found):
        if not _is_cjk(token.text):
            units.append((token.text,))
        elif _cjk_pair(found, i):
            units.append((token.text, found[i + 1].text))
        elif i == 0 or not _cjk_pair(found, i - 1):
            units.append((token.text,))
    return list(dict.fromkeys(units))


def highlight_units(text: str, syntax: bool) -> list[Unit]:
    """Units worth marking in hits: for syntax queries, minus field names and negated clauses."""
    if syntax:
        text = _FIELD_PREFIX.sub(" ", _NEGATED.sub(" ", text))
    return query_units(text)


def term_spans(text: str, units: Iterable[Unit]) -> list[tuple[int, int]]:
    """Code-point spans of the words in ``text`` matching ``units``: a word whose analyzed form
    is a one-term unit, two adjacent CJK characters that are a pair."""
    units = frozenset(units)
    if not units:
        return []
    found = _words(text)
    marked: set[int] = set()
    for i, (term, _, end) in enumerate(found):
        if (term,) in units:
            marked.add(i)
        if i + 1 < len(found) and (term, found[i + 1][0]) in units and end == found[i + 1][1]:
            marked.update((i, i + 1))
    return [(found[i][1], found[i][2]) for i in sorted(marked)]


def _words(text: str) -> list[tuple[str, int, int]]:
    """The analyzed words of ``text`` with their code-point spans. Hits are highlighted many
    times a second, and tantivy's own offsets come as one Python object per word, so words
    are found by a Python pattern that splits text as the analyzer does, and each distinct
    word is analyzed once per process (``_analyze_word``)."""
    found = []
    for match in _PY_WORD.finditer(text):
        term = _analyze_word(match.group())
        if term is not None:
            found.append((term, match.start(), match.end()))
    return found


@lru_cache(maxsize=200_000)
def _analyze_word(word: str) -> str | None:
    """A word's analyzed form, or None where the analyzer drops it (a stopword, too long)."""
    terms = analyzer().analyze(normalize(word))
    return terms[0] if len(terms) == 1 else None


def _analyzed(text: str) -> list[tantivy.Token]:
    return list(analyzer().pre_tokenize(normalize(text)).tokens)


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


def check_syntax_limits(text: str, max_depth: int, max_terms: int) -> None:
    """Refuse syntax queries deep or wide enough to endanger the Rust parser."""
    depth = deepest = 0
    for char in text:
        if char == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif char == ")":
            depth = max(depth - 1, 0)
    if deepest > max_depth:
        raise QuerySyntaxError(f"query nests parentheses {deepest} deep; the limit is {max_depth}")
    terms = len(re.findall(r"[^\W_]+", text))
    if terms > max_terms:
        raise QuerySyntaxError(f"query has {terms} terms; the limit in syntax mode is {max_terms}")


@dataclass(frozen=True)
class LexicalRow:
    """What the lexical index stores for one passage."""

    passage_id: int
    doc_id: str
    path: str
    title: str
    text: str


def write_lexical(directory: Path, rows: Iterator[LexicalRow]) -> int:
    """Write a new tantivy index of ``rows`` into the empty ``directory``; returns the count."""
    directory.mkdir(parents=True, exist_ok=True)
    index = tantivy.Index(_schema(), path=str(directory))
    index.register_tokenizer(ANALYZER_NAME, analyzer())
    writer = index.writer(WRITER_HEAP_BYTES, 1)
    count = 0
    for row in rows:
        doc = tantivy.Document()
        doc.add_unsigned("pid", row.passage_id)
        doc.add_text("doc_id", row.doc_id)
        doc.add_text("path", row.path)
        doc.add_text("title", normalize(row.title))
        doc.add_text("text", normalize(f"{row.title}\n{row.text}" if row.title else row.text))
        writer.add_document(doc)
        count += 1
    writer.commit()
    writer.wait_merging_threads()
    return count


@dataclass(frozen=True)
class TermStats:
    """Document frequencies of some terms in an index (or summed over the shards of one)."""

    documents: int
    doc_freq: dict[str, int]

    def idf(self, term: str) -> float:
        """tantivy's BM25 IDF: ln(1 + (N - n + 0.5) / (n + 0.5))."""
        n = self.doc_freq.get(term, 0)
        return math.log(1 + (self.documents - n + 0.5) / (n + 0.5))

    @staticmethod
    def total(parts: Iterable[TermStats]) -> TermStats:
        """The statistics of several indexes taken as one."""
        documents, doc_freq = 0, Counter[str]()
        for part in parts:
            documents += part.documents
            doc_freq.update(part.doc_freq)
        return TermStats(documents, dict(doc_freq))


class LexicalIndex:
    """A read-only tantivy index; every search goes through one searcher snapshot."""

    def __init__(self, directory: Path) -> None:
        self._index = tantivy.Index.open(str(directory))
        self._index.register_tokenizer(ANALYZER_NAME, analyzer())
        self._schema = self._index.schema
        self._searcher = self._index.searcher()

    @property
    def count(self) -> int:
        return int(self._searcher.num_docs)

    def search_units(
        self,
        units: list[Unit],
        limit: int,
        allowed: list[int] | None = None,
        stats: TermStats | None = None,
    ) -> list[Ranked]:
        """BM25 for any of ``units`` (``query_units``): a term, or a CJK pair as a phrase.

        ``stats`` (a sharded index's corpus-wide term statistics) rescales each term's score
        from this index's IDF to the corpus-wide one, as if all shards were one index.
        """
        if not units:
            return []
        terms = [term for unit in units for term in unit]
        local = self.term_stats(terms) if stats else None
        clauses = []
        for unit in units:
            for field in SEARCH_FIELDS:
                if len(unit) > 1:
                    clauses.append((tantivy.Occur.Should, self._phrase(field, unit)))
                    continue
                query = tantivy.Query.term_query(self._schema, field, unit[0])
                if stats and local and local.doc_freq.get(unit[0]):
                    query = tantivy.Query.boost_query(
                        query, stats.idf(unit[0]) / local.idf(unit[0])
                    )
                clauses.append((tantivy.Occur.Should, query))
        return self._search(tantivy.Query.boolean_query(clauses), limit, allowed)

    def _phrase(self, field: str, unit: Unit) -> tantivy.Query:
        return tantivy.Query.phrase_query(self._schema, field, list(unit))

    def term_stats(self, terms: list[str]) -> TermStats:
        """How many passages this index holds, and how many contain each of ``terms``."""
        field = SEARCH_FIELDS[0]
        return TermStats(
            self.count, {term: int(self._searcher.doc_freq(field, term)) for term in terms}
        )

    def search_syntax(
        self, text: str, limit: int, allowed: list[int] | None = None
    ) -> list[Ranked]:
        """Parse ``text`` with tantivy's query language (phrases, +/-, field:)."""
        try:
            query = self._index.parse_query(text, SEARCH_FIELDS)
        except ValueError as exc:
            raise QuerySyntaxError(f"cannot parse query: {exc}") from None
        return self._search(query, limit, allowed)

    def _search(self, query: tantivy.Query, limit: int, allowed: list[int] | None) -> list[Ranked]:
        if allowed is not None:
            # Filter inside the search, scoring nothing, so BM25 scores stay as they were.
            only = tantivy.Query.const_score_query(
                tantivy.Query.term_set_query(self._schema, "pid", allowed), 0.0
            )
            query = tantivy.Query.boolean_query(
                [(tantivy.Occur.Must, query), (tantivy.Occur.Must, only)]
            )
        result = self._searcher.search(query, limit)
        addresses = [address for _, address in result.hits]
        ids = self._searcher.fast_field_values("pid", addresses)
        ranked = sorted(
            (
                (float(score), int(pid or 0))
                for (score, _), pid in zip(result.hits, ids, strict=True)
            ),
            key=lambda pair: (-pair[0], pair[1]),
        )
        return [Ranked(pid, rank, score) for rank, (score, pid) in enumerate(ranked, start=1)]
