"""Rank fusion over per-leg candidate lists, and passage-to-document aggregation.

Pure functions over ``Ranked`` records. Every ordering breaks ties the same way: higher score,
then the better best rank of either leg, then the lower passage id.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..choices import Aggregation, FusionMethod
from ..config import Settings
from ..errors import IndexCorruptError
from ..records import Fused, Ranked

EQUAL_WEIGHT = 0.5  # the vector leg's share where nothing better is known


def _default(setting: str) -> Any:
    """The default of a ``Settings`` field: the one place fusion defaults are declared."""
    return Settings.model_fields[setting].default


@dataclass(frozen=True)
class FusionOptions:
    """How the two legs become one ranking (defaults: those of ``Settings``).

    ``vector_weight`` is the vector leg's share (0 = BM25 only, 1 = vectors only; None: the
    index's learned share, which the engine fills in); at 0.5 RRF scores are the textbook
    ``1/(k+rank)`` sums. ``aggregate`` turns passages into documents:
    the best passage's score, or a sum of the top passages decayed by ``decay`` per place.
    """

    method: FusionMethod = _default("fusion")  # noqa: RUF009 (a str, read once)
    rrf_k: int = _default("rrf_k")
    vector_weight: float | None = _default("vector_weight")
    candidates: int = _default("candidates")
    aggregate: Aggregation = _default("aggregate")  # noqa: RUF009 (a str, read once)
    decay: float = _default("decay")


def fuse(bm25: list[Ranked], vector: list[Ranked], options: FusionOptions) -> list[Fused]:
    weight = EQUAL_WEIGHT if options.vector_weight is None else options.vector_weight
    if options.method == "rrf":
        return reciprocal_rank_fusion(bm25, vector, options.rrf_k, weight)
    return normalized_fusion(bm25, vector, weight, options.method)


def fuse_legs(
    mode: str, bm25: list[Ranked], vector: list[Ranked], options: FusionOptions
) -> list[Fused]:
    """The final ranking for ``mode`` from both legs' candidates (one of them unused unless
    ``mode`` is hybrid)."""
    if mode == "bm25":
        return single_leg(bm25, "bm25")
    if mode == "vector":
        return single_leg(vector, "vector")
    return fuse(bm25, vector, options)


def reciprocal_rank_fusion(
    bm25: list[Ranked], vector: list[Ranked], k: int = 60, vector_weight: float = 0.5
) -> list[Fused]:
    """(Weighted) RRF: each leg adds ``2 * weight / (k + rank)``."""
    weights = (2 * (1 - vector_weight), 2 * vector_weight)
    return _combine(
        (bm25, [weights[0] / (k + r.rank) for r in bm25]),
        (vector, [weights[1] / (k + r.rank) for r in vector]),
    )


def normalized_fusion(
    bm25: list[Ranked], vector: list[Ranked], vector_weight: float, method: FusionMethod
) -> list[Fused]:
    """Convex combination of per-leg normalized scores; a leg that missed a passage adds its
    lowest normalized value (0 for min-max)."""
    return _combine(
        (bm25, _normalized_parts(bm25, method, 1 - vector_weight)),
        (vector, _normalized_parts(vector, method, vector_weight)),
    )


def _normalized_parts(ranked: list[Ranked], method: FusionMethod, weight: float) -> list[float]:
    """What each of a leg's candidates adds: ``weight`` times its normalized score above the
    value normalization gives the leg's worst candidate."""
    scores = [r.score for r in ranked]
    if not scores:
        return []
    if method == "zscore":
        mean = sum(scores) / len(scores)
        spread = math.sqrt(sum((s - mean) ** 2 for s in scores) / len(scores)) or 1.0
        floor = (min(scores) - mean) / spread
        return [weight * ((s - mean) / spread - floor) for s in scores]
    low, high = min(scores), max(scores)
    span = (high - low) or 1.0
    return [weight * ((s - low) / span) for s in scores]


