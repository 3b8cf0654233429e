"""Fusion tuning on judged queries: measure each choice, bootstrap its gain, choose, store.

Both legs are searched once per query at the deepest candidate depth; every fusion choice is
then a pure function over those cached lists, so a grid of dozens of choices costs seconds.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .build import Progress, SilentProgress, build_index, has_index
from .config import Settings
from .engine import SearchEngine
from .errors import SourceError
from .evaluate import RUN_DEPTH, BeirDataset, Run, encode_queries, per_query
from .fusion import FusionOptions, aggregate_documents, fuse, single_leg

if TYPE_CHECKING:
    from numpy.typing import NDArray

LEGS = ("bm25", "vector")
DEPTHS = (100, 300)
DECAYS = (0.1, 0.3, 0.5)
BOOTSTRAP_SAMPLES = 2000


@dataclass(frozen=True)
class Measured:
    """One choice's nDCG@10: overall, on the half it may be chosen on, and on the held-out half."""

    name: str
    options: FusionOptions | None  # None for a single leg
    ndcg: float
    tuning: float
    heldout: float


@dataclass(frozen=True)
class Gain:
    """Held-out gain of a choice over the best single leg, with a bootstrap 95% interval."""

    mean: float
    low: float
    high: float


@dataclass(frozen=True)
class TuneReport:
    measured: list[Measured]
    best_leg: Measured
    chosen: Measured
    gain: Gain
    fusion_helps: bool
    tuning_queries: int
    heldout_queries: int


class LegCache:
    """Both legs' candidates for every judged query, searched once."""

    def __init__(
        self,
        engine: SearchEngine,
        dataset: BeirDataset,
        vectors: NDArray[np.float32],
        progress: Progress,
    ) -> None:
        self.engine = engine
        self.legs = {}
        progress.stage("searching both legs", len(dataset.queries))
        for i, (qid, text) in enumerate(dataset.queries.items()):
            self.legs[qid] = engine.candidates(text, "hybrid", max(DEPTHS), query_vector=vectors[i])
            progress.advance()

    def run(self, options: FusionOptions | None, leg: str = "") -> Run:
        run: Run = {}
        for qid, (bm25, vector) in self.legs.items():
            if options is None:
                fused = single_leg(bm25 if leg == "bm25" else vector, leg)
                docs = aggregate_documents(fused, self.engine.document_of)
            else:
                depth = options.candidates
                fused = fuse(bm25[:depth], vector[:depth], options)
                docs = aggregate_documents(
                    fused, self.engine.document_of, options.aggregate, options.decay
                )
            run[qid] = [(doc, s) for doc, s in docs[:RUN_DEPTH] if doc != qid]
        return run


def fusion_grid(base: FusionOptions) -> list[tuple[str, FusionOptions]]:
    """The fusion choices ``tune`` compares."""
    grid = []
    for depth in DEPTHS:
        for k in (10, 30, 60):
            for weight in (0.3, 0.4, 0.5, 0.6, 0.7):
                options = replace(
                    base, method="rrf", rrf_k=k, vector_weight=weight, candidates=depth
                )
                grid.append((f"rrf k={k} w={weight} n={depth}", options))
        for method in ("minmax", "zscore"):
            for tenth in range(1, 10):
                options = replace(base, method=method, vector_weight=tenth / 10, candidates=depth)
                grid.append((f"{method} w={tenth / 10} n={depth}", options))
    return grid


def split_queries(qids: list[str]) -> tuple[set[str], set[str]]:
    """A fixed, seed-free half split by a hash of each query id: (tuning, held-out)."""
    tuning = {q for q in qids if int(hashlib.sha256(q.encode()).hexdigest(), 16) % 2 == 0}
    return tuning, set(qids) - tuning


