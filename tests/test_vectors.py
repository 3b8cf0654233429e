"""FAISS index kinds: exact below the size threshold, an inverted file above it (or HNSW, on
request), filters exact whichever kind."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from searchkit import SearchEngine, build_index
from searchkit.choices import VectorIndexKind
from searchkit.config import Settings
from searchkit.embed import Encoder
from searchkit.storage import vectors as vectors_module
from searchkit.storage.vectors import (
    MIN_PROBES,
    IndexPlan,
    VectorIndex,
    build_vector_index,
    describe,
    ivf_lists,
)

from .conftest import EXACT_QUERY, HashEncoder

ROOT = Path(__file__).resolve().parent.parent


def _clustered(count: int, dimension: int = 48, seed: int = 7) -> np.ndarray:
    """Unit vectors around a few hundred centres: structured, as real embeddings are."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((200, dimension))
    vectors = centres[rng.integers(0, 200, count)] + 0.6 * rng.standard_normal((count, dimension))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32)


def _load(
    tmp_path: Path, vectors: np.ndarray, plan: IndexPlan, name: str, probe_share: float = 0.25
) -> VectorIndex:
    path = tmp_path / f"{name}.faiss"
    path.write_bytes(build_vector_index(vectors, np.arange(len(vectors)), plan))
    return VectorIndex(path, Settings().hnsw_ef_search, probe_share)


def test_size_picks_the_kind() -> None:
    plan = IndexPlan(exact_limit=1000)
    assert plan.choose_kind(1000) == "flat"
    assert plan.choose_kind(1001) == "ivf"
    assert IndexPlan(kind="hnsw").choose_kind(3) == "hnsw"
    assert IndexPlan(kind="ivf").choose_kind(3) == "ivf"


def test_an_inverted_file_has_about_sqrt_n_lists_each_trainable() -> None:
    assert ivf_lists(1_000_000) == 1000
    assert ivf_lists(200_000) == 447
    assert ivf_lists(1000) == 25  # sqrt would be 32: k-means wants 39 vectors a list
    assert ivf_lists(10) == ivf_lists(0) == 1
    assert "1000 lists" in describe("ivf", IndexPlan(), 1_000_000)


# An inverted file's lists are coarser the fewer vectors it holds (about sqrt(n) lists): it is
# the default past 100,000 passages, and measured at 60,000 here.
@pytest.mark.parametrize(("kind", "count"), [("ivf", 60_000), ("hnsw", 6000)])
def test_approximate_recall_against_exact(
    tmp_path: Path, kind: VectorIndexKind, count: int
) -> None:
    vectors = _clustered(count)
    exact = _load(tmp_path, vectors, IndexPlan(kind="flat"), "flat")
    approximate = _load(tmp_path, vectors, IndexPlan(kind=kind), kind)
    assert (exact.kind, approximate.kind) == ("flat", kind)
    queries = _clustered(50, seed=11)
    found = 0
    for query in queries:
        truth = {r.passage_id for r in exact.search(query, 10)}
        found += len(truth & {r.passage_id for r in approximate.search(query, 10)})
    assert found / (10 * len(queries)) >= 0.95


