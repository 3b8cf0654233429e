from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from searchkit.ingest.documents import iter_documents
from searchkit.ingest.passages import PassageSettings, estimate_tokens, split_passages
from searchkit.records import Document

from .conftest import SEEDS


def _seed_document() -> Document:
    return next(iter_documents([SEEDS]))


def test_seed_paragraphs_are_lines_and_round_trip() -> None:
    document = _seed_document()
    passages = split_passages(document)
    assert passages, "the seed article yields passages"
    for passage in passages:
        assert document.text[passage.start : passage.end] == passage.text
    # The title line is the title, not part of any passage.
    assert document.title == "Sino-Russian cooperation contributes to global security: MoD"
    assert all(p.start >= document.body_start for p in passages)
    # Each long line is its own passage: the sanctions paragraph stands apart from the visit one.
    sanctions = [p for p in passages if "S-400" in p.text]
    assert len(sanctions) == 1
    assert sanctions[0].text.startswith("General Li Shangfu has been under US sanctions")
    assert "first foreign visit" not in sanctions[0].text


def test_short_paragraphs_join_a_neighbour() -> None:
    document = _seed_document()
    passages = split_passages(document)
    read_more = [p for p in passages if "Read more: China to never accept" in p.text]
    assert len(read_more) == 1
    assert len(read_more[0].text.split()) >= 25
    assert all(len(p.text.split()) >= 25 for p in passages)


def test_blank_line_paragraphs() -> None:
    text = ("alpha " * 30).strip() + "\nstill the same paragraph\n\n" + ("beta " * 30).strip()
    passages = split_passages(Document("d", text))
    assert [p.text.split()[0] for p in passages] == ["alpha", "beta"]
    assert "still the same paragraph" in passages[0].text


def test_long_paragraph_splits_at_sentences_and_never_truncates() -> None:
    sentences = [f"Sentence number {i} talks about topic {i} at some length." for i in range(60)]
    text = " ".join(sentences)
    settings = PassageSettings(min_words=5, max_tokens=40)
    passages = split_passages(Document("d", text), settings, count_tokens=lambda t: len(t.split()))
    assert len(passages) > 1
    assert all(len(p.text.split()) <= 40 for p in passages)
    assert all(p.text.endswith(".") for p in passages)  # cut at sentence ends
    covered = " ".join(p.text for p in passages)
    assert covered.split() == text.split()  # nothing dropped


def test_over_long_sentence_splits_at_words() -> None:
    text = " ".join(f"w{i}" for i in range(100))
    settings = PassageSettings(min_words=1, max_tokens=30)
    passages = split_passages(Document("d", text), settings, count_tokens=lambda t: len(t.split()))
    assert all(len(p.text.split()) <= 30 for p in passages)
    assert " ".join(p.text for p in passages).split() == text.split()


@given(
    st.lists(
        st.text(alphabet=st.sampled_from("ab .\n\t!?é"), min_size=0, max_size=80),
        min_size=1,
        max_size=8,
    )
)
def test_offsets_always_round_trip(chunks: list[str]) -> None:
    text = "\n\n".join(chunks)
    document = Document("d", text)
    settings = PassageSettings(min_words=3, max_tokens=12)
    previous_end = 0
    for passage in split_passages(document, settings, estimate_tokens):
        assert text[passage.start : passage.end] == passage.text
        assert passage.text.strip() == passage.text and passage.text
        assert passage.start >= previous_end
        previous_end = passage.end


def test_pieces_fit_even_when_counts_do_not_add_up() -> None:
    # A tokenizer whose count of joined text exceeds the sum of its parts: packing by sums
    # would overflow, so the check after packing must re-pack those pieces exactly.
    def count(text: str) -> int:
        words = len(text.split())
        return words + words // 4

    text = " ".join(f"Sentence {i} has five words." for i in range(40))
    settings = PassageSettings(min_words=1, max_tokens=30)
    passages = split_passages(Document("d", text), settings, count_tokens=count)
    assert all(count(p.text) <= 30 for p in passages)
    assert " ".join(p.text for p in passages).split() == text.split()
