"""Ranked passages -> ``Hit`` records: stored text, lexical and semantic highlights, HTML."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from ..embed import Encoder
from ..ingest.passages import sentence_spans
from ..records import Fused, Hit, LegScore, Ranked
from ..storage.analysis import Languages, Unit
from ..storage.catalog import PassageRow
from ..storage.matching import term_spans
from .highlight import merge_spans, most_similar, to_html
from .relevance import likely_match

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray


def make_hit(item: Fused, row: PassageRow, units: list[Unit], languages: Languages) -> Hit:
    """A hit with lexical highlights: the words matching the query's analyzed ``units`` in one
    of the index's ``languages``."""
    spans = merge_spans(row.text, term_spans(row.text, units, languages))
    return Hit(
        doc_id=row.doc_id,
        path=row.path,
        title=row.title,
        text=row.text,
        start=row.start,
        end=row.end,
        page=row.page,
        score=item.score,
        bm25=_leg(item.bm25),
        vector=_leg(item.vector),
        highlights=spans,
        html=to_html(row.text, spans),
    )


def explain(
    hits: list[Hit], page: list[Fused], query_vector: NDArray[np.float32], encoder: Encoder
) -> list[Hit]:
    """Semantic highlights for hits the vector leg found whose words match nothing: the
    sentences closest to the query, where closer than unrelated text. One batch
    encode for all of them."""
    wanted = [
        i for i, (hit, item) in enumerate(zip(hits, page, strict=True))
        if item.vector is not None and not hit.highlights
    ]  # fmt: skip
    sentences = {i: sentence_spans(hits[i].text) for i in wanted}
    texts = [hits[i].text[s:e] for i in wanted for s, e in sentences[i]]
    if not texts:
        return hits
    similarities = iter((encoder.encode(texts) @ query_vector).tolist())
    explained = list(hits)
    for i in wanted:
        scores = [next(similarities) for _ in sentences[i]]
        spans = most_similar(sentences[i], scores, likely_match)
        explained[i] = replace(hits[i], highlights=spans, html=to_html(hits[i].text, spans))
    return explained


def _leg(ranked: Ranked | None) -> LegScore | None:
    return None if ranked is None else LegScore(ranked.rank, ranked.score)
