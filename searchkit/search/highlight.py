"""Highlight spans -> merged spans, escaped HTML with ``<mark>``, and styled segments. Pure."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable

from ..records import Span, SpanKind


def merge_spans(
    text: str, spans: Iterable[tuple[int, int]], kind: SpanKind = "lexical"
) -> list[Span]:
    """Sort spans and join neighbours separated only by punctuation (``S-400`` is one span)."""
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and _joinable(text[merged[-1][1] : start]):
            merged[-1][1] = max(end, merged[-1][1])
        else:
            merged.append([start, end])
    return [Span(start, end, kind) for start, end in merged]


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


def _joinable(gap: str) -> bool:
    """A gap joins two matches when it is empty or punctuation without whitespace."""
    return _BREAK.search(gap) is None


_BREAK = re.compile(r"\s|[^\W_]")  # whitespace, or a letter or digit (str.isalnum)


def segments(text: str, spans: list[Span]) -> list[tuple[str, SpanKind | None]]:
    """``text`` cut into (piece, kind-or-None) runs, for renderers that style each run."""
    pieces: list[tuple[str, SpanKind | None]] = []
    cursor = 0
    for span in sorted(spans, key=lambda s: s.start):
        if span.start < cursor:  # overlapping spans: the earlier one wins
            continue
        if span.start > cursor:
            pieces.append((text[cursor : span.start], None))
        pieces.append((text[span.start : span.end], span.kind))
        cursor = span.end
    if cursor < len(text):
        pieces.append((text[cursor:], None))
    return pieces


_ESCAPED = re.compile("[&<>\"']")  # what html.escape(quote=True) replaces


def to_html(text: str, spans: list[Span]) -> str:
    """Escape ``text`` and wrap highlighted runs in ``<mark>`` (the runs of ``segments``). Most
    texts hold nothing to escape, and are not escaped piece by piece."""
    escape: Callable[[str], str] = html.escape if _ESCAPED.search(text) else str
    return "".join(
        f'<mark class="{kind}">{escape(piece)}</mark>' if kind else escape(piece)
        for piece, kind in segments(text, spans)
    )
