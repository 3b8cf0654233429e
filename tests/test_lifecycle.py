"""Rebuilds, verify, generations, rollback, filters and new sources (real tantivy and FAISS;
the fake encoder where only the build logic is under test)."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from searchkit import SearchEngine, build_index
from searchkit.build.lifecycle import generations, rollback, verify
from searchkit.cli import app
from searchkit.config import Settings
from searchkit.embed import Encoder
from searchkit.errors import BuildLockedError, IndexCorruptError, ShrinkRefusedError
from searchkit.ingest.documents import iter_documents
from searchkit.search.live import LiveEngine
from searchkit.storage.store import Store

from .conftest import HashEncoder, write_corpus


class OtherModel(HashEncoder):
    fingerprint = "other000"


def test_rebuild_reports_the_document_diff(
    tmp_path: Path, corpus: Path, hash_encoder: HashEncoder
) -> None:
    index = tmp_path / "index"
    first = build_index([corpus], index, encoder=hash_encoder)
    assert (first.added, first.changed, first.removed, first.reused) == (4, 0, 0, 0)
    (corpus / "garage" / "oil.txt").write_text(
        "Keeping an engine healthy\nChange the oil every 5,000 miles and the filter with it; "
        "synthetic oil lasts longer in cold weather and under heavy loads."
    )
    (corpus / "space" / "mars.txt").unlink()
    (corpus / "notes.txt").write_text("A new note about sourdough hydration and crumb structure.")
    second = build_index([corpus], index, encoder=hash_encoder)
    assert (second.added, second.changed, second.removed) == (1, 1, 1)
    assert second.encoded == 2  # the changed oil passage and the new note
    assert second.reused == first.passages - 2  # mars is gone, oil changed
    assert not second.model_changed


def test_model_change_encodes_everything(
    tmp_path: Path, corpus: Path, hash_encoder: HashEncoder
) -> None:
    index = tmp_path / "index"
    build_index([corpus], index, encoder=hash_encoder)
    report = build_index([corpus], index, encoder=OtherModel())
    assert report.model_changed and report.reused == 0 and report.encoded == report.passages
    with pytest.raises(Exception, match="rebuild"):
        SearchEngine.open(index, encoder=hash_encoder).query("oil", mode="vector")


def test_shrinking_needs_allow_shrink(
    tmp_path: Path, corpus: Path, hash_encoder: HashEncoder
) -> None:
    index = tmp_path / "index"
    build_index([corpus], index, encoder=hash_encoder)
    with pytest.raises(ShrinkRefusedError, match="--allow-shrink"):
        build_index([corpus / "space"], index, encoder=hash_encoder)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "blank.txt").write_text("   ")
    with pytest.raises(ShrinkRefusedError):
        build_index([empty], index, encoder=hash_encoder)
    assert Store(index).current() == 1
    assert build_index([corpus / "space"], index, encoder=hash_encoder, allow_shrink=True)


def test_verify_finds_size_and_checksum_problems(
    tmp_path: Path, corpus: Path, hash_encoder: HashEncoder
) -> None:
    index = tmp_path / "index"
    build_index([corpus], index, encoder=hash_encoder)
    assert verify(index, deep=True) == []
    embeddings = index / "generations" / "g000001" / "embeddings.f32"
    data = bytearray(embeddings.read_bytes())
    data[0] ^= 0xFF  # same size, other bytes: only the checksum can tell
    embeddings.write_bytes(bytes(data))
    assert verify(index) == []
    [problem] = verify(index, deep=True)
    assert "embeddings.f32" in problem.file and "checksum" in problem.detail
    assert "searchkit rebuild" in problem.fix
    (index / "generations" / "g000001" / "vectors.faiss").write_bytes(b"junk")
    problems = verify(index)
    assert any("vectors.faiss" in p.file and "bytes" in p.detail for p in problems)
    with pytest.raises(IndexCorruptError):
        SearchEngine.open(index, encoder=hash_encoder)


def test_verify_cli_exit_codes(tmp_path: Path, corpus: Path, hash_encoder: HashEncoder) -> None:
    index = tmp_path / "index"
    build_index([corpus], index, encoder=hash_encoder)
    runner = CliRunner()
    ok = runner.invoke(app, ["verify", "--index", str(index), "--deep"])
    assert ok.exit_code == 0 and "OK" in ok.stdout
    (index / "generations" / "g000001" / "passages.sqlite").write_bytes(b"")
    bad = runner.invoke(app, ["verify", "--index", str(index)])
    assert bad.exit_code == 1
    assert bad.stderr.startswith("error: g000001/passages.sqlite")


def test_generations_and_rollback(tmp_path: Path, corpus: Path, hash_encoder: HashEncoder) -> None:
    index = tmp_path / "index"
    build_index([corpus], index, encoder=hash_encoder)
    build_index([corpus / "kitchen"], index, encoder=hash_encoder, allow_shrink=True)
    listed = generations(index)
    assert [(g["generation"], g["live"], g["documents"]) for g in listed] == [
        (1, False, 4),
        (2, True, 1),
    ]
    assert listed[0]["sources"] == [str(corpus.resolve())]
    assert rollback(index) == 1
    assert SearchEngine.open(index, encoder=hash_encoder).info()["documents"] == 4
    runner = CliRunner()
    back = runner.invoke(app, ["rollback", "2", "--index", str(index)])
    assert back.exit_code == 0 and Store(index).current() == 2
    missing = runner.invoke(app, ["rollback", "7", "--index", str(index)])
    assert missing.exit_code == 2 and "no generation 7 to roll back to" in missing.stderr
    listing = runner.invoke(app, ["generations", "--index", str(index), "--json"])
    assert [g["live"] for g in json.loads(listing.stdout)] == [False, True]


def test_second_build_is_refused_at_once_naming_the_holder(
    tmp_path: Path, corpus: Path, hash_encoder: HashEncoder
) -> None:
    index = tmp_path / "index"
    build_index([corpus], index, encoder=hash_encoder)
    with Store(index).build_lock():
        started = time.perf_counter()
        with pytest.raises(BuildLockedError):
            build_index([corpus], index, encoder=hash_encoder)
        assert time.perf_counter() - started < 2
        result = CliRunner().invoke(app, ["rebuild", "--index", str(index)])
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0
    assert f"pid {os.getpid()}" in result.stderr


def test_incremental_rebuild_of_200_documents_encodes_one_file(
    tmp_path: Path, real_encoder: Encoder
) -> None:
    topics = ["rivers", "glaciers", "volcanoes", "deserts", "forests", "coral reefs", "tundra"]
    docs = {
        f"notes/{i:03d}.txt": (
            f"Field note {i}\nObservation {i} describes {topics[i % len(topics)]} seen on "
            f"expedition day {i}, with measurements of temperature, humidity and wind recorded "
            f"every hour by the team, and photographs of the site taken at dawn and dusk."
        )
        for i in range(200)
    }
    corpus = write_corpus(tmp_path / "corpus", docs)
    index = tmp_path / "index"
    build_index([corpus], index, encoder=real_encoder)
    engine = SearchEngine.open(index, encoder=real_encoder)
    before = engine.query("glacier humidity measurements", k=10)
    (corpus / "notes" / "007.txt").write_text(
        "Field note 7\nA chess engine evaluates millions of positions per second and prunes "
        "the search tree with alpha-beta cutoffs and transposition tables. Opening books and "
        "endgame tablebases complete it."
    )
    report = build_index([corpus], index, encoder=real_encoder)
    assert report.encoded == 1 and report.reused == 199
    assert (report.added, report.changed, report.removed) == (0, 1, 0)
    after = SearchEngine.open(index, encoder=real_encoder).query(
        "glacier humidity measurements", k=10
    )
    # Same passages in the same order, with the very same vectors (BM25 scores move a little:
    # corpus statistics changed with the edited file).
    assert [(h.doc_id, h.start, h.vector) for h in after.hits] == [
        (h.doc_id, h.start, h.vector) for h in before.hits
    ]


def _minimal_pdf(pages: list[str]) -> bytes:
    """A valid PDF with one line of Helvetica text per page, written by hand."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", ""]
    kids = []
    for i, text in enumerate(pages):
        page_id, content_id = 4 + 2 * i, 5 + 2 * i
        kids.append(f"{page_id} 0 R")
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET"
        objects += [
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {content_id} 0 R >>",
            f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream",
        ]
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(pages)} >>"
    objects.insert(2, "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{offset:010d} 00000 n \n" for offset in offsets).encode()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return out


