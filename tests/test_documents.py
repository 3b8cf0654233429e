from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from searchkit.errors import SourceError
from searchkit.ingest.documents import IngestStats, id_base, iter_documents

from .conftest import FIXTURE_DOCS, SEEDS, write_corpus


def test_seed_article_title_and_body() -> None:
    [document] = list(iter_documents([SEEDS]))
    assert document.doc_id == "000_f93c24d53a7b0e50.txt"
    assert document.title.startswith("Sino-Russian cooperation")
    assert document.text[document.body_start :].startswith("China underlines")


def test_folder_tree_ids_titles_and_html(tmp_path: Path) -> None:
    root = write_corpus(tmp_path / "docs", FIXTURE_DOCS)
    documents = {d.doc_id: d for d in iter_documents([root])}
    assert set(documents) == set(FIXTURE_DOCS)
    assert documents["kitchen/bread.md"].title == "Baking sourdough bread"
    html = documents["garden/tomatoes.html"]
    assert html.title == "Growing tomatoes"
    assert "hidden" not in html.text and "<p>" not in html.text
    assert "Tomato plants need at least six hours" in html.text


def test_html_title_falls_back_to_first_heading(tmp_path: Path) -> None:
    (tmp_path / "a.htm").write_text("<body><h2>Only a heading</h2><p>Some text here.</p></body>")
    [document] = list(iter_documents([tmp_path]))
    assert document.title == "Only a heading"
    assert document.text.split("\n\n") == ["Only a heading", "Some text here."]


def test_several_roots_prefix_ids_with_root_name(tmp_path: Path) -> None:
    first = write_corpus(tmp_path / "one", {"a.txt": "Alpha text here."})
    second = write_corpus(tmp_path / "two", {"a.txt": "Beta text here."})
    ids = [d.doc_id for d in iter_documents([first, second])]
    assert ids == ["one/a.txt", "two/a.txt"]


def test_beir_corpus(tmp_path: Path) -> None:
    records = [
        {"_id": "d1", "title": "T1", "text": "First abstract.", "metadata": {"year": 2020}},
        {"_id": 2, "title": "", "text": "Second abstract."},
        {"_id": "d3", "title": "Empty", "text": ""},
    ]
    path = tmp_path / "corpus.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\nnot json\n")
    stats = IngestStats()
    documents = list(iter_documents([path], stats))
    assert [(d.doc_id, d.title, d.text) for d in documents] == [
        ("d1", "T1", "First abstract."),
        ("2", "", "Second abstract."),
    ]
    assert documents[0].metadata == {"year": 2020}
    assert len(stats.skipped) == 2


def test_binary_empty_and_bad_bytes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02 data")
    (tmp_path / "empty.md").write_text("   \n")
    latin1 = "Caf\xe9 cr\xe8me\n\nLe caf\xe9 cr\xe8me est une boisson, apr\xe8s le d\xeener."
    (tmp_path / "latin1.txt").write_bytes(latin1.encode("latin-1"))
    russian = "Озеро Байкал\n\nНа озере Байкал зимой лёд толщиной больше метра."
    (tmp_path / "russian.txt").write_bytes(russian.encode("cp1251"))
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    stats = IngestStats()
    with caplog.at_level(logging.WARNING, logger="searchkit"):
        documents = list(iter_documents([tmp_path], stats))
    assert [d.doc_id for d in documents] == ["latin1.txt", "russian.txt"]
    assert [d.text for d in documents] == [latin1, russian]
    assert stats.recoded == {"latin1.txt": "cp1252", "russian.txt": "cp1251"}
    assert stats.replaced_chars == 0
    assert sorted(stats.skipped) == ["binary.txt", "empty.md"]
    assert sum("skipped" in r.message for r in caplog.records) == 2
    warned = [r.getMessage() for r in caplog.records if "not UTF-8" in r.getMessage()]
    assert warned == ["latin1.txt is not UTF-8: read as cp1252 (detected)",
                      "russian.txt is not UTF-8: read as cp1251 (detected)"]  # fmt: skip


def test_symlinks_never_leave_the_root(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("Secret text outside the root.")
    root = write_corpus(tmp_path / "root", {"inside.txt": "Inside text."})
    (root / "escape.txt").symlink_to(outside)
    (root / "linkdir").symlink_to(tmp_path, target_is_directory=True)
    stats = IngestStats()
    ids = [d.doc_id for d in iter_documents([root], stats)]
    assert ids == ["inside.txt"]
    assert stats.skipped == ["escape.txt"]


def test_a_file_that_cannot_be_read_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_corpus(tmp_path / "root", {"gone.txt": "Removed mid-walk.", "kept.txt": "Kept."})
    read_bytes = Path.read_bytes

    def vanishing(path: Path) -> bytes:  # as if deleted between the walk and the read
        if path.name == "gone.txt":
            raise FileNotFoundError(2, "No such file or directory")
        return read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", vanishing)
    stats = IngestStats()
    assert [d.doc_id for d in iter_documents([root], stats)] == ["kept.txt"]
    assert stats.skipped == ["gone.txt"]


def test_missing_source_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="source not found"):
        list(iter_documents([tmp_path / "nope"]))


def test_htm_is_html_and_a_broken_jsonl_line_is_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    page = "<html><head><title>Old page</title></head><body><p>Hi there.</p></body></html>"
    (tmp_path / "page.htm").write_text(page)
    (tmp_path / "corpus.jsonl").write_text('{"_id": "a", "text": "Fine."}\n{"_id": "b", "text": \n')
    with caplog.at_level(logging.WARNING, logger="searchkit"):
        documents = {d.doc_id: d for d in iter_documents([tmp_path], IngestStats())}
    assert documents["page.htm"].metadata["type"] == "html"
    assert "invalid JSON at line 2" in caplog.text


def test_ids_are_paths_below_the_deepest_folder_holding_every_source(tmp_path: Path) -> None:
    first = write_corpus(tmp_path / "a" / "docs", {"notes.txt": "Alpha notes here."})
    second = write_corpus(tmp_path / "b" / "docs", {"notes.txt": "Beta notes here."})
    ids = [d.doc_id for d in iter_documents([first, second])]
    assert ids == ["a/docs/notes.txt", "b/docs/notes.txt"]  # no clash, the same id every time
    assert [d.doc_id for d in iter_documents([first / "notes.txt"])] == ["notes.txt"]
    # A base that holds every source is kept: part of an indexed folder keeps its ids.
    assert id_base([first], previous=tmp_path) == tmp_path
    assert [d.doc_id for d in iter_documents([first], base=tmp_path)] == ["a/docs/notes.txt"]
    assert id_base([first], previous=second) == first
