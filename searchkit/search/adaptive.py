"""Adaptive fusion: how far hybrid search trusts each leg of an index nobody judged.

Each generation measures at build time how well each leg finds a passage from one of its own
sentences, held out (``build.selfcheck``). That test tells a leg that works from one that does
not: an English model on a script it never saw finds almost none of its passages. It does not
tell which of two working legs real queries favour: on CISI the held-out sentences favour BM25
while the collection's own queries favour the vectors (benchmarks/RESULTS.md). So the legs
share the score evenly while each finds at least half as many of its passages as the other
(by mean reciprocal rank), and a leg that falls below that keeps a say in proportion: a quarter
of the other's effectiveness, a quarter of the weight; none, none.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..records import Fused
from .fusion import EQUAL_WEIGHT, FusionOptions

ENOUGH = 2  # a leg keeps its full say while it finds at least 1/ENOUGH of what the other does


def leg_effectiveness(manifest: dict[str, Any]) -> dict[str, float] | None:
    """Each leg's mean reciprocal rank on held-out sentences: from a generation's manifest, or
    for a sharded home's cluster manifest, averaged over its shards by sample size."""
    entries = manifest.get("shards", [manifest])
    checks = [entry["self_check"] for entry in entries if entry.get("self_check")]
    samples = sum(check["samples"] for check in checks)
    if not samples:
        return None
    return {
        leg: sum(check["mrr"][leg] * check["samples"] for check in checks) / samples
        for leg in ("bm25", "vector")
    }


def learned_vector_weight(effectiveness: dict[str, float] | None) -> float | None:
    """The vector leg's share of the fused score, or None without a measurement."""
    if effectiveness is None:
        return None
    bm25, vector = effectiveness["bm25"], effectiveness["vector"]
    if max(bm25, vector) <= 0:
        return None
    if vector < bm25:
        return round(EQUAL_WEIGHT * min(1.0, ENOUGH * vector / bm25), 4)
    return round(1 - EQUAL_WEIGHT * min(1.0, ENOUGH * bm25 / vector), 4)


def with_weight(fusion: FusionOptions, learned: float | None) -> FusionOptions:
    """``fusion`` with a concrete vector weight: its own when set (by tune, a setting or the
    caller), else the learned one, else an even split (an index without a self-check)."""
    if fusion.vector_weight is not None:
        return fusion
    return replace(fusion, vector_weight=EQUAL_WEIGHT if learned is None else learned)


def weight_source(tuned: bool, explicit: bool, learned: float | None) -> str:
    """Where ``fusion.vector_weight`` came from, for ``explain``."""
    if explicit:
        return "setting"
    if tuned:
        return "tune"
    return "learned" if learned is not None else "even"


def query_explanation(
    fusion: FusionOptions, source: str, effectiveness: dict[str, float] | None
) -> dict[str, Any]:
    """What ``explain`` says about a query's fusion: the method, the weights, and why."""
    weight = EQUAL_WEIGHT if fusion.vector_weight is None else fusion.vector_weight
    reasons = {
        "setting": "set by SEARCHKIT_VECTOR_WEIGHT or --vector-weight",
        "tune": "chosen by 'searchkit tune' on judged queries",
        "request": "given with this request",
        "even": "an even split: this index measured no self-check (too few passages, or built "
        "before self-checks existed)",
    }
    why = reasons.get(source, "")
    if source == "learned" and effectiveness is not None:
        why = (
            "learned when the index was built: on sentences held out of its own passages, "
            f"BM25 found the passage at mean reciprocal rank {effectiveness['bm25']:.3f} and "
            f"the vector leg at {effectiveness['vector']:.3f}; legs that both find at least half "
            "of what the other finds share evenly, a weaker leg keeps a say in proportion"
        )
    return {
        "method": fusion.method,
        "weights": {"bm25": round(1 - weight, 4), "vector": round(weight, 4)},
        "weights_from": source,
        "why": why,
        "candidates": fusion.candidates,
        "self_check": effectiveness,
    }


def leg_parts(item: Fused) -> dict[str, Any]:
    """What ``explain`` says about one hit: each leg's rank and what it added to the score."""
    return {
        leg: None if ranked is None else {"rank": ranked.rank, "added": round(part, 4)}
        for leg, ranked, part in (
            ("bm25", item.bm25, item.parts[0]),
            ("vector", item.vector, item.parts[1]),
        )
    }