def test_an_inverted_file_scans_a_share_of_its_lists(tmp_path: Path) -> None:
    vectors = _clustered(20_000)  # 141 lists
    assert _load(tmp_path, vectors, IndexPlan(kind="ivf"), "a", 0.25).probes == 36
    assert _load(tmp_path, vectors, IndexPlan(kind="ivf"), "b", 0.01).probes == MIN_PROBES
    small = _load(tmp_path, _clustered(400), IndexPlan(kind="ivf"), "c", 0.01)  # 10 lists
    assert small.probes == 10


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_search_returns_as_many_as_asked(tmp_path: Path, kind: VectorIndexKind) -> None:
    """Beyond HNSW's efSearch, and beyond what an inverted file's scanned lists hold."""
    vectors = _clustered(3000)  # as an inverted file: 55 lists of about 55, 16 scanned
    index = _load(tmp_path, vectors, IndexPlan(kind=kind), kind)
    for depth in (300, 1500, 3000):
        ranked = index.search(_clustered(1, seed=3)[0], depth)
        assert len(ranked) == depth and len({r.passage_id for r in ranked}) == depth


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_filtered_approximate_search_is_exact(tmp_path: Path, kind: VectorIndexKind) -> None:
    vectors = _clustered(4000)
    exact = _load(tmp_path, vectors, IndexPlan(kind="flat"), "flat")
    approximate = _load(tmp_path, vectors, IndexPlan(kind=kind), kind)
    allowed = np.arange(5, 4000, 37, dtype=np.int64)
    query = _clustered(1, seed=5)[0]
    want = exact.search(query, 10, allowed)
    got = approximate.search(query, 10, allowed)
    assert [r.passage_id for r in got] == [r.passage_id for r in want]
    # both store 16-bit floats: scores agree to their precision
    assert [r.score for r in got] == pytest.approx([r.score for r in want], abs=1e-3)
    assert all(r.passage_id in set(allowed.tolist()) for r in got)


def test_a_wide_filter_on_an_inverted_file_scans_lists_until_it_has_enough(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the exact limit a filter goes through the scanned lists, more of them when those
    hold fewer allowed passages than asked for, and still returns only allowed ones."""
    monkeypatch.setattr(vectors_module, "EXACT_FILTER_LIMIT", 0)
    vectors = _clustered(3000)  # 55 lists, 16 scanned: about 125 of the 429 allowed
    exact = _load(tmp_path, vectors, IndexPlan(kind="flat"), "flat")
    ivf = _load(tmp_path, vectors, IndexPlan(kind="ivf"), "ivf")
    allowed = np.arange(0, 3000, 7, dtype=np.int64)
    query = _clustered(1, seed=5)[0]
    got = ivf.search(query, 300, allowed)
    assert len(got) == 300 and {r.passage_id for r in got} <= set(allowed.tolist())
    # every list scanned in the end: the exact top 300 of the allowed
    want = exact.search(query, 300, allowed)
    assert len({r.passage_id for r in got} & {r.passage_id for r in want}) >= 295


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_engine_answers_from_each_kind(tmp_path: Path, corpus: Path, kind: VectorIndexKind) -> None:
    settings = Settings(vector_index=kind)
    build_index([corpus], tmp_path / "index", settings, encoder=HashEncoder())
    engine = SearchEngine.open(tmp_path / "index", settings, encoder=HashEncoder())
    assert {"flat": "flatip", "ivf": "ivf", "hnsw": "hnsw"}[kind] in engine.manifest["indexes"][
        "vectors"
    ].lower()
    top = engine.query(EXACT_QUERY, k=1, mode="vector").hits[0]
    assert top.path.endswith("bread.md")


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_16_bit_vectors_keep_recall_on_real_embeddings(
    tmp_path: Path, real_encoder: Encoder, kind: VectorIndexKind
) -> None:
    """Both approximate kinds store vectors as 16-bit floats: on the bundled model's embeddings
    of real sentences (this README's), their top 10 must be the exact top 10 nearly always."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    sentences = sorted({s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", text) if len(s) > 40})
    vectors = real_encoder.encode(sentences)
    exact = _load(tmp_path, vectors, IndexPlan(kind="flat"), "flat")
    approximate = _load(tmp_path, vectors, IndexPlan(kind=kind), kind)
    assert "fp16" in describe(kind, IndexPlan(), len(sentences)) and len(sentences) > 300
    found = 0
    for query in vectors[::10]:
        truth = {r.passage_id for r in exact.search(query, 11)[1:]}  # the sentence itself aside
        found += len(truth & {r.passage_id for r in approximate.search(query, 11)[1:]})
    assert found / (10 * len(vectors[::10])) >= 0.95
