"""Relevance evaluation on BEIR-format datasets: load, build (cached), run, score, write runs.

Ranking metrics come from ir-measures (backed by pytrec_eval); only the calibration of hits'
relevance (``ece`` and ``brier``), which ir-measures does not measure, is computed here.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from statistics import mean
from typing import TYPE_CHECKING

import ir_measures
from ir_measures import RR, R, nDCG

from ..build.builder import Progress, SilentProgress, build_index
from ..build.selfcheck import VERSION as CHECKED
from ..choices import Mode
from ..config import Settings
from ..embed import Encoder, onnx_export, passage_backend
from ..errors import IndexCorruptError, SourceError
from ..search.engine import SearchEngine
from ..search.fusion import FusionOptions
from ..storage.store import has_index

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

MEASURES = {"ndcg@10": nDCG @ 10, "recall@100": R @ 100, "mrr@10": RR @ 10}
RUN_DEPTH = 100
Run = dict[str, list[tuple[str, float]]]
Relevance = dict[str, dict[str, float]]  # query -> document -> relevance
CALIBRATION_DEPTH = 10  # ``ece`` and ``brier`` judge each query's top 10
CALIBRATION_BINS = 10


@dataclass(frozen=True)
class BeirDataset:
    """A BEIR folder: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``."""

    root: Path
    split: str
    corpus: Path
    queries: dict[str, str]  # only the queries judged in this split
    qrels: dict[str, dict[str, int]]


def load_beir(root: Path, split: str) -> BeirDataset:
    root = Path(root)
    corpus, queries_path = root / "corpus.jsonl", root / "queries.jsonl"
    qrels_path = root / "qrels" / f"{split}.tsv"
    for required in (corpus, queries_path):
        if not required.is_file():
            raise SourceError(f"{root} is not a BEIR folder: {required.name} is missing")
    if not qrels_path.is_file():
        found = sorted(p.stem for p in (root / "qrels").glob("*.tsv"))
        raise SourceError(
            f"no qrels for split {split!r} in {root}/qrels (found: {', '.join(found) or 'none'}); "
            "choose one with --split"
        )
    qrels = _read_qrels(qrels_path)
    queries = _read_queries(queries_path, wanted=qrels.keys())
    missing = qrels.keys() - queries.keys()
    if missing:
        raise SourceError(f"{len(missing)} judged queries are not in {queries_path.name}")
    return BeirDataset(root, split, corpus, queries, qrels)


def _read_queries(path: Path, wanted: Iterable[str]) -> dict[str, str]:
    """The text of each ``wanted`` query in a BEIR ``queries.jsonl``."""
    wanted = set(wanted)
    queries: dict[str, str] = {}
    try:
        # The file's own lines: str.splitlines would also split at U+2028 inside a JSON string.
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    _add_query(queries, line, wanted, f"{path}: line {number}")
    except UnicodeDecodeError:
        raise SourceError(f"{path} is not UTF-8 text") from None
    return queries


def _add_query(queries: dict[str, str], line: str, wanted: set[str], where: str) -> None:
    try:
        record = json.loads(line)
        query_id = str(record["_id"])
        if query_id in wanted:
            queries[query_id] = str(record["text"])
    except (ValueError, KeyError, TypeError):  # not JSON, not an object, a field missing
        raise SourceError(
            f"{where} is not a BEIR query (a JSON object with _id and text)"
        ) from None


def _read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            for row in csv.reader(handle, delimiter="\t"):
                if len(row) < 3 or not row[2].lstrip("-").isdigit():
                    continue  # the header, or a blank line
                qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    except UnicodeDecodeError:
        raise SourceError(f"{path} is not UTF-8 text") from None
    return qrels


def cached_index_dir(index_home: Path, dataset: BeirDataset, settings: Settings) -> Path:
    """Where the evaluation index for this corpus and these build settings lives."""
    with dataset.corpus.open("rb") as handle:
        digest = hashlib.file_digest(handle, "sha256")
    # Generations measure their legs (and so learn the fusion weights) as the self-check says.
    build: list[object] = [settings.model, settings.min_passage_words, f"self-check-{CHECKED}"]
    backend = passage_backend(settings)
    if backend != "torch-fp32":  # the reference keeps the key it had before backends existed
        build.append(backend)
    if backend.startswith("onnx"):  # passages encoded by a graph exported the current way
        build.append(f"export-{onnx_export()}")
    if settings.language is not None:  # unset: each document's own, as before languages
        build.append(f"language-{settings.language}")
    digest.update(json.dumps(build).encode())
    return Path(index_home) / "eval-cache" / f"{dataset.root.name}-{digest.hexdigest()[:16]}"


def open_eval_engine(
    dataset: BeirDataset,
    index_home: Path,
    settings: Settings,
    encoder: Encoder | None = None,
    progress: Progress | None = None,
) -> SearchEngine:
    """An engine over the dataset's corpus, building the cached index first when needed."""
    index = cached_index_dir(index_home, dataset, settings)
    if has_index(index):
        try:
            return SearchEngine.open(index, settings, encoder)
        except IndexCorruptError:
            pass  # an older format or a damaged cache: build it again
    build_index([dataset.corpus], index, settings, encoder, progress, allow_shrink=True)
    return SearchEngine.open(index, settings, encoder)


def open_judged_index(dataset: BeirDataset, home: Path, settings: Settings) -> SearchEngine:
    """The index at ``home`` as it is (local or sharded), refused when it holds none of the
    documents the dataset judges (the wrong index, or the corpus not indexed yet)."""
    engine = SearchEngine.open(home, settings)
    judged = {doc for docs in dataset.qrels.values() for doc in docs}
    if engine.known_documents(judged) == 0:
        raise SourceError(
            f"none of the documents judged in {dataset.root} are in the index at {home}; "
            f"index {dataset.corpus} there first"
        )
    return engine


