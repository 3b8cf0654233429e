"""Rank fusion over per-leg candidate lists, and passage-to-document aggregation.

Pure functions over ``Ranked`` records. Every ordering breaks ties the same way: higher score,
then the better best rank of either leg, then the lower passage id.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import chain
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from ..choices import Aggregation, FusionMethod
from ..config import Settings, default
from ..errors import IndexCorruptError
from ..records import Fused, Ranked

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    FloatArray = NDArray[np.float64]
    Parts = Sequence[float] | FloatArray  # what each of a leg's candidates adds

EQUAL_WEIGHT = 0.5  # the vector leg's share where nothing better is known


@dataclass(frozen=True)
class FusionOptions:
    """How the two legs become one ranking (defaults: those of ``Settings``).

    ``vector_weight`` is the vector leg's share (0 = BM25 only, 1 = vectors only; None: the
    index's learned share, which the engine fills in); at 0.5 RRF scores are the textbook
    ``1/(k+rank)`` sums. ``aggregate`` turns passages into documents:
    the best passage's score, or a sum of the top passages decayed by ``decay`` per place.
    """

    method: FusionMethod = default("fusion")  # noqa: RUF009 (a str, read once)
    rrf_k: int = default("rrf_k")
    vector_weight: float | None = default("vector_weight")
    candidates: int = default("candidates")
    aggregate: Aggregation = default("aggregate")  # noqa: RUF009 (a str, read once)
    decay: float = default("decay")


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
    """Weighted sum of per-leg normalized scores: each candidate adds its height above its
    leg's worst (a leg whose candidates all tie, its whole weight); a leg that missed a
    passage adds 0."""
    return _combine(
        (bm25, _normalized_parts(bm25, method, 1 - vector_weight)),
        (vector, _normalized_parts(vector, method, vector_weight)),
    )


def _normalized_parts(ranked: list[Ranked], method: FusionMethod, weight: float) -> FloatArray:
    """What each of a leg's candidates adds: ``weight`` times its normalized score above the
    value normalization gives the leg's worst candidate; where they all tie, ``weight``."""
    import numpy as np  # here: a bm25 query fuses nothing, and loads no numpy

    scores = np.fromiter(map(_SCORE, ranked), float, len(ranked))
    if not len(scores):
        return scores
    low, high = float(scores.min()), float(scores.max())
    scale = float(scores.std()) if method == "zscore" else high - low
    # One candidate, or all tied: each is the leg's best as much as its worst. A tie's float
    # std can come out a hair above 0, hence ``low == high``; the std of scores a few
    # subnormals apart rounds to 0, hence the scale (zscore's; minmax's is then low == high).
    if low == high or scale == 0.0:
        return np.full(len(scores), weight)
    parts: FloatArray = weight * ((scores - low) / scale)
    return parts


def _combine(bm25: tuple[list[Ranked], Parts], vector: tuple[list[Ranked], Parts]) -> list[Fused]:
    """One ranking of both legs' candidates, each with what it added to the fused score.

    A hybrid query fuses hundreds of candidates: the arithmetic and the ordering run in numpy
    over the union of both legs' passage ids, and Python builds only the records."""
    import numpy as np  # here: a bm25 query fuses nothing, and loads no numpy

    (lexical_leg, lexical_parts), (vector_leg, vector_parts) = bm25, vector
    ids, where = np.unique(
        np.fromiter(map(_PASSAGE_ID, chain(lexical_leg, vector_leg)), np.int64),
        return_inverse=True,
    )
    on_lexical, on_vector = where[: len(lexical_leg)], where[len(lexical_leg) :]
    parts = np.zeros((2, len(ids)))
    parts[0, on_lexical], parts[1, on_vector] = lexical_parts, vector_parts
    score = parts[0] + parts[1]
    # Where each passage sits in each leg's list: -1, the None after the list, where absent.
    found = np.full((2, len(ids)), -1, np.int64)
    found[0, on_lexical] = np.arange(len(lexical_leg))
    found[1, on_vector] = np.arange(len(vector_leg))
    ranks = np.full((2, len(ids)), np.iinfo(np.int64).max)  # absent: worse than any rank
    ranks[0, on_lexical] = np.fromiter(map(_RANK, lexical_leg), np.int64, len(on_lexical))
    ranks[1, on_vector] = np.fromiter(map(_RANK, vector_leg), np.int64, len(on_vector))
    best_rank = ranks.min(axis=0)
    order = np.lexsort((ids, best_rank, -score))
    lexical_of, vector_of = [*lexical_leg, None], [*vector_leg, None]
    columns = zip(
        ids[order].tolist(),
        score[order].tolist(),
        map(lexical_of.__getitem__, found[0, order].tolist()),
        map(vector_of.__getitem__, found[1, order].tolist()),
        zip(parts[0, order].tolist(), parts[1, order].tolist(), strict=True),
        strict=True,
    )
    return list(map(_new_fused, columns))


# Records read and built in C, field by field (``attrgetter``) and from their fields' tuples
# (``tuple.__new__``): a generator, or a named tuple's own constructor, runs Python for each
# of the hundreds of candidates a hybrid query fuses.
_PASSAGE_ID, _RANK, _SCORE = attrgetter("passage_id"), attrgetter("rank"), attrgetter("score")
_new_fused = partial(tuple.__new__, Fused)


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