def tune(
    engine: SearchEngine, dataset: BeirDataset, progress: Progress | None = None, seed: int = 0
) -> TuneReport:
    """Measure every fusion choice; choose on the tuning half, confirm on the held-out half."""
    progress = progress or SilentProgress()
    cache = LegCache(engine, dataset, encode_queries(engine, dataset), progress)
    tuning, heldout = split_queries(list(dataset.queries))
    per_choice: dict[str, dict[str, float]] = {}
    choices: list[tuple[str, FusionOptions | None]] = [(leg, None) for leg in LEGS]
    choices += fusion_grid(FusionOptions())
    progress.stage("measuring fusion choices", len(choices) + len(DECAYS))

    def measure(name: str, options: FusionOptions | None) -> Measured:
        values = per_query(dataset.qrels, cache.run(options, name))
        per_choice[name] = values
        progress.advance()
        return Measured(name, options, *_means(values, tuning, heldout))

    measured = [measure(name, options) for name, options in choices]
    best_fusion = max(measured[len(LEGS) :], key=lambda m: m.tuning)
    # Passage-to-document aggregation, tried on the best fusion found with the best passage.
    for decay in DECAYS:
        options = replace(best_fusion.options or FusionOptions(), aggregate="decay", decay=decay)
        measured.append(measure(f"{best_fusion.name} decay={decay}", options))
    best_leg = max(measured[: len(LEGS)], key=lambda m: m.tuning)
    chosen = max(measured[len(LEGS) :], key=lambda m: m.tuning)
    gain = bootstrap_gain(per_choice[chosen.name], per_choice[best_leg.name], heldout, seed)
    return TuneReport(measured, best_leg, chosen, gain, gain.low > 0, len(tuning), len(heldout))


def _means(values: dict[str, float], tuning: set[str], heldout: set[str]) -> tuple[float, ...]:
    def mean(qids: set[str]) -> float:
        return float(np.mean([values[q] for q in qids])) if qids else 0.0

    return mean(set(values)), mean(tuning), mean(heldout)


def bootstrap_gain(
    choice: dict[str, float], baseline: dict[str, float], qids: set[str], seed: int = 0
) -> Gain:
    """Mean per-query gain of ``choice`` over ``baseline`` and its bootstrap 95% interval."""
    ordered = sorted(qids)
    deltas = np.array([choice[q] - baseline[q] for q in ordered])
    if not len(deltas):
        return Gain(0.0, 0.0, 0.0)
    rng = np.random.default_rng(seed)
    samples = rng.integers(0, len(deltas), size=(BOOTSTRAP_SAMPLES, len(deltas)))
    means = deltas[samples].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return Gain(float(deltas.mean()), float(low), float(high))


def chosen_options(report: TuneReport) -> FusionOptions:
    """What to store: the chosen fusion, or the best single leg when fusion does not help."""
    if report.fusion_helps and report.chosen.options is not None:
        return report.chosen.options
    weight = 0.0 if report.best_leg.name == "bm25" else 1.0
    return FusionOptions(method="minmax", vector_weight=weight)


def tune_index(
    dataset: BeirDataset, index_home: Path, settings: Settings, progress: Progress | None = None
) -> tuple[TuneReport, FusionOptions]:
    """Tune fusion for the index at ``index_home`` on ``dataset``'s qrels and store the choice.

    An empty ``index_home`` is first built from the dataset's corpus.
    """
    if not has_index(index_home):
        build_index([dataset.corpus], index_home, settings, progress=progress)
    engine = SearchEngine.open(index_home, settings)
    judged = {doc for docs in dataset.qrels.values() for doc in docs}
    if engine.known_documents(judged) == 0:
        raise SourceError(
            f"none of the documents judged in {dataset.root} are in the index at {index_home}; "
            f"index {dataset.corpus} there first"
        )
    report = tune(engine, dataset, progress)
    stored = chosen_options(report)
    engine.store.write_tuning(
        {
            "fusion": asdict(stored),
            "tuned_on": {
                "dataset": str(dataset.root),
                "split": dataset.split,
                "generation": engine.generation,
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
            },
            "chosen": report.chosen.name,
            "fusion_helps": report.fusion_helps,
            "heldout_gain": asdict(report.gain),
        }
    )
    return report, stored
