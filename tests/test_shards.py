"""Sharded indexes without Ray: placement, merging, the cluster manifest and the fan-out engine
(shards searched in-process). The fake encoder keeps these pure-logic tests fast; the real
model, Ray Data and Ray Serve run in tests/test_cluster.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from searchkit import build_index
from searchkit.config import Settings
from searchkit.errors import IndexNotFoundError, UserInputError
from searchkit.records import Ranked
from searchkit.search.engine import SearchEngine, open_sharded
from searchkit.search.shards import merge_leg
from searchkit.storage.sharded import ShardedStore, global_id, shard_of, split_id
from searchkit.storage.store import Store
from tests.conftest import HashEncoder, build_sharded

QUERIES = ["sourdough starter", "engine oil", "tomato plants", "mars rover", "oil, engine oil"]
SHARDS = 3


def _sharded(corpus: Path, home: Path, encoder: HashEncoder) -> ShardedStore:
    return build_sharded(corpus, home, encoder, SHARDS)  # type: ignore[arg-type]


def _one_and_sharded(
    tmp_path: Path, corpus: Path, encoder: HashEncoder
) -> tuple[SearchEngine, ShardedStore]:
    """The corpus as one index and as ``SHARDS`` shards, built with the same encoder."""
    build_index([corpus], tmp_path / "one", encoder=encoder)
    return SearchEngine.open(tmp_path / "one", encoder=encoder), _sharded(
        corpus, tmp_path / "sharded", encoder
    )


def _engine(store: ShardedStore, encoder: HashEncoder, global_idf: bool = True) -> SearchEngine:
    return open_sharded(store.home, Settings(global_idf=global_idf), encoder)  # type: ignore[arg-type]


def _top(engine: SearchEngine, text: str, mode: str) -> list[tuple[str, int]]:
    return [(h.doc_id, h.start) for h in engine.query(text, mode=mode).hits]  # type: ignore[arg-type]


def test_placement_is_stable_and_ids_round_trip() -> None:
    assert shard_of("kitchen/bread.md", 4) == shard_of("kitchen/bread.md", 4) < 4
    assert len({shard_of(f"doc-{n}", 4) for n in range(100)}) == 4
    for shard, local in [(0, 0), (2, 7), (1, 123)]:
        assert split_id(global_id(shard, local, 3), 3) == (shard, local)


def test_merge_leg_keeps_the_global_top_by_score() -> None:
    merged = merge_leg([[Ranked(0, 1, 0.9), Ranked(1, 2, 0.5)], [Ranked(0, 1, 0.7)]], 2)
    assert [(r.passage_id, r.rank, r.score) for r in merged] == [(0, 1, 0.9), (1, 2, 0.7)]


def test_fan_out_answers_like_one_index(
    tmp_path: Path, corpus: Path, hash_encoder: HashEncoder
) -> None:
    local, store = _one_and_sharded(tmp_path, corpus, hash_encoder)
    sharded = _engine(store, hash_encoder)
    manifest = store.manifest(store.require_current())
    assert manifest["counts"]["documents"] == local.info()["documents"]
    assert sum(1 for s in manifest["shards"] if s["counts"]["documents"]) >= 2
    for text in QUERIES:
        assert _top(sharded, text, "vector") == _top(local, text, "vector")
        assert set(_top(sharded, text, "bm25")) <= {
            (h.doc_id, h.start) for h in local.query(text, mode="bm25", k=50).hits
        }
    hit = sharded.query("sourdough starter", mode="hybrid").hits[0]
    assert hit.highlights and "sourdough" in hit.html.lower()
    assert len({h.doc_id for h in sharded.query("the", mode="vector", per_doc=1, k=4).hits}) == 4
    found, expected = sharded.document("kitchen/bread.md"), local.document("kitchen/bread.md")
    assert found is not None and expected is not None
    assert [(p["start"], p["end"]) for p in found["passages"]] == [
        (p["start"], p["end"]) for p in expected["passages"]
    ]
    assert sharded.document("no/such.md") is None
    ranked = sharded.rank_documents("engine oil", "vector", k=3).ranked
    assert ranked == local.rank_documents("engine oil", "vector", k=3).ranked
    with pytest.raises(UserInputError, match="empty"):
        sharded.query("  ")


def test_cluster_manifest_publishes_versions_and_pins_shard_generations(
    tmp_path: Path, corpus: Path, hash_encoder: HashEncoder
) -> None:
    store = _sharded(corpus, tmp_path / "sharded", hash_encoder)
    first = store.require_current()
    pinned = store.pinned(0)
    assert pinned == {1}
    shard_store = Store(store.shard_home(0))
    for _ in range(3):
        build_index(
            [corpus], shard_store.home, encoder=hash_encoder, allow_shrink=True, pinned=pinned
        )
    assert 1 in shard_store.numbers()  # the live cluster manifest still names it
    store.publish([store.shard_entry(s) for s in range(SHARDS)], {"name": "x"}, [])
    assert store.require_current() == first + 1
    assert (tmp_path / "sharded" / "CLUSTER").read_text().strip() == f"c{first + 1:06d}"


def test_open_sharded_needs_a_cluster_manifest(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError, match="--ray-address"):
        open_sharded(tmp_path, Settings())


def test_global_idf_scores_bm25_as_one_index_would(
    tmp_path: Path, corpus: Path, hash_encoder: HashEncoder
) -> None:
    local, store = _one_and_sharded(tmp_path, corpus, hash_encoder)

    def ratios(global_idf: bool) -> list[float]:
        sharded = _engine(store, hash_encoder, global_idf)
        found = []
        for text in QUERIES:
            expected = local.query(text, mode="bm25").hits[0]
            hit = sharded.query(text, mode="bm25").hits[0]
            assert (hit.doc_id, hit.start) == (expected.doc_id, expected.start)
            found.append(hit.score / expected.score)
        return found

    # Corpus-wide IDF leaves only each shard's own average passage length to differ.
    assert all(abs(ratio - 1) < 0.05 for ratio in ratios(global_idf=True))
    assert any(abs(ratio - 1) > 0.1 for ratio in ratios(global_idf=False))
