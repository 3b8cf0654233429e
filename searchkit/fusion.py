"""Rank fusion over per-leg candidate lists. Pure functions over ``Ranked`` records."""

from __future__ import annotations

from collections.abc import Callable

from .records import Fused, Ranked


def reciprocal_rank_fusion(bm25: list[Ranked], vector: list[Ranked], k: int = 60) -> list[Fused]:
    """RRF: each leg adds ``1 / (k + rank)``; ties go to the better best rank, then lower id."""
    by_id_bm25 = {r.passage_id: r for r in bm25}
    by_id_vector = {r.passage_id: r for r in vector}
    fused = []
    for pid in by_id_bm25.keys() | by_id_vector.keys():
        lexical, semantic = by_id_bm25.get(pid), by_id_vector.get(pid)
        score = sum(1.0 / (k + leg.rank) for leg in (lexical, semantic) if leg is not None)
        fused.append(Fused(pid, score, lexical, semantic))
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
    best_rank = min(leg.rank for leg in (item.bm25, item.vector) if leg is not None)
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