def test_pdf_pages_are_kept_with_passages(tmp_path: Path, hash_encoder: HashEncoder) -> None:
    pages = [
        "Volcanic ash clouds ground aircraft because ash melts inside jet engines and clogs them.",
        "Glaciers carve U-shaped valleys as they move slowly downhill under their own weight.",
    ]
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "earth.pdf").write_bytes(_minimal_pdf(pages))
    [document] = list(iter_documents([tmp_path / "docs"]))
    assert document.pages == (0, len(pages[0]) + 2)
    assert document.metadata["type"] == "pdf"
    index = tmp_path / "index"
    build_index([tmp_path / "docs"], index, encoder=hash_encoder, reuse=False)
    engine = SearchEngine.open(index, encoder=hash_encoder)
    hit = engine.query("glaciers valleys", mode="bm25").hits[0]
    assert hit.page == 2 and hit.text == pages[1]
    assert engine.query("volcanic ash", mode="bm25").hits[0].page == 1
    shown = CliRunner().invoke(app, ["query", "glaciers", "-m", "bm25", "--index", str(index)])
    assert shown.exit_code == 0 and "earth.pdf [page 2, " in shown.stdout, shown.output


def test_a_pdf_without_a_metadata_title_is_titled_by_its_first_line_or_name(
    tmp_path: Path,
) -> None:
    (tmp_path / "docs").mkdir()
    body = "Glaciers carve U-shaped valleys as they move slowly downhill under their own weight."
    (tmp_path / "docs" / "survey.pdf").write_bytes(_minimal_pdf(["Glacier Survey 2024.", body]))
    (tmp_path / "docs" / "notes.pdf").write_bytes(_minimal_pdf([body * 2]))
    titles = {d.doc_id: d.title for d in iter_documents([tmp_path / "docs"])}
    assert titles == {"survey.pdf": "Glacier Survey 2024", "notes.pdf": "notes"}


