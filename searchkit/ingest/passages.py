"""Documents -> paragraph-sized passages. Pure: no I/O, no model.

A passage is one paragraph. Paragraphs are blocks separated by blank lines, or single lines when
the text has none. Paragraphs shorter than ``min_words`` join a neighbour; paragraphs longer than
the embedding model's window are split at sentence boundaries (at word boundaries for a single
over-long sentence), so nothing is ever truncated silently. Offsets always round-trip:
``document.text[p.start:p.end] == p.text``.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ..config import default
from ..records import Document, Passage

TokenCounter = Callable[[str], int]
SpanCounter = Callable[[int, int], int]  # tokens in text[start:end] of one given text
MAX_TITLE_TOKENS = 64  # a longer title is left out of the embedded text

_BLANK_LINE = re.compile(r"\n[ \t\r\f\v]*\n")
_SENTENCE_END = re.compile(r"[.!?][\"'”’)\]]*\s+|\n+")
_WORD = re.compile(r"\S+")


def estimate_tokens(text: str) -> int:
    """A model-free stand-in for a tokenizer: word pieces run about 1.3 per English word."""
    return (len(text.split()) * 4 + 2) // 3


@dataclass(frozen=True)
class PassageSettings:
    min_words: int = default("min_passage_words")
    max_tokens: int = 254  # all-MiniLM-L6-v2's 256 less [CLS] and [SEP]; builds pass the model's


def split_passages(
    document: Document,
    settings: PassageSettings | None = None,
    count_tokens: TokenCounter = estimate_tokens,
    count_spans: SpanCounter | None = None,
) -> list[Passage]:
    """Cut ``document`` into passages that each fit ``settings.max_tokens``.

    Tokens are counted with ``count_spans`` over ``document.text`` when given (a counter that
    need not tokenize each span again), else by ``count_tokens`` on each piece.
    """
    settings = settings or PassageSettings()
    text = document.text
    count = count_spans or substring_counter(text, count_tokens)
    merged: list[tuple[int, int]] = []
    for region_start, region_end in _regions(document):  # passages never cross a page break
        pieces: list[tuple[int, int]] = []
        for start, end in paragraph_spans(text, region_start, region_end):
            pieces.extend(_fit(text, start, end, settings.max_tokens, count))
        merged.extend(_merge_short(text, pieces, settings, count))
    return [Passage(document.doc_id, s, e, text[s:e], _page(document.pages, s)) for s, e in merged]


def substring_counter(text: str, count_tokens: TokenCounter) -> SpanCounter:
    """A span counter that counts each span of ``text`` on its own."""
    return lambda start, end: count_tokens(text[start:end])


def _page(page_starts: tuple[int, ...], offset: int) -> int | None:
    """The 1-based page holding ``offset``, for paged documents."""
    return bisect_right(page_starts, offset) if page_starts else None


def _regions(document: Document) -> list[tuple[int, int]]:
    """The body, or each page of its body for paged documents."""
    bounds = [document.body_start, *(p for p in document.pages if p > document.body_start)]
    ends = [*bounds[1:], len(document.text)]
    return list(zip(bounds, ends, strict=True))


def paragraph_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """(start, end) of each paragraph of ``text[start:end]``, stripped of whitespace."""
    end = len(text) if end is None else end
    separator = _BLANK_LINE if _BLANK_LINE.search(text, start, end) else re.compile(r"\n")
    spans: list[tuple[int, int]] = []
    cursor = start
    for match in separator.finditer(text, start, end):
        spans.extend(_stripped(text, cursor, match.start()))
        cursor = match.end()
    spans.extend(_stripped(text, cursor, end))
    return spans


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of ``text``, stripped."""
    return _units(text, 0, len(text), _SENTENCE_END)


def _stripped(text: str, start: int, end: int) -> list[tuple[int, int]]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return [(start, end)] if end > start else []


def _fit(
    text: str, start: int, end: int, max_tokens: int, count: SpanCounter
) -> list[tuple[int, int]]:
    """Split ``text[start:end]`` into consecutive pieces of at most ``max_tokens`` tokens."""
    if count(start, end) <= max_tokens:
        return [(start, end)]
    units = _units(text, start, end, _SENTENCE_END)
    if len(units) == 1:
        units = _units(text, start, end, None)
        if len(units) == 1:  # one unbreakable token run: cut by characters
            half = start + (end - start) // 2
            return _fit(text, start, half, max_tokens, count) + _fit(
                text, half, end, max_tokens, count
            )
    return _pack(text, units, max_tokens, count)


