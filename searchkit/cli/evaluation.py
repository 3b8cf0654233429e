"""``searchkit eval`` and ``searchkit tune``: relevance on BEIR data. Registered by ``cli.app``."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from ..choices import MODES, Mode
from ..search.fusion import FusionOptions
from .console import stdout, terminal_progress
from .options import (
    AggregateOption,
    BackendOption,
    CandidatesOption,
    FusionOption,
    JsonOption,
    RrfKOption,
    VectorWeightOption,
    describe_fusion,
    known_modes,
    make_settings,
)

if TYPE_CHECKING:
    from rich.table import Table

    from ..evaluation.tune import TuneReport

METRIC_NAMES = ("ndcg@10", "recall@100", "mrr@10", "ece", "brier")
TOP_CHOICES_SHOWN = 12


def eval_command(
    dataset_dir: Annotated[
        Path, typer.Argument(help="A BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv.")
    ],
    split: Annotated[str, typer.Option("--split", help="Which qrels file to score.")] = "test",
    modes: Annotated[
        list[str] | None,
        typer.Option(
            "--mode",
            "-m",
            callback=known_modes,
            metavar="<" + "|".join(MODES) + ">",
            help=f"Mode to evaluate ({', '.join(MODES)}); repeat for several (default: all).",
        ),
    ] = None,
    run_dir: Annotated[
        Path | None,
        typer.Option("--run-dir", help="Write <mode>.trec run files (top 100 documents) here."),
    ] = None,
    json_output: JsonOption = False,
    index: Annotated[
        Path | None,
        typer.Option("--index", help="Index home; the evaluation index is cached under it."),
    ] = None,
    fusion: FusionOption = None,
    vector_weight: VectorWeightOption = None,
    rrf_k: RrfKOption = None,
    candidates: CandidatesOption = None,
    aggregate: AggregateOption = None,
    backend: BackendOption = None,
    as_built: Annotated[
        bool,
        typer.Option(
            "--as-built",
            help="Score the index at --index as it is (local or sharded) instead of a cached "
            "index of DATASET_DIR's corpus: a deployment measured where it runs.",
        ),
    ] = False,
) -> None:
    """Score searchkit on a BEIR dataset: nDCG@10, Recall@100 and MRR@10 per mode, and how well
    hits' relevance matches the judgments of each top 10 (ece, and the Brier score)."""
    from ..evaluation.evaluate import evaluate, load_beir, open_eval_engine, open_judged_index

    settings = make_settings(
        index,
        backend=backend,
        fusion=fusion,
        vector_weight=vector_weight,
        rrf_k=rrf_k,
        candidates=candidates,
        aggregate=aggregate,
    )
    dataset = load_beir(dataset_dir, split)
    progress = None if json_output else terminal_progress()
    try:
        if as_built:
            engine = open_judged_index(dataset, settings.index_dir, settings)
        else:
            engine = open_eval_engine(dataset, settings.index_dir, settings, progress=progress)
        chosen = cast(list[Mode], modes) or ["bm25", "vector", "hybrid"]
        results = evaluate(dataset, engine, chosen, run_dir=run_dir, progress=progress)
    finally:
        if progress is not None:
            progress.close()
    if json_output:
        print(json.dumps(results))
        return
    stdout.print(_table(results, f"{dataset.root.name} ({split}, {len(dataset.queries)} queries)"))
    stdout.print(f"[dim]fusion: {describe_fusion(engine.fusion)} · index {engine.home}[/dim]")


def _table(results: dict[str, dict[str, float]], title: str) -> Table:
    from rich.table import Table  # only eval and tune print tables: keep it off query start

    table = Table(title=title, title_justify="left")
    table.add_column("mode")
    for name in METRIC_NAMES:
        table.add_column(name, justify="right")
    for mode, metrics in results.items():
        table.add_row(mode, *(f"{metrics[name]:.4f}" for name in METRIC_NAMES))
    return table


def tune_command(
    dataset_dir: Annotated[
        Path, typer.Argument(help="A BEIR folder whose qrels judge documents of the index.")
    ],
    index: Annotated[
        Path | None,
        typer.Option(
            "--index",
            help="The index to tune (default ./index); built from DATASET_DIR's corpus if empty.",
        ),
    ] = None,
    split: Annotated[str, typer.Option("--split", help="Which qrels file to tune on.")] = "train",
    json_output: JsonOption = False,
) -> None:
    """Measure fusion choices on your qrels, then store the best with the index."""
    from ..evaluation.evaluate import load_beir
    from ..evaluation.tune import tune_index

    settings = make_settings(index)
    progress = None if json_output else terminal_progress()
    try:
        report, stored = tune_index(
            load_beir(dataset_dir, split), settings.index_dir, settings, progress
        )
    finally:
        if progress is not None:
            progress.close()
    if json_output:
        print(json.dumps({"report": asdict(report), "stored": asdict(stored)}))
        return
    _print_tuning(report, stored, settings.index_dir)


def _print_tuning(report: TuneReport, stored: FusionOptions, index: Path) -> None:
    from rich.table import Table

    table = Table(
        title=(
            f"nDCG@10: chosen on {report.tuning_queries} queries, "
            f"confirmed on {report.heldout_queries} held out"
        ),
        title_justify="left",
    )
    for column in ("choice", "all", "tuning half", "held-out half"):
        table.add_column(column, justify="left" if column == "choice" else "right")
    best_first = sorted(report.measured, key=lambda m: -m.tuning)
    shown = [m for m in best_first if m.options is None] + [
        m for m in best_first if m.options is not None
    ][:TOP_CHOICES_SHOWN]
    for m in shown:
        style = "bold" if m is report.chosen else ""
        table.add_row(m.name, f"{m.ndcg:.4f}", f"{m.tuning:.4f}", f"{m.heldout:.4f}", style=style)
    stdout.print(table)
    gain = report.gain
    stdout.print(
        f"{report.chosen.name} vs best single leg ({report.best_leg.name}) on the held-out half: "
        f"{gain.mean:+.4f} nDCG@10, 95% bootstrap interval [{gain.low:+.4f}, {gain.high:+.4f}]"
    )
    if report.fusion_helps:
        stdout.print(f"Stored for {index}: {describe_fusion(stored)}")
    else:
        stdout.print(
            f"No fusion gains clearly over {report.best_leg.name} alone: stored "
            f"{report.best_leg.name} only for {index}."
        )
