"""Relevance section of the benchmark harness: every mode and fusion option on a BEIR split,
plus the cost of semantic highlighting. Uses the same code path as `searchkit eval`."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path

from searchkit.config import Settings
from searchkit.evaluation.evaluate import (
    encode_queries,
    load_beir,
    open_eval_engine,
    run_queries,
    score,
)
from searchkit.search.fusion import FusionOptions


@dataclass
class RelevanceRow:
    name: str
    ndcg: float
    recall: float
    mrr: float
    command: str


def variants(dataset_arg: str, split: str) -> list[tuple[str, str, FusionOptions, str]]:
    """(name, mode, fusion options, equivalent CLI command) for each row."""
    base = FusionOptions()
    cli = f"searchkit eval {dataset_arg} --split {split}"
    rows = [
        ("bm25", "bm25", base, f"{cli} --mode bm25"),
        ("vector", "vector", base, f"{cli} --mode vector"),
        ("hybrid (default: zscore, learned w, 300/leg)", "hybrid", base, f"{cli} --mode hybrid"),
    ]
    for k in (10, 60):
        options = replace(base, method="rrf", rrf_k=k)
        rows.append(
            (f"hybrid rrf k={k}", "hybrid", options, f"{cli} -m hybrid --fusion rrf --rrf-k {k}")
        )
    for method in ("minmax", "zscore"):
        for weight in (0.3, 0.5, 0.7):
            options = replace(base, method=method, vector_weight=weight)
            command = f"{cli} -m hybrid --fusion {method} --vector-weight {weight}"
            rows.append((f"hybrid {method} w={weight}", "hybrid", options, command))
    for candidates in (100, 1000):
        options = replace(base, candidates=candidates)
        command = f"{cli} -m hybrid --candidates {candidates}"
        rows.append((f"hybrid, {candidates} candidates/leg", "hybrid", options, command))
    decayed = replace(base, aggregate="decay")
    rows.append(
        (
            "hybrid, documents by decayed sum (0.3)",
            "hybrid",
            decayed,
            f"{cli} -m hybrid --aggregate decay",
        )
    )
    return rows


def relevance_rows(
    dataset_dir: Path, dataset_arg: str, split: str, index_home: Path
) -> list[RelevanceRow]:
    dataset = load_beir(dataset_dir, split)
    engine = open_eval_engine(dataset, index_home, Settings(index_dir=index_home))
    vectors = encode_queries(engine, dataset)
    rows = []
    for name, mode, options, command in variants(dataset_arg, split):
        run, _ = run_queries(engine, dataset, mode, fusion=options, query_vectors=vectors)  # type: ignore[arg-type]
        metrics = score(dataset.qrels, run)
        row = RelevanceRow(
            name, metrics["ndcg@10"], metrics["recall@100"], metrics["mrr@10"], command
        )
        print(f"{name:<48} nDCG@10 {row.ndcg:.4f}  R@100 {row.recall:.4f}  MRR@10 {row.mrr:.4f}")
        rows.append(row)
    return rows


def explain_cost(
    dataset_dir: Path, split: str, index_home: Path, queries: int = 100
) -> dict[str, float]:
    """Median hybrid query latency at k=10 with and without semantic highlights (in process)."""
    dataset = load_beir(dataset_dir, split)
    # No query cache: the second run of each text would find its vector there.
    settings = Settings(index_dir=index_home, query_cache=0)
    engine = open_eval_engine(dataset, index_home, settings)
    texts = list(dataset.queries.values())[:queries]
    engine.query(texts[0])  # load the model outside the timings
    timings: dict[str, list[float]] = {"plain": [], "explain": []}
    for text in texts:  # interleaved, so both see the same machine state
        for label, explain in (("plain", False), ("explain", True)):
            started = time.perf_counter()
            engine.query(text, k=10, explain=explain)
            timings[label].append((time.perf_counter() - started) * 1000)
    return {label: statistics.median(values) for label, values in timings.items()}