def _units(
    text: str, start: int, end: int, boundary: re.Pattern[str] | None
) -> list[tuple[int, int]]:
    """Sentences (``boundary`` given) or words of ``text[start:end]``, stripped."""
    units: list[tuple[int, int]] = []
    if boundary is None:
        for m in _WORD.finditer(text, start, end):
            units.append((m.start(), m.end()))
        return units
    cursor = start
    for m in boundary.finditer(text, start, end):
        units.extend(_stripped(text, cursor, m.end()))
        cursor = m.end()
    units.extend(_stripped(text, cursor, end))
    return units


def _pack(
    text: str, units: list[tuple[int, int]], max_tokens: int, count: SpanCounter
) -> list[tuple[int, int]]:
    """Greedily join consecutive units into pieces that fit; split any unit that alone does not.

    Each unit is counted once and pieces are sized by the sum of their units' counts: units are
    separated by whitespace, which word-piece and BPE tokenizers never join across, so the sum is
    the count of the joined text. Each piece is still checked once, and one that does not fit
    after all (an unusual tokenizer) is packed again by counting every prefix.
    """
    pieces: list[tuple[int, int]] = []
    current: tuple[int, int] | None = None
    current_tokens = 0
    for unit in units:
        tokens = count(unit[0], unit[1])
        if current is not None and current_tokens + tokens <= max_tokens:
            current, current_tokens = (current[0], unit[1]), current_tokens + tokens
            continue
        if current is not None:
            pieces.append(current)
        if tokens > max_tokens:
            pieces.extend(_fit(text, unit[0], unit[1], max_tokens, count))
            current, current_tokens = None, 0
        else:
            current, current_tokens = unit, tokens
    if current is not None:
        pieces.append(current)
    checked: list[tuple[int, int]] = []
    for start, end in pieces:
        if count(start, end) <= max_tokens:
            checked.append((start, end))
        else:
            checked.extend(_pack_exactly(_units(text, start, end, None), max_tokens, count))
    return checked


def _pack_exactly(
    units: list[tuple[int, int]], max_tokens: int, count: SpanCounter
) -> list[tuple[int, int]]:
    """Like ``_pack`` for single words, counting each growing piece (slow, always right)."""
    pieces: list[tuple[int, int]] = []
    current: tuple[int, int] | None = None
    for unit in units:
        if current is not None and count(current[0], unit[1]) <= max_tokens:
            current = (current[0], unit[1])
            continue
        if current is not None:
            pieces.append(current)
        current = unit
    if current is not None:
        pieces.append(current)
    return pieces


def _merge_short(
    text: str,
    pieces: list[tuple[int, int]],
    settings: PassageSettings,
    count: SpanCounter,
) -> list[tuple[int, int]]:
    """Join pieces under ``min_words`` words to the following piece, the last to the previous."""

    def words(span: tuple[int, int]) -> int:
        return len(text[span[0] : span[1]].split())

    def fits(start: int, end: int) -> bool:
        return count(start, end) <= settings.max_tokens

    merged: list[tuple[int, int]] = []
    pending: tuple[int, int] | None = None
    for piece in pieces:
        current = piece
        if pending is not None and fits(pending[0], piece[1]):
            current = (pending[0], piece[1])
        elif pending is not None:
            merged.append(pending)
        pending = current if words(current) < settings.min_words else None
        if pending is None:
            merged.append(current)
    if pending is not None:
        if merged and fits(merged[-1][0], pending[1]):
            merged[-1] = (merged[-1][0], pending[1])
        else:
            merged.append(pending)
    return merged


class TokenWindow(Protocol):
    """The model window a passage must fit (an ``Encoder`` is one)."""

    @property
    def max_tokens(self) -> int: ...
    def count_tokens(self, text: str) -> int: ...
    def span_counter(self, text: str) -> SpanCounter:
        """Counts tokens in spans of ``text``, as ``count_tokens`` would count each alone."""
        ...


def embedded_passages(
    document: Document, min_words: int, window: TokenWindow
) -> tuple[list[Passage], list[str]]:
    """A document's passages, and the text each one is embedded as: the title, when short,
    then the passage. A passage alone often lacks its subject ("the patients", "this
    protein"); the title supplies it, and passages are cut to fit the window with it."""
    title = document.title
    context = title + "\n" if title else ""
    context_tokens = window.count_tokens(context) if context else 0  # counted once
    if context_tokens > MAX_TITLE_TOKENS:  # a long title would crowd out the passage
        context, context_tokens = "", 0
    budget = window.max_tokens - context_tokens
    settings = PassageSettings(min_words, budget)
    passages = split_passages(
        document, settings, window.count_tokens, window.span_counter(document.text)
    )
    return passages, [context + passage.text for passage in passages]
