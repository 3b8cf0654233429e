"""FAISS index kinds: exact below the size threshold, HNSW above it, filters exact either way."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from searchkit import SearchEngine, build_index
from searchkit.config import Settings
from searchkit.storage.vectors import IndexPlan, VectorIndex, build_vector_index

from .conftest import EXACT_QUERY, HashEncoder


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
    want = [(r.passage_id, round(r.score, 5)) for r in exact.search(query, 10, allowed)]
    got = [(r.passage_id, round(r.score, 5)) for r in graph.search(query, 10, allowed)]
    assert got == want and all(pid in set(allowed.tolist()) for pid, _ in got)


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_engine_answers_from_either_kind(tmp_path: Path, corpus: Path, kind: str) -> None:
    settings = Settings(vector_index=kind)  # type: ignore[arg-type]
    build_index([corpus], tmp_path / "index", settings, encoder=HashEncoder())
    engine = SearchEngine.open(tmp_path / "index", settings, encoder=HashEncoder())
    assert kind in engine.manifest["indexes"]["vectors"].lower()
    top = engine.query(EXACT_QUERY, k=1, mode="vector").hits[0]
    assert top.path.endswith("bread.md")
