"""tantivy BM25: schema, writing, natural-language and syntax queries, term statistics."""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tantivy

from ..choices import Language
from ..errors import QuerySyntaxError
from ..records import Ranked, ranked_list
from .analysis import DEFAULT_LANGUAGE, Unit, analyzer, normalize

ANALYZER_NAME = "searchkit_scripts"
# Plain queries search one field holding the title and the passage: measured on SciFact train,
# one field ranks better than BM25 summed over separate title and text fields (0.698 vs 0.667
# nDCG@10). The title field stays for `title:` in syntax mode.
SEARCH_FIELDS = ["text"]
WRITER_HEAP_BYTES = 128 * 1024 * 1024
# Hits past a leg's cutoff fetched at most to settle a tie across it: a query scoring every
# passage alike (``*`` in syntax mode) would otherwise fetch them all.
TIE_SPAN = 1000
# tantivy analyzes and indexes on its own threads while Python hands it documents: a second
# thread halved writing 100,000 synthetic passages (10.3 s to 5.0 s on 2 cores, in the one-off
# /tmp/rss/wb2.py); each thread gets an equal share of the heap, and tantivy wants at least
# 15 MB a thread.
WRITER_THREADS = max(1, min(4, os.cpu_count() or 1))


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_unsigned_field("pid", stored=True, indexed=True, fast=True)
    builder.add_text_field("doc_id", stored=False, tokenizer_name="raw")
    builder.add_text_field("path", stored=False, tokenizer_name="raw")
    builder.add_text_field("title", stored=False, tokenizer_name=ANALYZER_NAME)
    builder.add_text_field("text", stored=False, tokenizer_name=ANALYZER_NAME)
    return builder.build()


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
    language: Language | None = None  # its document's, where it is not the index's main one


def write_lexical(
    directory: Path, rows: Iterator[LexicalRow], main: Language = DEFAULT_LANGUAGE
) -> int:
    """Write a new tantivy index of ``rows`` into the empty ``directory``; returns the count.
    Latin script is analyzed as each row's language, else as the index's ``main`` one."""
    directory.mkdir(parents=True, exist_ok=True)
    index = tantivy.Index(_schema(), path=str(directory))
    index.register_tokenizer(ANALYZER_NAME, analyzer(main))
    writer = index.writer(WRITER_HEAP_BYTES, WRITER_THREADS)
    count = 0
    for row in rows:
        doc = tantivy.Document()
        doc.add_unsigned("pid", row.passage_id)
        doc.add_text("doc_id", row.doc_id)
        doc.add_text("path", row.path)
        title = normalize(row.title)
        text = normalize(f"{row.title}\n{row.text}" if row.title else row.text)
        if row.language is None or row.language == main:
            doc.add_text("title", title)
            doc.add_text("text", text)
        else:  # analyzed here as its language: tantivy applies one analyzer per field
            own = analyzer(row.language)
            doc.add_pre_tokenized_text("title", own.pre_tokenize(title))
            doc.add_pre_tokenized_text("text", own.pre_tokenize(text))
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
    # The query's terms in the index's main language, with their weights (``term_weights``):
    # BM25's reference score adds up their weighted IDFs (``search.relevance``), not swollen
    # by other languages' rare forms of the same words.
    reference: tuple[tuple[str, float], ...] = ()

    def idf(self, term: str) -> float:
        """tantivy's BM25 IDF: ln(1 + (N - n + 0.5) / (n + 0.5))."""
        n = self.doc_freq.get(term, 0)
        return math.log(1 + (self.documents - n + 0.5) / (n + 0.5))

    @staticmethod
    def total(parts: Iterable[TermStats]) -> TermStats:
        """The statistics of several indexes taken as one."""
        documents, doc_freq, reference = 0, Counter[str](), dict[str, float]()
        for part in parts:
            documents += part.documents
            doc_freq.update(part.doc_freq)
            reference.update(part.reference)
        return TermStats(documents, dict(doc_freq), tuple(reference.items()))


class LexicalIndex:
    """A read-only tantivy index; every search goes through one searcher snapshot. Syntax
    queries are analyzed as its ``main`` language."""

    def __init__(self, directory: Path, main: Language = DEFAULT_LANGUAGE) -> None:
        self._index = tantivy.Index.open(str(directory))
        self._index.register_tokenizer(ANALYZER_NAME, analyzer(main))
        self._schema = self._index.schema
        self._searcher = self._index.searcher()

    @property
    def count(self) -> int:
        return int(self._searcher.num_docs)

    def search_units(
        self,
        units: list[tuple[Unit, float]],
        limit: int,
        allowed: list[int] | None = None,
        stats: TermStats | None = None,
    ) -> list[Ranked]:
        """BM25 for any of ``units`` (``weighted_units``), each score times its unit's
        weight: a term, or a CJK pair as a phrase.

        ``stats`` (a sharded index's corpus-wide term statistics) rescales each term's score
        from this index's IDF to the corpus-wide one, as if all shards were one index.
        """
        if not units:
            return []
        terms = [term for unit, _ in units for term in unit]
        local = self.term_stats(terms) if stats else None
        clauses = []
        for unit, weight in units:
            boost = weight
            if len(unit) == 1 and stats and local and local.doc_freq.get(unit[0]):
                boost *= stats.idf(unit[0]) / local.idf(unit[0])
            for field in SEARCH_FIELDS:
                query = (
                    self._phrase(field, unit)
                    if len(unit) > 1
                    else tantivy.Query.term_query(self._schema, field, unit[0])
                )
                if boost != 1.0:
                    query = tantivy.Query.boost_query(query, boost)
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
        hits = self._hits_past_ties(query, limit)
        ids = self._searcher.fast_field_values("pid", [address for _, address in hits])
        ranked = sorted(
            ((float(score), int(pid or 0)) for (score, _), pid in zip(hits, ids, strict=True)),
            key=lambda pair: (-pair[0], pair[1]),
        )[:limit]
        return ranked_list([pid for _, pid in ranked], [score for score, _ in ranked])

    def _hits_past_ties(self, query: tantivy.Query, limit: int) -> list[tuple[float, Any]]:
        """The top ``limit`` hits and every hit tied with the last of them. tantivy breaks ties
        by document address, which follows the writer threads' timing; with all of the tie at
        hand, the caller breaks it by passage id, the same in every build of the same text."""
        if limit <= 0:
            return []
        wanted = limit + 1
        while True:
            hits = self._searcher.search(query, wanted).hits
            settled = len(hits) < wanted or hits[-1][0] < hits[limit - 1][0]
            if settled or wanted >= limit + TIE_SPAN:
                return hits
            wanted = min(2 * wanted, limit + TIE_SPAN)
