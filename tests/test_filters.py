"""Metadata filters compare values as the metadata stores them, in Python and over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from searchkit import SearchEngine, build_index
from searchkit.config import Settings
from searchkit.web import create_app

from .conftest import HashEncoder

RECORDS = [
    {"_id": "a", "title": "Glaciers", "text": "Glaciers carve valleys.",
     "metadata": {"year": 2021, "open": True, "score": 0.5}},
    {"_id": "b", "title": "Glacier lakes", "text": "Glacier lakes fill valleys.",
     "metadata": {"year": 2019, "open": False, "score": 1}},
    {"_id": "c", "title": "Glacier text", "text": "Glaciers in text form.",
     "metadata": {"year": "2021", "open": "true"}},
]  # fmt: skip


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("filters")
    corpus = root / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(record) + "\n" for record in RECORDS))
    build_index([corpus], root / "index", encoder=HashEncoder())
    return root / "index"


def _found(engine: SearchEngine, **filters: object) -> set[str]:
    hits = engine.query("glacier valleys", mode="bm25", filters=filters).hits  # type: ignore[arg-type]
    return {hit.doc_id for hit in hits}


def test_numbers_and_booleans_match_as_stored_and_text_matches_as_text(index: Path) -> None:
    engine = SearchEngine.open(index, encoder=HashEncoder())
    assert _found(engine, year=2021) == {"a"}
    assert _found(engine, year="2021") == {"a", "c"}  # a command line's text matches both
    assert _found(engine, open=True) == {"a"}
    assert _found(engine, open="true") == {"a", "c"}  # --filter open=true: as JSON writes it
    assert _found(engine, open=False) == {"b"}
    assert _found(engine, score=1.0) == {"b"}
    assert _found(engine, score=0.5, open=True) == {"a"}


@pytest.fixture
def client(index: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(index_dir=index)), raise_server_exceptions=False) as c:
        yield c


def test_http_filters_take_numbers_and_json_needs_no_content_type(client: TestClient) -> None:
    body = {"q": "glacier valleys", "mode": "bm25", "filters": {"year": 2021}}
    answer = client.post("/search", json=body)
    assert answer.status_code == 200
    assert [hit["doc_id"] for hit in answer.json()["hits"]] == ["a"]
    bare = client.post("/search", content=json.dumps(body).encode())  # no content-type header
    assert bare.status_code == 200 and [h["doc_id"] for h in bare.json()["hits"]] == ["a"]