def _combine(
    bm25: tuple[list[Ranked], list[float]], vector: tuple[list[Ranked], list[float]]
) -> list[Fused]:
    """One ranking of both legs' candidates, each with what it added to the fused score."""
    found: dict[int, list[Any]] = {}  # id -> [bm25 Ranked, vector Ranked, bm25 part, vector part]
    for ranked, part in zip(*bm25, strict=True):
        found[ranked.passage_id] = [ranked, None, part, 0.0]
    for ranked, part in zip(*vector, strict=True):
        entry = found.get(ranked.passage_id)
        if entry is None:
            found[ranked.passage_id] = [None, ranked, 0.0, part]
        else:
            entry[1], entry[3] = ranked, part
    fused = [
        Fused(pid, lexical + semantic, by_bm25, by_vector, (lexical, semantic))
        for pid, (by_bm25, by_vector, lexical, semantic) in found.items()
    ]
    return sorted(fused, key=_order)


def single_leg(ranked: list[Ranked], leg: str) -> list[Fused]:
    """One leg's ranking as fused results carrying that leg's raw score."""
    return [
        Fused(
            r.passage_id,
            r.score,
            r if leg == "bm25" else None,
            r if leg == "vector" else None,
        )
        for r in ranked
    ]


def _order(item: Fused) -> tuple[float, int, int]:
    lexical, semantic = item.bm25, item.vector
    if lexical is None:
        best_rank = semantic.rank if semantic is not None else 0
    elif semantic is None:
        best_rank = lexical.rank
    else:
        best_rank = min(lexical.rank, semantic.rank)
    return (-item.score, best_rank, item.passage_id)


def cap_per_group(
    items: list[Fused], group_of: Callable[[int], str], per_group: int | None
) -> list[Fused]:
    """Keep at most ``per_group`` items of each group, preserving order (None: no cap)."""
    if per_group is None:
        return items
    seen: dict[str, int] = {}
    kept = []
    for item in items:
        group = group_of(item.passage_id)
        seen[group] = seen.get(group, 0) + 1
        if seen[group] <= per_group:
            kept.append(item)
    return kept


def aggregate_documents(
    items: list[Fused],
    doc_of: Callable[[int], str],
    method: Aggregation = "max",
    decay: float = 0.3,
    top: int = 3,
) -> list[tuple[str, float]]:
    """Documents ranked from their passages: the best passage, or a decayed sum of the top
    ``top`` passages (``s1 + decay * s2 + decay**2 * s3``). ``items`` must be sorted."""
    per_doc: dict[str, list[float]] = {}
    for item in items:
        per_doc.setdefault(doc_of(item.passage_id), []).append(item.score)
    scored = []
    for position, (doc, scores) in enumerate(per_doc.items()):
        if method == "decay":
            score = sum(s * decay**i for i, s in enumerate(scores[:top]))
        else:
            score = scores[0]
        scored.append((doc, score, position))
    scored.sort(key=lambda entry: (-entry[1], entry[2]))
    return [(doc, score) for doc, score, _ in scored]


_FUSION_SETTINGS = {
    "fusion": "method",
    "rrf_k": "rrf_k",
    "vector_weight": "vector_weight",
    "candidates": "candidates",
    "aggregate": "aggregate",
    "decay": "decay",
}


def resolve_fusion(settings: Settings, tuning: dict[str, Any] | None) -> FusionOptions:
    """Fusion options: what ``tune`` stored for the index replaces the defaults, and settings
    given explicitly (``SEARCHKIT_FUSION``, ``SEARCHKIT_VECTOR_WEIGHT``, ...) win over both."""
    values = {option: getattr(settings, name) for name, option in _FUSION_SETTINGS.items()}
    if tuning is not None:
        values.update(tuning.get("fusion", {}))
        values.update(
            {
                option: getattr(settings, name)
                for name, option in _FUSION_SETTINGS.items()
                if name in settings.model_fields_set
            }
        )
    try:
        return FusionOptions(**values)
    except TypeError:
        raise IndexCorruptError(
            "the stored fusion settings are unreadable; run tune again"
        ) from None
