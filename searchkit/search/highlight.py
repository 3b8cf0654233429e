"""Highlight spans -> merged spans, escaped HTML with ``<mark>``, and styled segments. Pure."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable
from operator import attrgetter

from ..records import Span, SpanKind


def merge_spans(
    text: str, spans: Iterable[tuple[int, int]], kind: SpanKind = "lexical"
) -> list[Span]:
    """Sort spans and join neighbours separated only by punctuation (``S-400`` is one span)."""
    ordered = sorted(spans)
    if not ordered:
        return []
    merged = []
    start, end = ordered[0]
    for next_start, next_end in ordered[1:]:
        # The gap is searched in place (overlapping spans leave none to search): no slice.
        if _BREAK.search(text, end, next_start) is None:
            end = max(end, next_end)
        else:
            merged.append(Span(start, end, kind))
            start, end = next_start, next_end
    merged.append(Span(start, end, kind))
    return merged


def most_similar(
    sentences: list[tuple[int, int]],
    similarities: list[float],
    likely: Callable[[float], bool],
    margin: float = 0.03,
) -> list[Span]:
    """Semantic spans: the sentence most similar to the query, plus any within ``margin``,
    of those similar enough to be ``likely`` matches."""
    if not sentences:
        return []
    best = max(similarities)
    return [
        Span(start, end, "semantic")
        for (start, end), similarity in zip(sentences, similarities, strict=True)
        if similarity >= best - margin and likely(similarity)
    ]


# A gap joins two matches when it is empty or punctuation without whitespace: it holds no
# whitespace and no letter or digit (str.isalnum).
_BREAK = re.compile(r"\s|[^\W_]")


def segments(text: str, spans: list[Span]) -> list[tuple[str, SpanKind | None]]:
    """``text`` cut into (piece, kind-or-None) runs, for renderers that style each run."""
    pieces: list[tuple[str, SpanKind | None]] = []
    cursor = 0
    for span in _in_order(spans):
        if span.start > cursor:
            pieces.append((text[cursor : span.start], None))
        pieces.append((text[span.start : span.end], span.kind))
        cursor = span.end
    if cursor < len(text):
        pieces.append((text[cursor:], None))
    return pieces


_ESCAPED = re.compile("[&<>\"']")  # what html.escape(quote=True) replaces


def to_html(text: str, spans: list[Span]) -> str:
    """Escape ``text`` and wrap highlighted runs in ``<mark>`` (the runs of ``segments``, not
    built as pieces first: this runs for every hit). Most texts hold nothing to escape, and are
    not escaped piece by piece."""
    escape: Callable[[str], str] = html.escape if _ESCAPED.search(text) else str
    parts = []
    cursor = 0
    for span in _in_order(spans):
        parts.append(escape(text[cursor : span.start]))
        parts.append(f'<mark class="{span.kind}">{escape(text[span.start : span.end])}</mark>')
        cursor = span.end
    parts.append(escape(text[cursor:]))
    return "".join(parts)


def _in_order(spans: list[Span]) -> list[Span]:
    """``spans`` by start, less any overlapping an earlier one (the earlier one wins)."""
    kept = []
    cursor = 0
    for span in sorted(spans, key=_START):
        if span.start >= cursor:
            kept.append(span)
            cursor = span.end
    return kept


_START = attrgetter("start")
