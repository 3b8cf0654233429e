"""What a new generation learns about itself, with no judgments: how well each leg finds a
passage from one of its own sentences, held out (the inverse cloze task of Lee et al., 2019).

A sentence is taken out of a sampled passage and used as the query; the passage without it is
the one right answer. Each leg ranks that rest-of-passage among its candidates for the query:
BM25 through tantivy (the rest scored with the same analyzer, IDF and length normalization),
vectors through FAISS (the rest encoded as passages are, the sentence as queries are). A leg
that cannot find its own passages, such as an English embedding model on text in a script it
never saw, shows it here, and hybrid search trusts it accordingly (``search.adaptive``).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..choices import Language
from ..embed import Encoder
from ..ingest.passages import sentence_spans
from ..storage.analysis import DEFAULT_LANGUAGE, Languages, term_weights, tokens
from ..storage.generation import LEXICAL, VECTORS
from ..storage.lexical import LexicalIndex, LexicalRow, TermStats

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

# Bumped when what is measured changes (evaluation caches key on it). 3: held-out sentences
# batched with the rests, BM25's average length from a sample of 500 passages. 4: a query term
# said more than once weighs more (``analysis.query_weight``).
VERSION = 4
SAMPLE = 200  # held-out sentences: the leg's mean reciprocal rank to within about +-0.03
MIN_SAMPLE = 20  # fewer eligible passages than this say too little: no estimate
MIN_SENTENCES = 3  # the rest of the passage must still say something without the sentence
DEPTH = 100  # candidates each leg ranks the held-out passage among
BM25_K1, BM25_B = 1.2, 0.75  # tantivy's BM25 constants


@dataclass(frozen=True)
class Passage:
    """One passage as both legs index it: the lexical title and text (analyzed in
    ``language``), the embedded text."""

    passage_id: int
    title: str
    text: str
    embedded: str
    language: Language = DEFAULT_LANGUAGE


def sentence_encoder(query_encoder: Encoder | None, passages: Encoder) -> Encoder:
    """What encodes the held-out sentences: the query encoder, as queries are encoded; the
    passage encoder where that is the same model, runtime and precision (it runs on every
    core, a query encoder on one), or where the caller handed the build its encoder (tests,
    refreshes)."""
    if query_encoder is None or (
        type(query_encoder) is type(passages)
        and query_encoder.fingerprint == passages.fingerprint
        and query_encoder.variant == passages.variant
    ):
        return passages
    return query_encoder


def check_generation(
    root: Path,
    rows: Sequence[LexicalRow],
    embedded: Sequence[str],
    encoder: Encoder,
    query_encoder: Encoder,
    *,
    languages: Languages,
    vector_search: tuple[int, float],
) -> dict[str, Any] | None:
    """``self_check`` of a generation being built, from its lexical rows and embedded texts;
    its documents are analyzed in ``languages``, the main one first, and its vector index is
    searched as queries will search it (``vector_search``: HNSW's efSearch, the share of an
    inverted file's lists)."""
    passages = [
        Passage(row.passage_id, row.title, row.text, text, row.language or languages[0])
        for row, text in zip(rows, embedded, strict=True)
    ]
    return self_check(
        root, passages, encoder, query_encoder, languages=languages, vector_search=vector_search
    )


def self_check(
    root: Path,
    passages: Sequence[Passage],
    encoder: Encoder,
    query_encoder: Encoder,
    *,
    languages: Languages,
    vector_search: tuple[int, float],
) -> dict[str, Any] | None:
    """Each leg's mean reciprocal rank on held-out sentences of the generation at ``root``,
    with the scores it gave the right passages and the best wrong ones (for calibration).
    None when too few passages have sentences to hold out."""
    chosen = _sample(passages)
    if len(chosen) < MIN_SAMPLE:
        return None
    queries = [text[start:end] for _, text, (start, end) in chosen]
    rests = [_without(p, start, end) for p, _, (start, end) in chosen]
    query_vectors, rest_vectors = _encode(
        queries, [embedded for _, embedded in rests], query_encoder, encoder
    )
    lexical = LexicalIndex(root / LEXICAL, languages[0])
    average_length = _average_length(passages)
    from ..storage.vectors import VectorIndex  # FAISS, as the build already loaded it

    vectors = VectorIndex(root / VECTORS, *vector_search)
    ranks: dict[str, list[int]] = {"bm25": [], "vector": []}
    for (passage, _, _), query, (lexical_rest, _), qv, rv in zip(
        chosen, queries, rests, query_vectors, rest_vectors, strict=True
    ):
        # Terms one by one (a CJK pair's too), as ``_bm25`` scores them, with their weights.
        weights = term_weights(query, languages)
        found = lexical.search_units([((term,), w) for term, w in weights.items()], DEPTH)
        rest = tokens(lexical_rest, passage.language)
        target = _bm25(weights, rest, lexical.term_stats(list(weights)), average_length)
        ranks["bm25"].append(_rank(target, found, passage.passage_id))
        nearest = vectors.search(qv, DEPTH)
        ranks["vector"].append(_rank(float(rv @ qv), nearest, passage.passage_id))
    return {
        "method": "inverse cloze task",
        "version": VERSION,
        "samples": len(chosen),
        "mrr": {
            leg: round(sum(1 / r for r in found) / len(found), 4) for leg, found in ranks.items()
        },
    }


def _encode(
    queries: list[str], rests: list[str], query_encoder: Encoder, encoder: Encoder
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """The held-out sentences' vectors and the rests': in one call where one encoder does both,
    so that its batches fill every core."""
    if query_encoder is encoder:
        both = encoder.encode(queries + rests)
        return both[: len(queries)], both[len(queries) :]
    return query_encoder.encode(queries), encoder.encode(rests)


def _sample(passages: Sequence[Passage]) -> list[tuple[Passage, str, tuple[int, int]]]:
    """Up to SAMPLE passages of several sentences, each with the sentence to hold out; the same
    passages give the same sample (a rebuild of unchanged documents measures the same)."""
    rng = random.Random(len(passages))
    eligible = []
    for passage in passages:
        spans = sentence_spans(passage.text)
        if len(spans) >= MIN_SENTENCES:
            eligible.append((passage, passage.text, spans[rng.randrange(len(spans))]))
    return rng.sample(eligible, min(SAMPLE, len(eligible)))


def _without(passage: Passage, start: int, end: int) -> tuple[str, str]:
    """The passage without its held-out sentence: (lexical text, embedded text)."""
    rest = passage.text[:start] + passage.text[end:]
    prefix = passage.embedded[: len(passage.embedded) - len(passage.text)]
    lexical = f"{passage.title}\n{rest}" if passage.title else rest
    return lexical, prefix + rest


def _average_length(passages: Sequence[Passage]) -> float:
    # A sample is plenty for a mean: 500 passages put it within about 2% (the first 1,500
    # SciFact documents: 161.3 analyzed tokens against 162.1 for all, 0.5% off).
    step = max(1, len(passages) // 500)
    lengths = [
        len(tokens(f"{p.title}\n{p.text}" if p.title else p.text, p.language))
        for p in passages[::step]
    ]
    return max(1.0, sum(lengths) / len(lengths))


def _bm25(
    weights: dict[str, float], document: list[str], stats: TermStats, average_length: float
) -> float:
    """tantivy's BM25 score of an analyzed ``document`` that is not in the index, for query
    terms of these ``weights``."""
    counts = Counter(document)
    norm = BM25_K1 * (1 - BM25_B + BM25_B * len(document) / average_length)
    return sum(
        weight * stats.idf(term) * counts[term] * (BM25_K1 + 1) / (counts[term] + norm)
        for term, weight in weights.items()
        if counts[term]
    )


def _rank(target: float, found: Sequence[Any], held_out: int) -> int:
    """Where the rest of the passage would rank among ``found``, the passage itself left out."""
    return 1 + sum(1 for r in found if r.passage_id != held_out and r.score > target)