def test_filters_apply_inside_both_legs(fixture_index: Path, real_encoder: Encoder) -> None:
    engine = SearchEngine.open(fixture_index, encoder=real_encoder)
    for mode in ("bm25", "vector", "hybrid"):
        hits = engine.query(
            "engine oil, garden plants, bread", mode=mode, path_prefix="garage/"
        ).hits
        assert hits and {h.doc_id for h in hits} == {"garage/oil.txt"}
    typed = engine.query("growing things", filters={"type": "html"}).hits
    assert typed and {h.doc_id for h in typed} == {"garden/tomatoes.html"}
    assert engine.query("anything", filters={"type": "docx"}).hits == []


def test_metadata_filters_on_beir_records(tmp_path: Path, hash_encoder: HashEncoder) -> None:
    records = [
        {"_id": "a", "title": "Old", "text": "Aspirin reduces fever.", "metadata": {"year": 1999}},
        {"_id": "b", "title": "New", "text": "Aspirin thins blood.", "metadata": {"year": 2021}},
    ]
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("\n".join(json.dumps(r) for r in records))
    build_index([corpus], tmp_path / "index", encoder=hash_encoder)
    engine = SearchEngine.open(tmp_path / "index", encoder=hash_encoder)
    assert [h.doc_id for h in engine.query("aspirin", filters={"year": "2021"}).hits] == ["b"]
    result = CliRunner().invoke(
        app, ["query", "aspirin", "-m", "bm25", "--filter", "year=1999", "--json",
              "--index", str(tmp_path / "index")],
    )  # fmt: skip
    assert [h["doc_id"] for h in json.loads(result.stdout)["hits"]] == ["a"]
    bad = CliRunner().invoke(app, ["query", "x", "--filter", "year", "--index", str(tmp_path)])
    assert bad.exit_code == 2 and "KEY=VALUE" in bad.stderr


def test_watch_rebuilds_after_changes(tmp_path: Path, corpus: Path) -> None:
    from searchkit.build.watch import watch_sources
    from searchkit.config import Settings

    index = tmp_path / "index"
    reports = []
    stop = threading.Event()
    settings = Settings(index_dir=index)
    thread = threading.Thread(
        target=watch_sources,
        args=([corpus], index, settings, reports.append),
        kwargs={"stop": stop, "debounce_ms": 200},
        daemon=True,
    )
    thread.start()
    try:
        _wait_for(lambda: len(reports) >= 1)
        (corpus / "new.md").write_text("# Kayaks\n\nSea kayaks track straight in wind and waves.")
        _wait_for(lambda: len(reports) >= 2)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert reports[1].added == 1 and reports[1].encoded == 1
    assert Store(index).current() == 2


def _wait_for(condition, timeout: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.1)


def test_the_engine_in_hand_is_handed_out_only_while_it_is_live(
    tmp_path: Path, corpus: Path, hash_encoder: HashEncoder
) -> None:
    """An event loop takes the engine in hand without blocking: never while a new version is
    due (that is opened on a thread, by ``get``), nor while another caller holds the lock."""
    index = tmp_path / "index"
    build_index([corpus], index, encoder=hash_encoder)
    live = LiveEngine(index, Settings(), lambda _: SearchEngine.open(index, encoder=hash_encoder))
    held = live.in_hand()
    assert held is not None and held[1].generation == 1
    (corpus / "notes.txt").write_text("A new note about sourdough hydration and crumb structure.")
    build_index([corpus], index, encoder=hash_encoder)
    assert live.in_hand() is None  # generation 2 is due: only get() opens it
    number, engine = live.get()
    assert engine.generation == 2 and number == held[0] + 1
    assert live.in_hand() == (number + 1, engine)
    with live._lock:  # a thread opening a version holds the lock
        assert live.in_hand() is None


def test_a_rebuild_start_stuck_behind_its_lock_is_a_409(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from filelock import FileLock

    from searchkit.build import jobs

    monkeypatch.setattr(jobs, "START_LOCK_S", 0.05)
    jobs.jobs_dir(tmp_path).mkdir()
    held = FileLock(jobs.jobs_dir(tmp_path) / ".start.lock")
    holding, done = threading.Event(), threading.Event()
    holder = threading.Thread(
        target=lambda: (held.acquire(), holding.set(), done.wait(), held.release())
    )
    holder.start()
    try:
        assert holding.wait(10)
        with pytest.raises(BuildLockedError, match="try again"):
            jobs.start_rebuild(tmp_path)
    finally:
        done.set()
        holder.join()