def run_queries(
    engine: SearchEngine,
    dataset: BeirDataset,
    mode: Mode,
    *,
    fusion: FusionOptions | None = None,
    query_vectors: NDArray[np.float32] | None = None,
    progress: Progress | None = None,
) -> tuple[Run, Relevance]:
    """The top documents of every judged query, in ``dataset.queries`` order, and the
    relevance the engine gave each of them."""
    progress = progress or SilentProgress()
    progress.stage(f"querying ({mode})", len(dataset.queries))
    run: Run = {}
    relevance: Relevance = {}
    for i, (qid, text) in enumerate(dataset.queries.items()):
        vector = query_vectors[i] if query_vectors is not None and mode != "bm25" else None
        ranked = engine.rank_documents(text, mode, RUN_DEPTH, fusion=fusion, query_vector=vector)
        run[qid] = run_entry(qid, ranked.ranked)
        relevance[qid] = ranked.relevance
        progress.advance()
    return run, relevance


def run_entry(qid: str, ranked: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """A query's ranked documents as a run records them: never the query's own document
    (BEIR sets such as ArguAna and Quora judge queries that are documents of the corpus)."""
    return [(doc, score) for doc, score in ranked if doc != qid]


def encode_queries(engine: SearchEngine, dataset: BeirDataset) -> NDArray[np.float32]:
    """All judged queries encoded in one batch (rows in ``dataset.queries`` order)."""
    return engine.query_encoder.encoder.encode(list(dataset.queries.values()))


def score(qrels: dict[str, dict[str, int]], run: Run) -> dict[str, float]:
    """nDCG@10, Recall@100 and MRR@10, averaged over the judged queries."""
    aggregate = ir_measures.calc_aggregate(MEASURES.values(), qrels, _as_dict(run))
    return {name: float(aggregate[measure]) for name, measure in MEASURES.items()}


def calibration_error(qrels: dict[str, dict[str, int]], run: Run, relevance: Relevance) -> float:
    """Expected calibration error of ``relevance`` over each judged query's top 10 documents:
    in 10 equal-width bins, how far the mean relevance lies from the share judged relevant,
    weighted by the bin's size."""
    bins: list[list[tuple[float, int]]] = [[] for _ in range(CALIBRATION_BINS)]
    for value, judged in _judged_top(qrels, run, relevance):
        position = min(int(value * CALIBRATION_BINS), CALIBRATION_BINS - 1)
        bins[position].append((value, judged))
    total = sum(len(entries) for entries in bins)
    if not total:
        return 0.0
    return sum(
        len(entries) / total * abs(mean(v for v, _ in entries) - mean(r for _, r in entries))
        for entries in bins
        if entries
    )


def brier_score(qrels: dict[str, dict[str, int]], run: Run, relevance: Relevance) -> float:
    """The mean squared gap between ``relevance`` and the judgment (1 or 0) over each judged
    query's top 10 documents: a proper score, which binning cannot flatter, beside ``ece``."""
    pairs = _judged_top(qrels, run, relevance)
    return mean((value - judged) ** 2 for value, judged in pairs) if pairs else 0.0


def _judged_top(
    qrels: dict[str, dict[str, int]], run: Run, relevance: Relevance
) -> list[tuple[float, int]]:
    """(relevance, judged relevant 1 or 0) for each judged query's top 10 documents."""
    return [
        (relevance[qid][doc], int(qrels[qid].get(doc, 0) > 0))
        for qid, ranked in run.items()
        if qid in qrels
        for doc, _ in ranked[:CALIBRATION_DEPTH]
    ]


def per_query(
    qrels: dict[str, dict[str, int]], run: Run, name: str = "ndcg@10"
) -> dict[str, float]:
    """One measure per query (queries the run misses count as 0)."""
    values = dict.fromkeys(qrels, 0.0)
    for metric in ir_measures.iter_calc([MEASURES[name]], qrels, _as_dict(run)):
        values[metric.query_id] = float(metric.value)
    return values


def _as_dict(run: Run) -> dict[str, dict[str, float]]:
    return {qid: dict(ranked) for qid, ranked in run.items()}


def write_trec(run: Run, path: Path, tag: str) -> None:
    """TREC format: ``qid Q0 docid rank score tag``, best first."""
    lines = (
        f"{qid} Q0 {doc} {rank} {value:.6f} {tag}\n"
        for qid, ranked in run.items()
        for rank, (doc, value) in enumerate(ranked, start=1)
    )
    path.write_text("".join(lines), encoding="utf-8")


def evaluate(
    dataset: BeirDataset,
    engine: SearchEngine,
    modes: Iterable[Mode],
    *,
    fusion: FusionOptions | None = None,
    run_dir: Path | None = None,
    progress: Progress | None = None,
) -> dict[str, dict[str, float]]:
    """Metrics per mode (with ``ece`` and ``brier``, how well hits' relevance is calibrated); with
    ``run_dir``, one TREC run file per mode (``<mode>.trec``)."""
    modes = list(modes)
    vectors = encode_queries(engine, dataset) if set(modes) - {"bm25"} else None
    results: dict[str, dict[str, float]] = {}
    for mode in modes:
        run, relevance = run_queries(
            engine, dataset, mode, fusion=fusion, query_vectors=vectors, progress=progress
        )
        results[mode] = score(dataset.qrels, run)
        results[mode]["ece"] = calibration_error(dataset.qrels, run, relevance)
        results[mode]["brier"] = brier_score(dataset.qrels, run, relevance)
        if run_dir is not None:
            run_dir.mkdir(parents=True, exist_ok=True)
            write_trec(run, run_dir / f"{mode}.trec", f"searchkit-{mode}")
    return results
