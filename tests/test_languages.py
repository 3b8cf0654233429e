"""The lexical leg across languages and scripts, with known answers: English, Russian, Chinese,
Greek, Tamil and Hindi in one index; French detected, German configured."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import tantivy
from hypothesis import given
from hypothesis import strategies as st

from searchkit import IndexWriter, SearchEngine, Settings, build_index
from searchkit.build.selfcheck import _bm25 as bm25_replica
from searchkit.search.reader import IndexReader
from searchkit.storage.analysis import (
    WORD_PATTERN,
    Languages,
    document_language,
    normalize,
    query_terms,
    query_weight,
    tokens,
)
from searchkit.storage.lexical import LexicalIndex, LexicalRow, write_lexical
from searchkit.storage.matching import word_spans
from searchkit.storage.store import Store

from .conftest import HashEncoder, write_corpus

DOCS = {
    "en.txt": "Lakes of the world\n\nLake Baikal in Siberia is the deepest of all lakes.",
    "ru.txt": "Озеро Байкал\n\nБайкал самое глубокое озеро планеты. На озере зимой крепкий лёд.",
    "zh.txt": "大熊猫\n\n大熊猫主要吃竹子，生活在中国四川的山区。",
    "zh-other.txt": "北极\n\n北极熊生活在北极的冰上，猫是常见的宠物。",
    "el.txt": "Λίμνες της Ελλάδας\n\nΟι λίμνες της Ελλάδας είναι πολλές και όμορφες.",
    "ta.txt": "சென்னை\n\nசென்னை ஒரு பெரிய நகரம்.",  # Chennai is a big city
    "hi.txt": "दिल्ली\n\nभारत की राजधानी नई दिल्ली है।",  # India's capital is New Delhi
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
        ("நகரங்கள்", ["ta.txt"], ["நகரம்"]),  # "cities" finds "city": Tamil stems
        ("राजधानी", ["hi.txt"], ["राजधानी"]),  # vowel signs belong to their word
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


FRENCH = {
    "maison.txt": "La maison au bord du lac\n\nLa maison de mes grands-parents se trouve au "
    "bord d'un lac. Chaque été, nous y passons les vacances avec nos cousins.",
    "terrasse.txt": "Le soir\n\nLe soir, nous mangeons sur la terrasse en regardant le soleil "
    "se coucher derrière les montagnes.",
    "cuisine.txt": "La cuisine\n\nNotre grand-mère prépare les meilleures tartes aux pommes de "
    "la région, et elle nous apprend ses recettes.",
    "berge.txt": "Die Häuser am See\n\nDie Häuser meiner Großeltern stehen am Ufer eines Sees, "
    "und im Sommer verbringen wir dort die Ferien.",
}


@pytest.fixture(scope="module")
def french(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("french")
    build_index([write_corpus(root / "docs", FRENCH)], root / "index", encoder=HashEncoder())
    return root / "index"


def _bm25(index: Path, query: str) -> list[str]:
    hits = SearchEngine.open(index, encoder=HashEncoder()).query(query, mode="bm25").hits
    return [hit.doc_id for hit in hits]


def _manifest(index: Path) -> dict[str, Any]:
    current = (index / "CURRENT").read_text().strip()
    manifest: dict[str, Any] = json.loads(
        (index / "generations" / current / "manifest.json").read_text()
    )
    return manifest


def test_each_document_is_stemmed_in_the_language_it_is_detected_in(french: Path) -> None:
    manifest = _manifest(french)
    assert manifest["language"] == "french"  # the main language: most documents'
    assert manifest["language_choice"] == {"source": "detected"}
    assert manifest["languages"] == {"french": 3, "german": 1}
    # French stems: "trouver" finds "trouve", "préparer" finds "prépare" (English stems miss)
    assert _bm25(french, "trouver") == ["maison.txt"]
    assert _bm25(french, "préparer") == ["cuisine.txt"]
    hits = SearchEngine.open(french, encoder=HashEncoder()).query("trouver", mode="bm25").hits
    assert [hits[0].text[h.start : h.end] for h in hits[0].highlights] == ["trouve"]
    # The German document has German stems: "Haus" finds and marks "Häuser"
    hits = SearchEngine.open(french, encoder=HashEncoder()).query("Haus", mode="bm25").hits
    assert [hit.doc_id for hit in hits] == ["berge.txt"]
    assert [hits[0].text[h.start : h.end] for h in hits[0].highlights] == ["Häuser"]


def test_a_configured_language_is_kept_by_rebuilds_until_auto(
    tmp_path: Path, hash_encoder: HashEncoder
) -> None:
    docs, index = write_corpus(tmp_path / "docs", FRENCH), tmp_path / "index"
    build_index([docs], index, Settings(language="german"), encoder=hash_encoder)
    assert _bm25(index, "Haus") == ["berge.txt"]  # German stems: "Häuser" is "haus"
    (docs / "neu.txt").write_text("Das Haus\n\nEin neues Haus am See.", encoding="utf-8")
    build_index([docs], index, encoder=hash_encoder)  # language unset: kept
    manifest = _manifest(index)
    assert manifest["language"] == "german"
    assert manifest["language_choice"] == {"source": "configured"}
    assert manifest["languages"] == {"german": 5}  # every document read as German
    build_index([docs], index, Settings(language="french"), encoder=hash_encoder)
    assert _manifest(index)["language"] == "french"
    assert _bm25(index, "Haus") == ["neu.txt"]  # "Häuser" is read as French now
    report = build_index([docs], index, Settings(language="auto"), encoder=hash_encoder)
    assert report.published  # detection again, though every document is unchanged
    manifest = _manifest(index)
    assert manifest["language_choice"] == {"source": "detected"}
    assert manifest["languages"] == {"french": 3, "german": 2}
    assert _bm25(index, "Haus") == ["neu.txt", "berge.txt"]


def test_the_language_through_the_cli(french: Path, tmp_path: Path) -> None:
    info = subprocess.run(
        [sys.executable, "-m", "searchkit", "info", "--json", "--index", str(french)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert json.loads(info.stdout)["languages"] == ["french", "german"]
    wrong = subprocess.run(
        [sys.executable, "-m", "searchkit", "index", str(tmp_path), "--language", "klingon",
         "--index", str(tmp_path / "index")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert wrong.returncode == 2
    assert wrong.stderr.count("\n") == 1 and "--language" in wrong.stderr
    assert "french" in wrong.stderr


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Le soir, nous mangeons sur la terrasse en regardant le soleil.", "french"),
        ("Jeden Sommer verbringen wir dort die Ferien mit unseren Cousins.", "german"),
        ("Cada verano pasamos allí las vacaciones con nuestros primos.", "spanish"),
        ("Elke zomer brengen we daar de vakantie door met onze neven.", "dutch"),
        ("Varje sommar tillbringar vi semestern där med våra kusiner.", "swedish"),
        (
            "Каждое лето мы проводим там каникулы с нашими братьями, и нам всегда жаль уезжать.",
            "russian",
        ),
        ("UreD UreE UreF FOXO3 S-400 Baikal", None),  # no running text
        ("大熊猫主要吃竹子", None),
    ],
)
def test_a_document_language_is_told_by_its_stopwords(text: str, language: str | None) -> None:
    assert document_language(text) == language


@given(st.text(alphabet=st.sampled_from(list("aé'’-  ́ிாक्षे熊猫カなΩж٣2_")), max_size=40))
def test_highlighting_splits_words_as_tantivy_does(text: str) -> None:
    words = tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.regex(WORD_PATTERN)).build()
    tokens = words.pre_tokenize(normalize(text)).tokens
    expected = [(token.char_offset_from, token.char_offset_to) for token in tokens]
    assert word_spans(text) == expected


def test_a_stopword_of_one_language_does_not_match_in_another(
    tmp_path: Path, hash_encoder: HashEncoder
) -> None:
    docs = {
        "saturn.txt": "Saturn\n\nThe rings of Saturn are made of ice and rock, and they are "
        "wide but thin. The rings were first seen in the year 1610 by Galileo.",
        "jupiter.txt": "Jupiter\n\nJupiter is the largest of the planets, and it has faint "
        "rings of dust that are hard to see from the Earth at night.",
        "mars.txt": "Mars\n\nMars is a cold desert planet, and it has two small moons that "
        "were found in the year 1877 by an astronomer in Washington.",
        "roman.txt": "Un roman\n\nLe roman « The Lord of the Rings » est une œuvre de Tolkien, "
        "et nous le lisons chaque hiver avec nos enfants dans la maison.",
    }
    index = tmp_path / "index"
    build_index([write_corpus(tmp_path / "docs", docs)], index, encoder=hash_encoder)
    assert _manifest(index)["languages"] == {"english": 3, "french": 1}
    # "the" and "of" are English stopwords: no English document holds them, the French one
    # does, and they would make it the best match for any English query that uses them.
    assert _bm25(index, "the rings of Saturn") == ["saturn.txt", "jupiter.txt", "roman.txt"]
    # A minority language's stopwords stay in the main language's reading: German "man",
    # "will" and "die" are English words
    languages: Languages = ("english", "german")
    assert query_terms("the man will die in the war", languages) == ["man", "die", "war"]
    # BM25's reference score counts the main language's reading of the query alone
    store = Store(index)
    stats = IndexReader(store, store.require_current(), Settings()).term_stats(
        "frozen lakes of Saturn"
    )
    assert stats.reference == (("frozen", 1.0), ("lake", 1.0), ("saturn", 1.0))
    assert set(stats.doc_freq) > set(dict(stats.reference))  # the French forms are searched too


def test_a_live_write_in_another_language_is_stemmed_in_it(
    tmp_path: Path, hash_encoder: HashEncoder
) -> None:
    index = tmp_path / "index"
    docs = {name: text for name, text in FRENCH.items() if name != "berge.txt"}
    build_index([write_corpus(tmp_path / "docs", docs)], index, encoder=hash_encoder)
    writer = IndexWriter(index, encoder=hash_encoder)
    writer.upsert([{"id": "berge", "text": FRENCH["berge.txt"]}])
    writer.flush()  # a delta generation over the French one
    assert _manifest(index)["languages"] == {"french": 0, "german": 1}
    engine = SearchEngine.open(index, encoder=hash_encoder)
    assert engine.info()["languages"] == ["french", "german"]
    assert _bm25(index, "Haus") == ["berge"]  # German stems in the delta
    assert _bm25(index, "trouver") == ["maison.txt"]  # French stems in its base


def test_the_self_check_scores_a_passage_as_tantivy_does(tmp_path: Path) -> None:
    rows = [
        LexicalRow(i, f"d{i}", f"d{i}", "", text, language)
        for i, (text, language) in enumerate(
            [
                ("The lakes of the north freeze in the winter months.", None),
                ("Lakes and rivers hold most of the fresh water on land.", None),
                ("Die Häuser am See sind alt, und die Häuser sind schön.", "german"),
            ]
        )
    ]
    write_lexical(tmp_path / "lexical", iter(rows), "english")
    lexical = LexicalIndex(tmp_path / "lexical", "english")
    languages: Languages = ("english", "german")
    terms = query_terms("lake Häuser", languages)
    stats = lexical.term_stats(terms)
    average = sum(len(tokens(row.text, row.language or "english")) for row in rows) / len(rows)
    weights = {term: query_weight(2 if i == 0 else 1) for i, term in enumerate(terms)}
    units = [((term,), weight) for term, weight in weights.items()]
    found = {r.passage_id: r.score for r in lexical.search_units(units, 10)}
    for row in rows:
        analyzed = tokens(row.text, row.language or "english")
        replica = bm25_replica(weights, analyzed, stats, average)
        assert replica == pytest.approx(found[row.passage_id], rel=0.02)
