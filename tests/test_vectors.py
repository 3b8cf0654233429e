"""FAISS index kinds: exact below the size threshold, HNSW above it, filters exact either way."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from searchkit import SearchEngine, build_index
from searchkit.config import Settings
from searchkit.embed import Encoder
from searchkit.storage.vectors import IndexPlan, VectorIndex, build_vector_index, describe

from .conftest import EXACT_QUERY, HashEncoder

ROOT = Path(__file__).resolve().parent.parent


def _clustered(count: int, dimension: int = 48, seed: int = 7) -> np.ndarray:
    """Unit vectors around a few hundred centres: structured, as real embeddings are."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((200, dimension))
    vectors = centres[rng.integers(0, 200, count)] + 0.6 * rng.standard_normal((count, dimension))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32)


def _load(tmp_path: Path, vectors: np.ndarray, plan: IndexPlan, name: str) -> VectorIndex:
    path = tmp_path / f"{name}.faiss"
    path.write_bytes(build_vector_index(vectors, np.arange(len(vectors)), plan))
    return VectorIndex(path, Settings().hnsw_ef_search)


def test_size_picks_the_kind() -> None:
    plan = IndexPlan(exact_limit=1000)
    assert plan.choose_kind(1000) == "flat"
    assert plan.choose_kind(1001) == "hnsw"
    assert IndexPlan(kind="hnsw").choose_kind(3) == "hnsw"


def test_hnsw_recall_against_exact(tmp_path: Path) -> None:
    vectors = _clustered(6000)
    exact = _load(tmp_path, vectors, IndexPlan(kind="flat"), "flat")
    graph = _load(tmp_path, vectors, IndexPlan(kind="hnsw"), "hnsw")
    assert (exact.kind, graph.kind) == ("flat", "hnsw")
    queries = _clustered(50, seed=11)
    found = 0
    for query in queries:
        truth = {r.passage_id for r in exact.search(query, 10)}
        found += len(truth & {r.passage_id for r in graph.search(query, 10)})
    assert found / (10 * len(queries)) >= 0.95


def test_hnsw_returns_as_many_as_asked_beyond_ef_search(tmp_path: Path) -> None:
    graph = _load(tmp_path, _clustered(3000), IndexPlan(kind="hnsw"), "hnsw")
    ranked = graph.search(_clustered(1, seed=3)[0], 300)
    assert len(ranked) == 300 and len({r.passage_id for r in ranked}) == 300


def test_filtered_hnsw_search_is_exact(tmp_path: Path) -> None:
    vectors = _clustered(4000)
    exact = _load(tmp_path, vectors, IndexPlan(kind="flat"), "flat")
    graph = _load(tmp_path, vectors, IndexPlan(kind="hnsw"), "hnsw")
    allowed = np.arange(5, 4000, 37, dtype=np.int64)
    query = _clustered(1, seed=5)[0]
    want = exact.search(query, 10, allowed)
    got = graph.search(query, 10, allowed)
    assert [r.passage_id for r in got] == [r.passage_id for r in want]
    # the graph stores 16-bit floats: scores agree to their precision
    assert [r.score for r in got] == pytest.approx([r.score for r in want], abs=1e-3)
    assert all(r.passage_id in set(allowed.tolist()) for r in got)


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_engine_answers_from_either_kind(tmp_path: Path, corpus: Path, kind: str) -> None:
    settings = Settings(vector_index=kind)  # type: ignore[arg-type]
    build_index([corpus], tmp_path / "index", settings, encoder=HashEncoder())
    engine = SearchEngine.open(tmp_path / "index", settings, encoder=HashEncoder())
    assert kind in engine.manifest["indexes"]["vectors"].lower()
    top = engine.query(EXACT_QUERY, k=1, mode="vector").hits[0]
    assert top.path.endswith("bread.md")


def test_the_graph_over_16_bit_vectors_keeps_recall_on_real_embeddings(
    tmp_path: Path, real_encoder: Encoder
) -> None:
    """The HNSW kind stores vectors as 16-bit floats: on the bundled model's embeddings of
    real sentences (this README's), its top 10 must be the exact top 10 nearly always."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    sentences = sorted({s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", text) if len(s) > 40})
    vectors = real_encoder.encode(sentences)
    exact = _load(tmp_path, vectors, IndexPlan(kind="flat"), "flat")
    graph = _load(tmp_path, vectors, IndexPlan(kind="hnsw"), "hnsw")
    assert "fp16" in describe("hnsw", IndexPlan()) and len(sentences) > 300
    found = 0
    for query in vectors[::10]:
        truth = {r.passage_id for r in exact.search(query, 11)[1:]}  # the sentence itself aside
        found += len(truth & {r.passage_id for r in graph.search(query, 11)[1:]})
    assert found / (10 * len(vectors[::10])) >= 0.95
