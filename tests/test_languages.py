"""The lexical leg across scripts: English, Russian, Chinese and Greek, with known answers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from searchkit import SearchEngine, build_index

from .conftest import HashEncoder, write_corpus

DOCS = {
    "en.txt": "Lakes of the world\n\nLake Baikal in Siberia is the deepest of all lakes.",
    "ru.txt": "Озеро Байкал\n\nБайкал самое глубокое озеро планеты. На озере зимой крепкий лёд.",
    "zh.txt": "大熊猫\n\n大熊猫主要吃竹子，生活在中国四川的山区。",
    "zh-other.txt": "北极\n\n北极熊生活在北极的冰上，猫是常见的宠物。",
    "el.txt": "Λίμνες της Ελλάδας\n\nΟι λίμνες της Ελλάδας είναι πολλές και όμορφες.",
}


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("languages")
    build_index([write_corpus(root / "docs", DOCS)], root / "index", encoder=HashEncoder())
    return root / "index"


@pytest.mark.parametrize(
    ("query", "found", "marked"),
    [
        ("the deepest lake", ["en.txt"], ["Lake", "deepest", "lakes"]),
        ("озеро", ["ru.txt"], ["озеро", "озере"]),  # stems: one word, two cases
        ("глубокие озёра", ["ru.txt"], ["глубокое", "озеро", "озере"]),  # yo read as ye
        ("熊猫", ["zh.txt"], ["熊猫"]),  # 北极熊 ... 猫 holds both characters, not the word
        ("大熊猫吃竹子", ["zh.txt"], ["大熊猫", "吃竹子"]),
        ("λίμνη", ["el.txt"], ["λίμνες"]),
    ],
)
def test_each_language_finds_its_document_and_marks_the_words(
    index: Path, query: str, found: list[str], marked: list[str]
) -> None:
    hits = SearchEngine.open(index, encoder=HashEncoder()).query(query, mode="bm25").hits
    assert [hit.doc_id for hit in hits] == found
    text = hits[0].text
    assert [text[span.start : span.end] for span in hits[0].highlights] == marked


def test_a_chinese_query_through_the_cli(index: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "searchkit", "query", "熊猫", "-m", "bm25", "--json",
         "--index", str(index)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert [hit["doc_id"] for hit in json.loads(done.stdout)["hits"]] == ["zh.txt"]
