"""The build job and the on-disk contract, with a fake encoder (no model needed)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from searchkit import SearchEngine, build_index
from searchkit.errors import BuildLockedError, IndexCorruptError, IndexNotFoundError, SourceError
from searchkit.storage.store import Store, atomic_write

from .conftest import FIXTURE_DOCS, HashEncoder


def test_build_writes_a_complete_generation(
    tmp_path: Path, corpus: Path, hash_encoder: HashEncoder
) -> None:
    index = tmp_path / "index"
    report = build_index([corpus], index, encoder=hash_encoder)
    assert report.generation == 1
    assert report.documents == len(FIXTURE_DOCS)
    assert (index / "CURRENT").read_text().strip() == "g000001"
    generation = index / "generations" / "g000001"
    manifest = json.loads((generation / "manifest.json").read_text())
    assert manifest["counts"]["passages"] == report.passages
    assert manifest["model"] == {
        "name": "hash-encoder",
        "dimension": 64,
        "normalize": True,
        "fingerprint": "fake0000",
        "variant": "fp32",
    }
    assert {"vectors.faiss", "passages.sqlite", "embeddings.f32"} <= set(manifest["files"])
    embeddings = generation / "embeddings.f32"
    assert embeddings.stat().st_size == report.passages * 64 * 4
    for name in manifest["files"]:
        assert (generation / name).stat().st_size == manifest["files"][name]["size"]
    assert not list(generation.rglob("*.pkl")) and not list(generation.rglob("*.pickle"))


def test_rebuild_publishes_next_generation_and_keeps_two(
    tmp_path: Path, corpus: Path, hash_encoder: HashEncoder
) -> None:
    index = tmp_path / "index"
    for expected in (1, 2, 3):
        (corpus / "notes.txt").write_text(f"Notes, version {expected}: the kiln was lit.\n")
        assert build_index([corpus], index, encoder=hash_encoder).generation == expected
    store = Store(index)
    assert store.current() == 3
    assert store.numbers() == [2, 3]


def test_a_rebuild_with_nothing_changed_publishes_nothing(
    tmp_path: Path, corpus: Path, hash_encoder: HashEncoder
) -> None:
    index = tmp_path / "index"
    build_index([corpus], index, encoder=hash_encoder)
    for _ in range(2):  # two no-op rebuilds used to push the first generation out of retention
        again = build_index([corpus], index, encoder=hash_encoder)
        assert not again.published and again.generation == 1 and again.reused == 4
    assert Store(index).numbers() == [1]
    (corpus / "space" / "mars.txt").write_text("Rovers on Mars\nA new sentence about dust.\n")
    changed = build_index([corpus], index, encoder=hash_encoder)
    assert changed.published and changed.generation == 2 and changed.changed == 1


def test_engine_serves_the_generation_current_names(
    tmp_path: Path, corpus: Path, hash_encoder: HashEncoder
) -> None:
    index = tmp_path / "index"
    build_index([corpus], index, encoder=hash_encoder)
    engine = SearchEngine.open(index, encoder=hash_encoder)
    build_index([corpus / "kitchen"], index, encoder=hash_encoder, allow_shrink=True)
    # An open engine keeps answering from its generation; a new one sees the new generation.
    assert engine.query("tomato", mode="bm25").generation == 1
    assert engine.query("tomato", mode="bm25").hits
    fresh = SearchEngine.open(index, encoder=hash_encoder)
    assert fresh.generation == 2
    assert fresh.query("tomato", mode="bm25").hits == []


def test_failed_build_leaves_live_index_untouched(
    tmp_path: Path, corpus: Path, hash_encoder: HashEncoder
) -> None:
    index = tmp_path / "index"
    build_index([corpus], index, encoder=hash_encoder)
    before = _snapshot(index)

    class Exploding(HashEncoder):
        def encode(self, texts, on_batch=None):  # type: ignore[no-untyped-def]
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        build_index([corpus], index, encoder=Exploding(), reuse=False)
    assert _snapshot(index) == before
    assert not [p for p in (index / "generations").iterdir() if p.name.endswith(".partial")]


def test_empty_source_is_refused(tmp_path: Path, hash_encoder: HashEncoder) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SourceError, match="no indexable documents"):
        build_index([empty], tmp_path / "index", encoder=hash_encoder)
    assert Store(tmp_path / "index").current() is None


def test_second_build_is_refused_while_one_holds_the_lock(
    tmp_path: Path, corpus: Path, hash_encoder: HashEncoder
) -> None:
    index = tmp_path / "index"
    with Store(index).build_lock(), pytest.raises(BuildLockedError, match=f"pid {os.getpid()}"):
        build_index([corpus], index, encoder=hash_encoder)


def test_leftover_partial_generation_is_removed(
    tmp_path: Path, corpus: Path, hash_encoder: HashEncoder
) -> None:
    index = tmp_path / "index"
    build_index([corpus], index, encoder=hash_encoder)
    dead = index / "generations" / "g000002.partial"
    dead.mkdir()
    (dead / "junk").write_text("left by a killed build")
    assert build_index([corpus], index, encoder=hash_encoder, reuse=False).generation == 2
    assert not dead.exists()


def test_engine_refuses_inconsistent_generation(
    tmp_path: Path, corpus: Path, hash_encoder: HashEncoder
) -> None:
    index = tmp_path / "index"
    build_index([corpus], index, encoder=hash_encoder)
    faiss_file = index / "generations" / "g000001" / "vectors.faiss"
    faiss_file.write_bytes(faiss_file.read_bytes()[:-8])
    with pytest.raises(IndexCorruptError, match=r"vectors\.faiss has"):
        SearchEngine.open(index, encoder=hash_encoder)


def test_missing_index_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError, match="searchkit index PATH"):
        SearchEngine.open(tmp_path / "nothing")


def test_atomic_write_replaces_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "file"
    atomic_write(target, b"old")
    atomic_write(target, b"new contents")
    assert target.read_bytes() == b"new contents"
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def _snapshot(index: Path) -> dict[str, bytes]:
    return {
        p.relative_to(index).as_posix(): p.read_bytes()
        for p in sorted(index.rglob("*"))
        if p.is_file() and not p.name.startswith("LOCK")
    }


def test_damaged_file_of_the_right_size_is_refused_cleanly(
    tmp_path: Path, corpus: Path, hash_encoder: HashEncoder
) -> None:
    index = tmp_path / "index"
    build_index([corpus], index, encoder=hash_encoder)
    faiss_file = index / "generations" / "g000001" / "vectors.faiss"
    faiss_file.write_bytes(b"\0" * faiss_file.stat().st_size)
    with pytest.raises(IndexCorruptError, match="cannot be opened"):
        SearchEngine.open(index, encoder=hash_encoder)


def test_one_source_given_as_a_string(
    tmp_path: Path, corpus: Path, hash_encoder: HashEncoder
) -> None:
    report = build_index(str(corpus), tmp_path / "index", encoder=hash_encoder)
    assert report.documents == 4


@pytest.mark.parametrize("older", [2, 3])
def test_a_rebuild_replaces_a_generation_of_an_older_format(
    corpus: Path, tmp_path: Path, hash_encoder: HashEncoder, older: int
) -> None:
    index = tmp_path / "index"
    build_index([corpus], index, encoder=hash_encoder)
    manifest = index / "generations" / "g000001" / "manifest.json"
    old = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**old, "format": older}))
    with pytest.raises(IndexCorruptError, match=f"format {older}"):
        SearchEngine.open(index, encoder=hash_encoder)
    report = build_index([corpus], index, encoder=hash_encoder)
    assert report.generation == 2 and report.published  # the same documents: replaced anyway
    assert report.encoded == 0  # older formats differ in the analysis, not the vectors
    assert SearchEngine.open(index, encoder=hash_encoder).query("oil", mode="bm25").hits


def test_the_self_check_searches_vectors_as_configured(
    tmp_path: Path, hash_encoder: HashEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The weights a build learns come from searches like the queries' own: the vector index
    is searched with the configured breadth (here HNSW's efSearch)."""
    from searchkit.config import Settings
    from searchkit.storage import vectors

    breadths: list[int] = []
    original = vectors.VectorIndex.search

    def recording(self: vectors.VectorIndex, *args: Any, **kwargs: Any) -> Any:
        breadths.append(self._ef_search)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(vectors.VectorIndex, "search", recording)
    source = tmp_path / "docs"
    source.mkdir()
    for i in range(30):
        sentences = [f"Topic {i} sentence {j} says something about item {i * j}." for j in range(4)]
        (source / f"doc{i}.md").write_text(" ".join(sentences), encoding="utf-8")
    settings = Settings(vector_index="hnsw", hnsw_ef_search=777)
    build_index([source], tmp_path / "index", settings, encoder=hash_encoder)
    assert breadths and set(breadths) == {777}


class _Int8Hash(HashEncoder):
    variant = "int8"


def test_held_out_sentences_share_the_passage_encoder_only_where_it_computes_the_same() -> None:
    from searchkit.build.selfcheck import _encode, sentence_encoder

    passages = HashEncoder()
    assert sentence_encoder(None, passages) is passages  # the caller's encoder (tests, refreshes)
    assert sentence_encoder(HashEncoder(), passages) is passages  # same model and precision
    other = _Int8Hash()
    assert sentence_encoder(other, passages) is other  # another precision: queries' own
    queries, rests = ["otters sleep", "oil filter"], ["sea otters hold hands", "the engine oil"]
    together = _encode(queries, rests, passages, passages)  # one call for both
    apart = (passages.encode(queries), passages.encode(rests))
    assert all((a == b).all() for a, b in zip(together, apart, strict=True))
