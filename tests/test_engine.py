"""End to end through the real bundled model, real tantivy and real FAISS."""

from __future__ import annotations

import html
import re
import sys
import unicodedata
from pathlib import Path

import pytest

from searchkit import SearchEngine
from searchkit.choices import Mode
from searchkit.embed import Encoder
from searchkit.errors import ModelMismatchError, QuerySyntaxError, UserInputError
from searchkit.records import SearchResult
from searchkit.search.fusion import FusionOptions
from searchkit.search.query_check import _CONTROLS

from .conftest import EXACT_QUERY, PARAPHRASE_QUERY, SEEDS, HashEncoder


@pytest.fixture(scope="module")
def seeds(seeds_index: Path, real_encoder: Encoder) -> SearchEngine:
    return SearchEngine.open(seeds_index, encoder=real_encoder)


@pytest.fixture(scope="module")
def fixture(fixture_index: Path, real_encoder: Encoder) -> SearchEngine:
    return SearchEngine.open(fixture_index, encoder=real_encoder)


def _marked(hit_text: str, spans: list) -> list[str]:  # type: ignore[type-arg]
    return [hit_text[s.start : s.end] for s in spans]


def test_sanctions_passage_ranks_first_with_highlights(seeds: SearchEngine) -> None:
    for mode in ("hybrid", "bm25"):
        top = seeds.query("S-400 sanctions", mode=mode).hits[0]
        assert "SU-35 fighter jets and S-400" in top.text
        assert "first foreign visit" not in top.text
        marked = _marked(top.text, top.highlights)
        assert marked.count("S-400") == 1 and marked.count("sanctions") == 1
        assert all(s.kind == "lexical" for s in top.highlights)
        assert '<mark class="lexical">S-400</mark>' in top.html


def test_hit_fields_and_offsets(seeds: SearchEngine, seeds_index: Path) -> None:
    result = seeds.query("S-400 sanctions", fusion=FusionOptions(method="rrf", rrf_k=60))
    top = result.hits[0]
    source = (Path(__file__).resolve().parent.parent / "seeds" / top.doc_id).read_text()
    assert source[top.start : top.end] == top.text
    assert top.title == "Sino-Russian cooperation contributes to global security: MoD"
    assert top.bm25 is not None and top.bm25.rank == 1
    assert top.vector is not None and top.vector.rank >= 1
    assert top.score == pytest.approx(1 / (60 + top.bm25.rank) + 1 / (60 + top.vector.rank))
    assert result.generation == 1
    assert [h.score for h in result.hits] == sorted((h.score for h in result.hits), reverse=True)


@pytest.mark.parametrize("mode", ["vector", "hybrid"])
def test_paraphrase_without_shared_words_finds_first_visit(seeds: SearchEngine, mode: str) -> None:
    top = seeds.query("defence chief's maiden trip abroad", mode=mode).hits[0]
    assert "first foreign visit" in top.text
    assert "S-400" not in top.text
    assert top.bm25 is None and top.highlights == []


def test_bm25_mode_never_loads_the_encoder(seeds_index: Path) -> None:
    engine = SearchEngine.open(seeds_index, encoder=None)
    assert engine.query("S-400", mode="bm25").hits
    assert engine.query_encoder.loaded is None


def test_fixture_corpus_exact_and_paraphrase(fixture: SearchEngine) -> None:
    exact = fixture.query(EXACT_QUERY).hits[0]
    assert exact.doc_id == "kitchen/bread.md" and exact.highlights
    assert fixture.query(EXACT_QUERY, mode="bm25").hits[0].doc_id == "kitchen/bread.md"
    assert fixture.query(PARAPHRASE_QUERY, mode="bm25").hits == []
    for mode in ("vector", "hybrid"):
        assert fixture.query(PARAPHRASE_QUERY, mode=mode).hits[0].doc_id == "garage/oil.txt"


def test_paging_and_per_doc(seeds: SearchEngine, fixture: SearchEngine) -> None:
    full = seeds.query("Russia China", k=6)
    page = seeds.query("Russia China", k=3, offset=3)
    assert [h.start for h in page.hits] == [h.start for h in full.hits[3:6]]
    capped = seeds.query("Russia China", k=10, per_doc=1)
    assert len(capped.hits) == 1
    many = fixture.query("growing food and engines", k=10, per_doc=1)
    assert len({h.doc_id for h in many.hits}) == len(many.hits)


