"""Evaluation and tuning on a tiny BEIR dataset, through the real model, tantivy and FAISS."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import ir_measures
import pytest
from typer.testing import CliRunner

from searchkit import SearchEngine
from searchkit.cli import app
from searchkit.config import Settings
from searchkit.embed import Encoder
from searchkit.errors import SourceError
from searchkit.evaluation.evaluate import (
    brier_score,
    cached_index_dir,
    calibration_error,
    evaluate,
    load_beir,
    open_eval_engine,
    score,
)
from searchkit.evaluation.tune import (
    Gain,
    Measured,
    TuneReport,
    bootstrap_gain,
    chosen_options,
    split_queries,
)
from searchkit.search.fusion import FusionOptions

CORPUS = [
    ("d1", "Sourdough", "A sourdough starter is a culture of wild yeast used to leaven bread."),
    ("d2", "Engine oil", "Replace the motor oil of your automobile every five thousand miles."),
    ("d3", "Tomatoes", "Tomato plants need six hours of direct sun and deep watering."),
    ("d4", "Mars rovers", "The Perseverance rover collects rock cores in Jezero crater on Mars."),
    ("d5", "Coffee", "Espresso is brewed by forcing hot water through finely ground coffee."),
    ("d6", "Chess", "The Sicilian Defence is a popular reply to the king's pawn opening."),
]
QUERIES = {
    "q1": "sourdough starter yeast",
    "q2": "swap the grease in my car",
    "q3": "robot exploring the red planet",
    "q4": "espresso coffee",
}
QRELS = {"q1": "d1", "q2": "d2", "q3": "d4", "q4": "d5"}


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("beir") / "tiny"
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": i, "title": t, "text": x}) + "\n" for i, t, x in CORPUS)
    )
    (root / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in QUERIES.items())
    )
    lines = "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, d in QRELS.items())
    (root / "qrels" / "test.tsv").write_text(lines)
    (root / "qrels" / "train.tsv").write_text(lines)
    return root


@pytest.fixture(scope="module")
def engine(dataset_dir: Path, tmp_path_factory: pytest.TempPathFactory, real_encoder: Encoder):
    home = tmp_path_factory.mktemp("home")
    dataset = load_beir(dataset_dir, "test")
    return open_eval_engine(dataset, home, Settings(index_dir=home), real_encoder)


def test_load_beir(dataset_dir: Path) -> None:
    dataset = load_beir(dataset_dir, "test")
    assert dataset.queries == QUERIES
    assert dataset.qrels == {q: {d: 1} for q, d in QRELS.items()}
    with pytest.raises(SourceError, match=r"found: test, train"):
        load_beir(dataset_dir, "dev")
    with pytest.raises(SourceError, match="not a BEIR folder"):
        load_beir(dataset_dir / "qrels", "test")


@pytest.mark.parametrize(
    ("queries", "says"),
    [
        (b'{"_id": "q1", "text": "fine"}\n{"_id": "q2"}\n', "line 2 is not a BEIR query"),
        (b'{"_id": "q1", "text": "fine"}\nnot json\n', "line 2 is not a BEIR query"),
        (b'{"_id": "q1", "text": "caf\xe9"}\n', "is not UTF-8 text"),
    ],
)
def test_a_broken_queries_file_is_a_source_error(
    dataset_dir: Path, tmp_path: Path, queries: bytes, says: str
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(dataset_dir, broken)
    (broken / "queries.jsonl").write_bytes(queries)
    with pytest.raises(SourceError, match=says):
        load_beir(broken, "test")


def test_evaluate_modes_and_run_files(
    engine: SearchEngine, dataset_dir: Path, tmp_path: Path
) -> None:
    dataset = load_beir(dataset_dir, "test")
    results = evaluate(dataset, engine, ["bm25", "vector", "hybrid"], run_dir=tmp_path)
    assert set(results) == {"bm25", "vector", "hybrid"}
    for metrics in results.values():
        assert set(metrics) == {"ndcg@10", "recall@100", "mrr@10", "ece", "brier"}
        assert all(0.0 <= value <= 1.0 for value in metrics.values())
    # Lexical queries q1 and q4 are found by BM25; the paraphrases need vectors.
    assert results["vector"]["recall@100"] == 1.0
    assert results["bm25"]["recall@100"] == pytest.approx(0.5)
    assert results["vector"]["mrr@10"] > results["bm25"]["mrr@10"]
    for mode in results:
        lines = (tmp_path / f"{mode}.trec").read_text().splitlines()
        qid, q0, doc, rank, _score, tag = lines[0].split()
        assert qid in QUERIES and q0 == "Q0" and doc.startswith("d") and rank == "1"
        assert tag == f"searchkit-{mode}"
        run = {}
        for row in ir_measures.read_trec_run(str(tmp_path / f"{mode}.trec")):
            run.setdefault(row.query_id, []).append((row.doc_id, row.score))
        ranking = {k: v for k, v in results[mode].items() if k not in {"ece", "brier"}}
        assert score(dataset.qrels, run) == pytest.approx(ranking)


def test_calibration_error_compares_relevance_with_judgments() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"c": 1}}
    run = {"q1": [("a", 2.0), ("b", 1.0)], "q2": [("c", 1.0), ("d", 0.5)]}
    exact = {"q1": {"a": 0.99, "b": 0.01}, "q2": {"c": 0.99, "d": 0.01}}
    assert calibration_error(qrels, run, exact) == pytest.approx(0.01)
    backwards = {"q1": {"a": 0.05, "b": 0.95}, "q2": {"c": 0.05, "d": 0.95}}
    assert calibration_error(qrels, run, backwards) == pytest.approx(0.95)
    assert brier_score(qrels, run, exact) == pytest.approx(0.01**2)
    assert brier_score(qrels, run, backwards) == pytest.approx(0.95**2)
    # Unjudged queries count in neither, nor do documents below each query's top 10.
    unjudged = ({**run, "q9": [("z", 1.0)]}, {**exact, "q9": {"z": 0.0}})
    assert calibration_error(qrels, *unjudged) == pytest.approx(0.01)
    assert brier_score(qrels, *unjudged) == pytest.approx(0.01**2)
    deep = [*run["q1"], *((f"x{i}", 0.5) for i in range(10))]
    deep_values = {**exact["q1"], **{f"x{i}": 0.01 for i in range(8)}, "x8": 0.9, "x9": 0.9}
    assert brier_score(qrels, {"q1": deep}, {"q1": deep_values}) == pytest.approx(0.01**2)


def test_eval_index_is_cached_under_the_index_home(
    engine: SearchEngine, dataset_dir: Path, real_encoder: Encoder
) -> None:
    dataset = load_beir(dataset_dir, "test")
    home = engine.home.parent.parent
    assert engine.home == cached_index_dir(home, dataset, Settings(index_dir=home))
    again = open_eval_engine(dataset, home, Settings(index_dir=home), real_encoder)
    assert again.generation == engine.generation == 1  # reused, not rebuilt
    # Nothing was written beside the dataset.
    written = sorted(p.relative_to(dataset_dir).as_posix() for p in dataset_dir.rglob("*"))
    assert written == [
        "corpus.jsonl",
        "qrels",
        "qrels/test.tsv",
        "qrels/train.tsv",
        "queries.jsonl",
    ]


def test_eval_cli_json_and_table(dataset_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["eval", str(dataset_dir), "--mode", "bm25", "--index", str(tmp_path)]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.stderr
    assert set(json.loads(result.stdout)) == {"bm25"}
    table = runner.invoke(app, [*args, "--mode", "hybrid", "--fusion", "zscore"])
    assert table.exit_code == 0
    assert "ndcg@10" in table.stdout and "hybrid" in table.stdout and "zscore" in table.stdout
    missing = runner.invoke(app, ["eval", str(dataset_dir), "--split", "dev"])
    assert missing.exit_code == 2 and missing.stderr.startswith("error: no qrels for split")


def test_tune_stores_settings_that_queries_then_use(dataset_dir: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    result = CliRunner().invoke(app, ["tune", str(dataset_dir), "--index", str(index), "--json"])
    assert result.exit_code == 0, result.stderr
    body = json.loads(result.stdout)
    stored = json.loads((index / "fusion.json").read_text())
    assert stored["fusion"] == body["stored"]
    assert stored["tuned_on"]["split"] == "train"
    assert SearchEngine.open(index).fusion == FusionOptions(**stored["fusion"])


def test_bootstrap_gain_is_seeded_and_brackets_the_mean() -> None:
    choice = {str(i): 0.6 + (i % 3) * 0.1 for i in range(40)}
    baseline = {str(i): 0.5 for i in range(40)}
    gain = bootstrap_gain(choice, baseline, set(choice), seed=7)
    assert gain == bootstrap_gain(choice, baseline, set(choice), seed=7)
    assert gain.low <= gain.mean <= gain.high and gain.low > 0
    flat = bootstrap_gain(baseline, baseline, set(baseline))
    assert flat == Gain(0.0, 0.0, 0.0)


def test_no_clear_gain_keeps_the_best_single_leg() -> None:
    leg = Measured("vector", None, 0.7, 0.7, 0.7)
    fused = Measured("rrf", FusionOptions(), 0.71, 0.71, 0.7)
    report = TuneReport([leg, fused], leg, fused, Gain(0.0, -0.01, 0.01), False, 2, 2)
    assert chosen_options(report) == FusionOptions(method="minmax", vector_weight=1.0)
    helped = TuneReport([leg, fused], leg, fused, Gain(0.02, 0.01, 0.03), True, 2, 2)
    assert chosen_options(helped) == FusionOptions()


def test_query_split_is_stable_and_halves() -> None:
    qids = [str(i) for i in range(1000)]
    tuning, heldout = split_queries(qids)
    assert tuning | heldout == set(qids) and not tuning & heldout
    assert 400 < len(tuning) < 600
    assert split_queries(list(reversed(qids))) == (tuning, heldout)
