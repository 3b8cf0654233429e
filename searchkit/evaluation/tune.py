"""Fusion tuning on judged queries: measure each choice, bootstrap its gain, choose, store.

Both legs are searched once per query at the deepest candidate depth; every fusion choice is
then a pure function over those cached lists, so a grid of dozens of choices costs seconds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..build.builder import Progress, SilentProgress, build_index
from ..choices import Mode
from ..config import Settings
from ..search.engine import SearchEngine
from ..search.fusion import FusionOptions
from ..storage.store import Store, has_index
from .evaluate import (
    RUN_DEPTH,
    BeirDataset,
    Run,
    encode_queries,
    open_judged_index,
    per_query,
    run_entry,
)

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from ..search.reader import Legs

LEGS: tuple[Mode, ...] = ("bm25", "vector")
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
    """Both legs' candidates for every judged query, searched once, and their documents."""

    def __init__(
        self,
        engine: SearchEngine,
        dataset: BeirDataset,
        vectors: NDArray[np.float32],
        progress: Progress,
    ) -> None:
        self.engine = engine
        self.legs: dict[str, Legs] = {}
        self.owners: dict[str, Callable[[int], str]] = {}
        progress.stage("searching both legs", len(dataset.queries))
        for i, (qid, text) in enumerate(dataset.queries.items()):
            self.legs[qid] = engine.legs(text, max(DEPTHS), vectors[i])
            self.owners[qid] = engine.documents_of(self.legs[qid])
            progress.advance()

    def run(self, mode: Mode, options: FusionOptions) -> Run:
        """The run of one choice, ranked exactly as the engine ranks documents."""
        return {
            qid: run_entry(
                qid,
                self.engine.documents_from_legs(mode, legs, options, RUN_DEPTH, self.owners[qid]),
            )
            for qid, legs in self.legs.items()
        }


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
        mode: Mode = "hybrid" if options is not None else name  # type: ignore[assignment]
        values = per_query(dataset.qrels, cache.run(mode, options or FusionOptions()))
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
    from scipy.stats import bootstrap  # scipy is slow to import: only tune needs it

    deltas = np.array([choice[q] - baseline[q] for q in sorted(qids)])
    if not len(deltas):
        return Gain(0.0, 0.0, 0.0)
    mean = float(deltas.mean())
    if np.ptp(deltas) == 0:  # every resample has the same mean (scipy answers NaN here)
        return Gain(mean, mean, mean)
    interval = bootstrap(
        (deltas,),
        np.mean,
        n_resamples=BOOTSTRAP_SAMPLES,
        method="percentile",
        random_state=np.random.default_rng(seed),
    ).confidence_interval
    return Gain(mean, float(interval.low), float(interval.high))


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
    engine = open_judged_index(dataset, index_home, settings)
    report = tune(engine, dataset, progress)
    stored = chosen_options(report)
    Store(engine.home).write_tuning(
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