def test_syntax_mode(seeds: SearchEngine) -> None:
    hits = seeds.query('"first foreign visit"', mode="bm25", syntax=True).hits
    assert len(hits) == 1 and "first foreign visit" in hits[0].text
    with pytest.raises(QuerySyntaxError):
        seeds.query("foo AND", syntax=True)
    with pytest.raises(QuerySyntaxError):
        seeds.query("(" * 17 + "x" + ")" * 17, syntax=True)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"text": "   "}, "empty"),
        ({"text": "x", "k": 0}, "k must be"),
        ({"text": "x", "k": 101}, "k must be"),
        ({"text": "x", "offset": -1}, "offset"),
        ({"text": "x", "offset": 2**31}, "offset"),
        ({"text": "x" * 1001}, "longer than"),
        ({"text": "bad\x00byte"}, "control"),
        ({"text": "x", "mode": "fuzzy"}, "unknown mode"),
        ({"text": "x", "per_doc": 0}, "per-doc"),
    ],
)
def test_bad_input_is_a_user_error(seeds: SearchEngine, kwargs: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(UserInputError, match=message):
        seeds.query(**kwargs)


def test_control_characters_are_unicodes_less_tab_and_line_breaks() -> None:
    refused = {chr(c) for c in range(sys.maxunicode + 1) if _CONTROLS.match(chr(c))}
    controls = {chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cc"}
    assert refused == controls - {"\t", "\n", "\r"}


def test_query_encoder_must_match_the_index_model(seeds_index: Path) -> None:
    engine = SearchEngine.open(seeds_index, encoder=HashEncoder())
    assert engine.query("S-400", mode="bm25").hits  # BM25 needs no encoder
    with pytest.raises(ModelMismatchError, match="rebuild"):
        engine.query("S-400", mode="hybrid")


def test_info(seeds: SearchEngine) -> None:
    info = seeds.info()
    assert info["generation"] == 1 and info["documents"] == 1
    assert info["passages"] == 11
    assert info["model"]["name"] == "all-MiniLM-L6-v2" and info["model"]["dimension"] == 384


def test_real_tokenizer_counts_whole_texts(real_encoder: Encoder) -> None:
    # tokenizer.json ships with truncation and padding to 128: counting must ignore both.
    assert real_encoder.count_tokens("word " * 1000) == 1000
    assert real_encoder.count_tokens("hello world") == 2


def test_long_paragraphs_fit_the_model_window(real_encoder: Encoder) -> None:
    from searchkit.ingest.passages import PassageSettings, split_passages
    from searchkit.records import Document

    text = " ".join(f"Finding number {i} concerns the hippocampal protein CREB." for i in range(80))
    settings = PassageSettings(25, real_encoder.max_tokens)
    passages = split_passages(Document("d", text), settings, real_encoder.count_tokens)
    assert len(passages) > 1
    assert all(real_encoder.count_tokens(p.text) <= real_encoder.max_tokens for p in passages)


def test_span_counts_from_word_counts_match_counting_each_span(
    real_encoder: Encoder,
) -> None:
    import random

    from searchkit.ingest.documents import iter_documents
    from searchkit.ingest.passages import PassageSettings, split_passages

    seed = next(iter_documents([SEEDS])).text
    text = seed + "\n\nNaïve café — “quoted” 中文字符, e.g. URLs like https://x.org/a?b=c.\x00 end"
    count = real_encoder.span_counter(text)
    tokenizer = real_encoder.load_tokenizer()  # type: ignore[attr-defined]

    def tokenized(piece: str) -> int:  # the tokenizer itself, with nothing cached
        return len(tokenizer.encode(piece, add_special_tokens=False).ids)

    words = [0, *(m.end() for m in re.finditer(r"\s+", text)), len(text)]
    picks = random.Random(7)
    for _ in range(300):
        start, end = sorted(picks.sample(words, 2))
        assert count(start, end) == tokenized(text[start:end])
        assert real_encoder.count_tokens(text[start:end]) == tokenized(text[start:end])
    for start, end in [(3, 40), (0, 17), (11, len(text) - 5)]:  # cuts inside words
        assert count(start, end) == tokenized(text[start:end])
    document = next(iter_documents([SEEDS]))
    settings = PassageSettings(25, 60)  # a small window, so that paragraphs get cut
    by_span = split_passages(document, settings, real_encoder.count_tokens, count_spans=None)
    in_place = split_passages(
        document, settings, real_encoder.count_tokens, real_encoder.span_counter(document.text)
    )
    assert by_span == in_place


def test_semantic_highlights_when_asked(seeds: SearchEngine) -> None:
    plain = seeds.query("defence chief's maiden trip abroad", k=3)
    assert plain.hits[0].highlights == []  # explaining costs encoder time: only when asked
    explained = seeds.query("defence chief's maiden trip abroad", k=3, explain=True)
    top = explained.hits[0]
    assert top.highlights and {s.kind for s in top.highlights} == {"semantic"}
    marked = " ".join(top.text[s.start : s.end] for s in top.highlights)
    assert "first foreign visit" in marked
    assert '<mark class="semantic">' in top.html
    # Hits with keyword matches keep their lexical marks and get no semantic ones.
    lexical = seeds.query("S-400 sanctions", k=1, explain=True).hits[0]
    assert {s.kind for s in lexical.highlights} == {"lexical"}
    # BM25 mode never loads the encoder, so it has nothing to explain with.
    assert all(not h.highlights or h.bm25 for h in seeds.query("Russia", mode="bm25").hits)


@pytest.mark.parametrize("mode", ["hybrid", "bm25"])
def test_without_highlights_hits_are_unmarked_and_ranked_alike(
    seeds: SearchEngine, mode: Mode
) -> None:
    text = "S-400 sanctions & the defence chief's maiden trip"
    marked = seeds.query(text, k=5, mode=mode, explain=True)
    plain = seeds.query(text, k=5, mode=mode, explain=True, highlight=False)
    kinds = {span.kind for hit in marked.hits for span in hit.highlights}
    assert kinds == ({"lexical", "semantic"} if mode == "hybrid" else {"lexical"})

    def ranking(result: SearchResult) -> list[tuple[str, int, float, float]]:
        return [(h.doc_id, h.start, h.score, h.relevance) for h in result.hits]

    assert ranking(plain) == ranking(marked)
    assert all(h.highlights == [] and h.html == html.escape(h.text) for h in plain.hits)
    assert (plain.explanation is None) == (mode == "bm25")  # the weights are still explained
