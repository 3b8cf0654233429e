"""Adaptive fusion: the legs' weights learned from each index's self-check, and explain.

The end-to-end tests build the same small corpus twice, with the real model, tantivy and FAISS:
sections of Python's own language reference (``pydoc_data.topics``: real English prose, on every
machine), once in English and once written in Georgian letters, a script the bundled model
never saw. The vector leg keeps its say on the first and loses it on the second, unjudged.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from searchkit import SearchEngine, build_index
from searchkit.embed import Encoder
from searchkit.search.adaptive import (
    learned_vector_weight,
    leg_effectiveness,
    with_weight,
)
from searchkit.search.fusion import FusionOptions

from .conftest import write_corpus

TOPICS = 40  # sections of Python's language reference that ship with every Python


GEORGIAN = str.maketrans(
    {chr(ord("a") + i): chr(0x10D0 + i) for i in range(26)}
    | {chr(ord("A") + i): chr(0x10D0 + i) for i in range(26)}
)


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory, real_encoder: Encoder) -> dict[str, Path]:
    from pydoc_data.topics import topics

    root = tmp_path_factory.mktemp("adaptive")
    names = sorted(topics)[:TOPICS]
    english = {f"{name}.txt": f"{name}\n\n{topics[name][:1500]}" for name in names}
    foreign = {name: text.translate(GEORGIAN) for name, text in english.items()}
    homes = {}
    for language, docs in (("english", english), ("foreign", foreign)):
        corpus = write_corpus(root / language / "docs", docs)
        build_index([corpus], root / language / "index", encoder=real_encoder)
        homes[language] = root / language / "index"
    return homes


def test_equal_legs_share_and_a_lost_leg_gets_little() -> None:
    assert learned_vector_weight({"bm25": 0.4, "vector": 0.4}) == 0.5
    assert learned_vector_weight({"bm25": 0.5, "vector": 0.3}) == 0.5  # both work: even
    assert learned_vector_weight({"bm25": 0.4, "vector": 0.1}) == pytest.approx(0.25)
    assert learned_vector_weight({"bm25": 0.4, "vector": 0.01}) < 0.05  # lost: little say
    assert learned_vector_weight({"bm25": 0.05, "vector": 0.6}) == pytest.approx(0.9167, abs=1e-4)
    assert learned_vector_weight({"bm25": 0.0, "vector": 0.0}) is None
    assert learned_vector_weight(None) is None


def test_shards_pool_their_self_checks_by_sample_size() -> None:
    shard = {"samples": 100, "mrr": {"bm25": 0.2, "vector": 0.6}}
    other = {"samples": 300, "mrr": {"bm25": 0.6, "vector": 0.2}}
    manifest = {"shards": [{"self_check": shard}, {"self_check": other}, {"self_check": None}]}
    assert leg_effectiveness(manifest) == pytest.approx({"bm25": 0.5, "vector": 0.3})
    assert leg_effectiveness({"self_check": None}) is None


def test_a_weight_given_wins_over_the_learned_one() -> None:
    assert with_weight(FusionOptions(vector_weight=0.9), 0.1).vector_weight == 0.9
    assert with_weight(FusionOptions(vector_weight=None), 0.1).vector_weight == 0.1
    assert with_weight(FusionOptions(vector_weight=None), None).vector_weight == 0.5


def test_the_vector_leg_loses_its_say_on_a_script_the_model_cannot_read(
    homes: dict[str, Path], real_encoder: Encoder
) -> None:
    english = SearchEngine.open(homes["english"], encoder=real_encoder)
    foreign = SearchEngine.open(homes["foreign"], encoder=real_encoder)
    assert english.effectiveness is not None and foreign.effectiveness is not None
    print(english.effectiveness, foreign.effectiveness)  # shown when the test fails
    assert english.effectiveness["vector"] > 0.3
    assert foreign.effectiveness["vector"] < english.effectiveness["vector"] / 2
    learned = english.fusion.vector_weight, foreign.fusion.vector_weight
    assert learned[0] is not None and learned[1] is not None
    assert learned[1] < learned[0] / 2 and learned[0] > 0.35
    for query in ("assert statement expression", "augmented assignment", "binary operators"):
        foreign_query = query.translate(GEORGIAN)
        keywords = foreign.query(foreign_query, mode="bm25", k=1).hits[0]
        hybrid = foreign.query(foreign_query, k=1).hits[0]
        assert (hybrid.doc_id, hybrid.start) == (keywords.doc_id, keywords.start)


def test_explain_names_the_weights_and_what_each_leg_added(
    homes: dict[str, Path], real_encoder: Encoder
) -> None:
    engine = SearchEngine.open(homes["english"], encoder=real_encoder)
    result = engine.query("how are exceptions raised by assert", explain=True)
    assert result.explanation is not None
    weights = result.explanation["weights"]
    assert result.explanation["weights_from"] == "learned"
    assert weights["bm25"] + weights["vector"] == pytest.approx(1.0)
    assert "held out" in result.explanation["why"]
    for hit in result.hits:
        assert hit.explanation is not None
        added = [leg["added"] for leg in hit.explanation.values() if leg is not None]
        assert sum(added) == pytest.approx(hit.score, abs=1e-3)
    rrf = engine.query("assert", explain=True, fusion=FusionOptions(method="rrf")).explanation
    assert rrf is not None and rrf["method"] == "rrf" and rrf["weights_from"] == "learned"
    assert rrf["weights"]["vector"] == engine.fusion.vector_weight  # no weight given: the index's
    given = engine.query("assert", explain=True, fusion=FusionOptions(vector_weight=0.3))
    assert given.explanation is not None and given.explanation["weights_from"] == "request"
    assert engine.query("assert", mode="bm25", explain=True).explanation is None
