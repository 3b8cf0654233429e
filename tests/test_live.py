"""Live documents: writes against a plain dict as the model, the log's durability, what
rebuilds keep, bad input, and the HTTP and CLI interfaces over the same writer."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from searchkit import SearchEngine, build_index
from searchkit.build.writer import IndexWriter
from searchkit.config import Settings
from searchkit.embed import Encoder
from searchkit.errors import NeedsClusterError, SourceError, UserInputError
from searchkit.storage.live import LiveStore
from searchkit.storage.sharded import shard_of
from searchkit.web import create_app

from .conftest import HashEncoder, build_sharded, write_corpus

FILES = {
    "a.txt": "Alpha\n\nEngine oil keeps a motor cool and clean: fileaaa.",
    "b.txt": "Beta\n\nTomato plants want six hours of sun: filebbb.",
}
TOKEN = "live-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _home(root: Path) -> Path:
    build_index([write_corpus(root / "docs", FILES)], root / "index", encoder=HashEncoder())
    return root / "index"


def _token(doc_id: str, version: int) -> str:
    """A word only this version of this document holds."""
    return f"tok{doc_id.replace('.', '')}v{version}"


def _found(engine: SearchEngine, word: str) -> list[str]:
    return [hit.doc_id for hit in engine.query(word, mode="bm25", k=50).hits]


IDS = st.sampled_from(["a.txt", "b.txt", "x1", "x2", "x3"])
OPS = st.lists(st.tuples(st.sampled_from(["upsert", "delete"]), IDS), min_size=1, max_size=10)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OPS, st.integers(1, 4))
def test_writes_match_a_dict_after_every_refresh(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[str, str]], compact_at: int
) -> None:
    home = _home(tmp_path_factory.mktemp("live"))
    writer = IndexWriter(home, Settings(compact_documents=compact_at), HashEncoder())
    model = {doc_id: _token(doc_id, 0) for doc_id in FILES}
    model.update({"a.txt": "fileaaa", "b.txt": "filebbb"})
    for version, (op, doc_id) in enumerate(ops, start=1):
        if op == "upsert":
            word = _token(doc_id, version)
            writer.upsert([{"id": doc_id, "title": doc_id, "text": f"Some text, {word}."}])
            model[doc_id] = word
        else:
            writer.delete([doc_id])
            model.pop(doc_id, None)
        writer.flush()
        engine = SearchEngine.open(home, encoder=HashEncoder())
        for known, word in model.items():
            assert _found(engine, word) == [known], (known, word)
            assert engine.document(known) is not None
        for gone in {"a.txt", "b.txt", "x1", "x2", "x3"} - set(model):
            assert engine.document(gone) is None, gone
        assert engine.info()["documents"] == len(model)
    # A rebuild from the folder keeps the live writes: live documents are their own source.
    build_index([home.parent / "docs"], home, encoder=HashEncoder(), allow_shrink=True)
    engine = SearchEngine.open(home, encoder=HashEncoder())
    assert {doc_id for doc_id in model if _found(engine, model[doc_id])} == set(model)
    assert engine.info()["documents"] == len(model)


def test_replacing_unchanged_passages_encodes_nothing(tmp_path: Path) -> None:
    writer = IndexWriter(_home(tmp_path), encoder=HashEncoder())
    writer.upsert([{"id": "x1", "text": "Otters hold hands while they sleep."}])
    assert writer.flush().encoded == 1  # type: ignore[union-attr]
    writer.upsert([{"id": "x1", "text": "Otters hold hands while they sleep."}])
    report = writer.flush()
    assert report is not None and report.encoded == 0
    assert writer.flush() is None  # nothing new: nothing published


def test_a_torn_last_line_was_never_acknowledged(tmp_path: Path) -> None:
    live = LiveStore(tmp_path)
    assert live.append([{"id": "d1", "text": "one"}], []) == 1
    with (tmp_path / "live" / "log").open("ab") as log:
        log.write(b'120:0badc0de:{"seq": 2, "ups')  # a crash in the middle of the next write
    assert [batch.seq for batch in LiveStore(tmp_path).batches(0)] == [1]
    assert LiveStore(tmp_path).append([], ["d1"]) == 2  # the torn line is replaced
    assert [batch.seq for batch in LiveStore(tmp_path).batches(0)] == [1, 2]


@pytest.mark.parametrize(
    ("document", "complaint"),
    [
        ({"text": "no id"}, "needs an id"),
        ({"id": "d", "text": "  "}, "has no text"),
        ({"id": "x" * 600, "text": "t"}, "longer than 512"),
        ({"id": "a\nb", "text": "t"}, "control characters"),
        ({"id": "d", "text": "t", "metadata": {"tags": ["a"]}}, "string, number or boolean"),
        ({"id": "d", "text": "t", "colour": "red"}, "unknown document field 'colour'"),
    ],
)
def test_bad_documents_are_refused_and_nothing_is_written(
    tmp_path: Path, document: dict[str, object], complaint: str
) -> None:
    writer = IndexWriter(_home(tmp_path), encoder=HashEncoder())
    with pytest.raises(UserInputError, match=complaint):
        writer.upsert([{"id": "fine", "text": "A fine document."}, document])
    assert writer.logged() == 0


@pytest.fixture
def client(tmp_path: Path, real_encoder: Encoder) -> TestClient:
    build_index([write_corpus(tmp_path / "docs", FILES)], tmp_path / "index", encoder=real_encoder)
    settings = Settings(index_dir=tmp_path / "index", admin_token=TOKEN, max_document_bytes=2000)
    return TestClient(create_app(settings), raise_server_exceptions=False)


def test_http_writes_are_acknowledged_then_visible_together(client: TestClient) -> None:
    with client:
        put = client.put(
            "/documents/otter", json={"text": "Sea otters sleep afloat."}, headers=AUTH
        )
        assert put.status_code == 202 and put.json()["seq"] == 1 and not put.json()["visible"]
        lines = "\n".join(
            json.dumps({"id": f"n{i}", "text": f"Bulk document {i} about kelp."}) for i in range(5)
        )
        bulk = client.post(
            "/documents?refresh=wait",
            content=lines,
            headers={**AUTH, "content-type": "application/x-ndjson"},
        )
        assert bulk.status_code == 200 and bulk.json()["visible"]
        generation = bulk.json()["generation"]
        assert bulk.headers["X-Index-Generation"] == str(generation)
        found = client.get("/search", params={"q": "kelp", "mode": "bm25", "k": 20}).json()
        assert sorted(hit["doc_id"] for hit in found["hits"]) == [f"n{i}" for i in range(5)]
        assert client.get("/documents/otter").status_code == 200  # written before: shown too
        gone = client.delete("/documents/a.txt?refresh=wait", headers=AUTH)
        assert gone.status_code == 200 and gone.json()["generation"] > generation
        assert client.get("/documents/a.txt").status_code == 404
        assert client.get("/search", params={"q": "fileaaa", "mode": "bm25"}).json()["hits"] == []
        meaning = client.get("/search", params={"q": "engine oil for a motor", "mode": "vector"})
        assert "a.txt" not in {hit["doc_id"] for hit in meaning.json()["hits"]}  # both legs


def test_http_bad_writes_are_4xx_and_write_nothing(client: TestClient) -> None:
    with client:
        ndjson = {**AUTH, "content-type": "application/x-ndjson"}
        bad_line = '{"id": "ok", "text": "fine"}\n{"id": "broken", \n'
        answer = client.post("/documents", content=bad_line, headers=ndjson)
        assert answer.status_code == 400 and answer.json()["detail"].startswith("line 2 ")
        long_line = json.dumps({"id": "big", "text": "x" * 80_000})
        assert client.post("/documents", content=long_line, headers=ndjson).status_code == 413
        too_big = client.put("/documents/big", json={"text": "x" * 3000}, headers=AUTH)
        assert too_big.status_code == 400 and "limit is 2000" in too_big.json()["detail"]
        assert client.put("/documents/d", json={"text": "t"}).status_code == 401
        flat = client.put("/documents/d", json={"text": "t", "metadata": {"k": {}}}, headers=AUTH)
        assert flat.status_code == 422 and isinstance(flat.json()["detail"], str)
        assert client.app.state.writer.logged() == 0  # type: ignore[attr-defined]


def test_cli_add_and_delete(tmp_path: Path, real_encoder: Encoder) -> None:
    index = tmp_path / "index"
    (tmp_path / "docs.jsonl").write_text(
        json.dumps({"id": "d1", "title": "Otters", "text": "Sea otters hold hands."}) + "\n"
        + json.dumps({"_id": "d2", "text": "Kelp forests shelter otters."}) + "\n"
    )  # fmt: skip

    def searchkit(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "searchkit", *args, "--index", str(index)],
            input=stdin, capture_output=True, text=True, check=False,
        )  # fmt: skip

    added = searchkit("add", str(tmp_path / "docs.jsonl"))
    assert added.returncode == 0 and "2 documents added" in added.stdout, added.stderr
    assert (
        searchkit("add", "-", stdin='{"id": "d3", "text": "Beavers build dams."}\n').returncode == 0
    )
    deleted = searchkit("delete", "d1", "--json")
    assert deleted.returncode == 0 and json.loads(deleted.stdout)["documents"] == 1
    unknown = searchkit("delete", "never-written")  # no error, and no claim that it existed
    assert unknown.returncode == 0 and "1 document id deleted where present" in unknown.stdout
    hits = json.loads(searchkit("query", "otters", "-m", "bm25", "--json").stdout)["hits"]
    assert [hit["doc_id"] for hit in hits] == ["d2"]
    broken = searchkit("add", "-", stdin='{"id": "d4", "text": "fine"}\nnot json\n')
    assert broken.returncode == 2 and "line 2 is not valid JSON" in broken.stderr
    (tmp_path / "latin1.jsonl").write_bytes(b'{"id": "d5", "text": "caf\xe9"}\n')
    latin1 = searchkit("add", str(tmp_path / "latin1.jsonl"))
    assert latin1.returncode == 2 and "is not UTF-8 (byte 25)" in latin1.stderr
    assert searchkit("verify", "--deep").returncode == 0


def test_writes_to_a_sharded_home_go_to_their_shards_and_show_at_once(tmp_path: Path) -> None:
    cluster = build_sharded(
        write_corpus(tmp_path / "docs", FILES), tmp_path / "sharded", HashEncoder()
    )
    writer = IndexWriter(cluster.home, Settings(compact_documents=3), HashEncoder())
    ids = [f"s{i}" for i in range(8)]
    writer.upsert([{"id": doc_id, "text": f"Sharded {doc_id} word{doc_id}."} for doc_id in ids])
    writer.delete(["a.txt"])
    before = cluster.current()
    writer.flush()
    assert cluster.current() == (before or 0) + 1  # one cluster manifest shows the batch
    engine = SearchEngine.open(cluster.home, encoder=HashEncoder())
    for doc_id in ids:
        assert _found(engine, f"word{doc_id}") == [doc_id]
        shard = shard_of(doc_id, 2)
        written = {d.doc_id for d in LiveStore(cluster.shard_home(shard)).documents()}
        assert doc_id in written  # on the shard shard_of names
    assert engine.document("a.txt") is None and _found(engine, "fileaaa") == []
    assert engine.info()["documents"] == len(ids) + 1
    for round_ in range(3):  # past compact_documents: shards compact, searches still agree
        writer.upsert([{"id": f"t{round_}-{i}", "text": f"More t{round_}x{i}."} for i in range(3)])
        writer.flush()
    engine = SearchEngine.open(cluster.home, encoder=HashEncoder())
    assert _found(engine, "t2x1") == ["t2-1"] and _found(engine, "words3") == ["s3"]
    assert engine.info()["documents"] == len(ids) + 1 + 9
    with pytest.raises(UserInputError, match="sharded index"):
        writer.compact()  # a fold of the cluster's log into its home would lose its writes
    with pytest.raises(NeedsClusterError, match="--ray-address"):
        build_index([tmp_path / "docs"], cluster.home, encoder=HashEncoder())
    assert not (cluster.home / "CURRENT").exists()
    done = subprocess.run(
        [sys.executable, "-m", "searchkit", "verify", "--index", str(cluster.home)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_first_write_never_starts_a_log_among_other_files(tmp_path: Path) -> None:
    notes = write_corpus(tmp_path / "notes", {"a.txt": "A note."})
    with pytest.raises(UserInputError, match=r"holds other files \(a.txt\)"):
        IndexWriter(notes, Settings(), HashEncoder()).upsert([{"id": "x", "text": "X."}])
    assert [p.name for p in notes.iterdir()] == ["a.txt"]


def test_a_put_body_is_limited_as_a_document_not_as_a_query(client: TestClient) -> None:
    with client:
        settings = client.app.state.settings  # type: ignore[attr-defined]
        over_query_limit = {"text": "otters " * (settings.max_body_bytes // 7 + 10)}
        answer = client.put("/documents/long", json=over_query_limit, headers=AUTH)
        # Past the 16 KiB query limit, the document's own limit (2,000 bytes here) answers.
        assert answer.status_code == 400 and "limit is 2000" in answer.json()["detail"]
        fits = client.put("/documents/long?refresh=wait", json={"text": "otters " * 250},
                          headers=AUTH)  # fmt: skip
        assert fits.status_code == 200


def test_a_compaction_that_fails_leaves_the_delta_serving(tmp_path: Path) -> None:
    home = _home(tmp_path)
    writer = IndexWriter(home, Settings(compact_documents=1), HashEncoder())
    shutil.rmtree(tmp_path / "docs")  # the sources are gone: a compaction cannot read them
    writer.upsert([{"id": f"x{i}", "text": f"Note x{i}word."} for i in range(2)])
    with pytest.raises(SourceError, match="source not found"):
        writer.flush()  # the delta is published first; the compaction after it fails
    writer.upsert([{"id": "x9", "text": "Note x9word."}])
    writer.flush()  # no second try right away: the delta keeps serving
    writer = IndexWriter(home, Settings(compact_documents=1), HashEncoder())  # a fresh retry clock
    seq = writer.upsert([{"id": "x10", "text": "Note x10word."}])
    assert writer.wait_visible(seq) is not None  # its compaction fails; the write still shows
    assert _found(SearchEngine.open(home, encoder=HashEncoder()), "x10word") == ["x10"]
    engine = SearchEngine.open(home, encoder=HashEncoder())
    assert [_found(engine, f"x{i}word") for i in (0, 1, 9)] == [["x0"], ["x1"], ["x9"]]
