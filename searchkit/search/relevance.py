"""Calibrated relevance: an estimate, per hit, of the probability that it answers its query.

Fused scores rank within one query but mean nothing across queries. Relevance reads each leg's
evidence on an absolute scale instead:

- the vector leg: the cosine similarity of query and passage;
- BM25: the hit's score over the query's ``sum of IDFs``, each times the term's weight in the
  query (what a passage holding each query term once, at average length, would score), so
  that "every rare term matched" reads near 1 whatever the query's length or its repeats, and
  a query the index has no words for reads 0.

Each leg's evidence passes through a logistic curve fitted, for the bundled model, on the top 10
hybrid hits of the SciFact train and CISI queries against their judgments (one curve for both
collections, not one per collection). Hybrid combines the legs as independent evidence (their
log-odds over the prior add), each counted as far as the index trusts that leg (the share the
fusion gives it, over the larger share): a leg the self-check found useless adds nothing, and
so does a vector leg that found nothing closer than unrelated text for this query.
The best hit also counts its lead: a query with one answer shows it as a clear winner. The
further its evidence stands above every other candidate's, the likelier it is that answer:
on SciFact train, 0.30 of the top documents leading the next one by under 0.5 in log-odds
are judged relevant, 0.92 of those leading by 2 to 2.5 (``benchmarks/lead.py``). A
collection where many passages answer each query gives few clear winners, and so little
lead to count. Finally a hit never reads as less relevant than one ranked below it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

from ..choices import Mode
from ..records import Fused, Ranked

PRIOR = 0.12  # the share of judged-relevant hits in a top 10, over both fitting collections
VECTOR_CURVE = (10.5, 0.74)  # slope, and the cosine at which the vector leg alone says 1/2
LEXICAL_CURVE = (3.6, 1.1)  # slope, and the IDF coverage at which BM25 alone says 1/2
# What the best hit's lead over every other candidate (in log-odds) adds to its own log-odds:
# the lead counts twice. On SciFact train, the top documents leading the next by under 2 (554
# of 809 queries) are then judged relevant about as often as predicted (0.30-0.72 against
# 0.32-0.68); those leading by more are right still more often than predicted
# (``python benchmarks/lead.py ../shared/datasets/scifact --split train``).
STANDOUT = 1.0
WEAK = 0.2  # below this a hit is shown as a weak match (page, human output)
# Below this cosine a sentence or passage is as close to the query as unrelated text: against
# the seed passages, stopword-only, made-up and off-topic queries ("panda bamboo", "football")
# score 0.07-0.19; a paraphrase's answer ("robot exploring the red planet" for a Mars rover)
# scores 0.30 and more.
SEMANTIC_FLOOR = 0.2


@dataclass(frozen=True)
class Evidence:
    """What a query's legs say on an absolute scale: BM25's reference score (the sum of the
    query terms' weighted IDFs), and each leg's candidates, to bound a passage a leg did not
    return."""

    idf_sum: float
    bm25: Sequence[Ranked]
    vector: Sequence[Ranked]
    depth: int


def relevance(
    items: Sequence[Fused], mode: Mode, evidence: Evidence, vector_weight: float | None
) -> list[float]:
    """The relevance of each of ``items`` (a query's fused ranking, best first), in [0, 1];
    ``vector_weight`` is the vector leg's share in the fusion (None: even)."""
    if not items:
        return []
    if mode == "hybrid":
        return _hybrid(items, evidence, vector_weight)
    # One leg says it alone, through its own curve, over a page of hits: in Python, so that a
    # bm25 query never loads numpy (a cold `searchkit query` would pay for its import).
    # Each list ends with the best hit's rival beyond the candidates: a passage at BM25's
    # bound (0 where BM25 matched no more: a lone match leads everything else), or as similar
    # as the vector leg's last candidate (``_vector_rival``).
    if mode == "bm25":
        bound, (slope, middle) = _bound(evidence.bm25, evidence.depth), LEXICAL_CURVE
        scores = [*(bound if i.bm25 is None else i.bm25.score for i in items), bound]
        values = [min(1.0, s / evidence.idf_sum) if evidence.idf_sum > 0 else 0.0 for s in scores]
    else:
        bound, (slope, middle) = _bound(evidence.vector, evidence.depth), VECTOR_CURVE
        values = [
            *(bound if i.vector is None else i.vector.score for i in items),
            _vector_rival(evidence),
        ]
    odds = [slope * (v - middle) for v in values]
    odds[0] += _standing_out(odds[0], max(odds[1:]))
    return _never_below_lower_ranks([_sigmoid(z) for z in odds[:-1]])


def _hybrid(items: Sequence[Fused], evidence: Evidence, vector_weight: float | None) -> list[float]:
    """Both legs' evidence, as log-odds over the prior, added for every fused candidate (a
    hybrid query has hundreds: in numpy, one array per leg)."""
    import numpy as np

    trust = _trust(0.5 if vector_weight is None else vector_weight)
    if not evidence.vector:  # the vector leg found nothing related: it cannot judge this
        trust = (1.0, 0.0)  # query (a made-up word, an identifier)
    prior = _logit(PRIOR)
    # As in ``relevance``, each array ends with the best hit's rival beyond the candidates.
    bound = _bound(evidence.bm25, evidence.depth)
    scores = np.array([*(bound if i.bm25 is None else i.bm25.score for i in items), bound])
    idf_sum = evidence.idf_sum  # equals min(1, s / idf_sum), but cannot overflow
    coverage = np.minimum(scores, idf_sum) / idf_sum if idf_sum > 0 else 0.0
    bound = _bound(evidence.vector, evidence.depth)
    cosines = np.array(
        [*(bound if i.vector is None else i.vector.score for i in items), _vector_rival(evidence)]
    )
    (lexical_slope, lexical_middle), (vector_slope, vector_middle) = LEXICAL_CURVE, VECTOR_CURVE
    odds = (
        prior
        + trust[0] * (lexical_slope * (coverage - lexical_middle) - prior)
        + trust[1] * (vector_slope * (cosines - vector_middle) - prior)
    )
    odds[0] += _standing_out(float(odds[0]), float(odds[1:].max()))
    estimates = 1 / (1 + np.exp(-odds[:-1]))
    raised = np.maximum.accumulate(estimates[::-1])[::-1]  # ``_never_below_lower_ranks``
    values: list[float] = np.round(raised, 4).tolist()
    return values


def _vector_rival(evidence: Evidence) -> float:
    """The cosine of the best hit's rival beyond the vector leg's candidates: its least similar
    one. A full leg leaves nothing beyond it more similar; a short one left nothing beyond it,
    and its rival is no stronger than that last candidate, which is fused too (a lone vector
    candidate is its own rival: no lead)."""
    return evidence.vector[-1].score if evidence.vector else 0.0


def _standing_out(best: float, runner_up: float) -> float:
    """What the best hit gains, in log-odds, for leading every other candidate: the same
    evidence means more in a hit that stands out than in one among close rivals."""
    return STANDOUT * max(0.0, best - runner_up)


def likely_match(cosine: float) -> bool:
    """Whether a sentence this similar to the query is closer than unrelated text: where
    semantic highlights are worth showing."""
    return cosine >= SEMANTIC_FLOOR


def unrelated(vector_leg: Sequence[Ranked]) -> bool:
    """Whether the vector leg's candidates (best first) are all as far from the query as
    unrelated text is."""
    return bool(vector_leg) and vector_leg[0].score < SEMANTIC_FLOOR


def _trust(vector_weight: float) -> tuple[float, float]:
    """How far each leg's evidence counts: its fusion share over the larger share."""
    larger = max(vector_weight, 1 - vector_weight)
    return (1 - vector_weight) / larger, vector_weight / larger


def _bound(leg: Sequence[Ranked], depth: int) -> float:
    """The most a passage missing from ``leg`` can score: nothing when the leg returned fewer
    than it was asked for (it matched no more), else its last candidate's score."""
    return leg[-1].score if leg and len(leg) >= depth else 0.0


def _never_below_lower_ranks(estimates: list[float]) -> list[float]:
    """Each estimate raised to the best of those ranked below it, so relevance falls with rank."""
    raised = list(accumulate(reversed(estimates), max))
    return [round(value, 4) for value in reversed(raised)]


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))
