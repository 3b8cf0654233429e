"""The query contract, held by a local index and a 2-shard home of the same corpus alike.

Every test runs against both kinds through the same engine, CLI and HTTP calls, with the same
assertions: they share one pipeline, so anything one kind does the other does too. The shards
are searched in this process (the Ray-free fan-out); the real model, tantivy and FAISS answer.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from searchkit import SearchEngine, build_index
from searchkit.build.jobs import ACTIVE
from searchkit.cli import app
from searchkit.config import Settings
from searchkit.embed import Encoder
from searchkit.errors import ModelMismatchError, QuerySyntaxError, UserInputError
from searchkit.sharded.precomputed import PrecomputedEncoder, stored_vectors
from searchkit.storage.store import Store
from searchkit.web import create_app

from .conftest import (
    EXACT_QUERY,
    FIXTURE_DOCS,
    PARAPHRASE_QUERY,
    SEEDS,
    HashEncoder,
    build_sharded,
    write_corpus,
)

KINDS = ["local", "sharded"]
QUERIES = ["S-400 sanctions", EXACT_QUERY, PARAPHRASE_QUERY, "tomato plants", "Mars rover"]


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory, real_encoder: Encoder) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("contract")
    docs = {**FIXTURE_DOCS, "news/seed.txt": next(SEEDS.iterdir()).read_text()}
    corpus = write_corpus(root / "docs", docs)
    store = build_sharded(corpus, root / "sharded", real_encoder, shards=2)
    manifest = store.manifest(store.require_current())
    assert all(entry["counts"]["documents"] for entry in manifest["shards"])  # both hold some
    # The local index takes the shards' vectors: int8 encodings depend a little on the batch a
    # text was encoded in, and only the index kind may differ here.
    same_vectors = PrecomputedEncoder(real_encoder, stored_vectors(store.home, real_encoder))
    build_index([corpus], root / "local", encoder=same_vectors)  # type: ignore[arg-type]
    return {"local": root / "local", "sharded": root / "sharded"}


@pytest.fixture(scope="module", params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def engine(homes: dict[str, Path], kind: str, real_encoder: Encoder) -> SearchEngine:
    return SearchEngine.open(homes[kind], encoder=real_encoder)


@pytest.fixture(scope="module")
def client(homes: dict[str, Path], kind: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(index_dir=homes[kind]))) as test_client:
        yield test_client


def _marked(text: str, spans: list) -> list[str]:  # type: ignore[type-arg]
    return [text[s.start : s.end] for s in spans]


@pytest.mark.parametrize("mode", ["hybrid", "bm25"])
def test_lexical_highlights(engine: SearchEngine, mode: str) -> None:
    top = engine.query("S-400 sanctions", mode=mode).hits[0]  # type: ignore[arg-type]
    assert "S-400" in top.text and top.doc_id == "news/seed.txt"
    assert {"S-400", "sanctions"} <= set(_marked(top.text, top.highlights))
    assert '<mark class="lexical">S-400</mark>' in top.html


@pytest.mark.parametrize("mode", ["hybrid", "bm25", "vector"])
def test_filters_apply_to_both_legs(engine: SearchEngine, mode: str) -> None:
    garage = engine.query("engine oil bread", mode=mode, path_prefix="garage/")  # type: ignore[arg-type]
    assert garage.hits and {h.doc_id for h in garage.hits} == {"garage/oil.txt"}
    text_only = engine.query("engine oil bread", mode=mode, filters={"type": "txt"})  # type: ignore[arg-type]
    assert text_only.hits and all(h.doc_id.endswith(".txt") for h in text_only.hits)
    assert engine.query("engine", mode=mode, filters={"type": "pdf"}).hits == []  # type: ignore[arg-type]


def test_per_doc_and_pagination(engine: SearchEngine) -> None:
    full = engine.query("Russia China defence", k=6, mode="vector")
    page = engine.query("Russia China defence", k=3, offset=3, mode="vector")
    assert [(h.doc_id, h.start) for h in page.hits] == [(h.doc_id, h.start) for h in full.hits[3:6]]
    capped = engine.query("growing food and engines", k=10, per_doc=1)
    assert len({h.doc_id for h in capped.hits}) == len(capped.hits) > 1
    with pytest.raises(UserInputError, match="offset"):
        engine.query("x", k=10, offset=995)
    with pytest.raises(UserInputError, match="per-doc"):
        engine.query("x", per_doc=0)


def test_syntax_mode_and_its_errors(engine: SearchEngine) -> None:
    hits = engine.query('"first foreign visit"', mode="bm25", syntax=True).hits
    assert len(hits) == 1 and "first foreign visit" in hits[0].text
    for broken in ("foo AND", "(" * 17 + "x" + ")" * 17):
        with pytest.raises(QuerySyntaxError):
            engine.query(broken, syntax=True)


def test_explain_marks_the_closest_sentence(engine: SearchEngine) -> None:
    top = engine.query("defence chief's maiden trip abroad", k=1, explain=True).hits[0]
    assert "first foreign visit" in top.text
    assert top.highlights and all(s.kind == "semantic" for s in top.highlights)


def test_tuned_fusion_applies(homes: dict[str, Path], kind: str, real_encoder: Encoder) -> None:
    store = Store(homes[kind])
    store.write_tuning({"fusion": {"method": "rrf", "rrf_k": 60, "vector_weight": 0.5}})
    try:
        engine = SearchEngine.open(homes[kind], encoder=real_encoder)
        assert engine.fusion.method == "rrf" and engine.info()["fusion"]["method"] == "rrf"
        top = engine.query("S-400 sanctions").hits[0]
        assert top.bm25 is not None and top.vector is not None
        assert top.score == pytest.approx(1 / (60 + top.bm25.rank) + 1 / (60 + top.vector.rank))
    finally:
        (homes[kind] / "fusion.json").unlink()


def test_model_mismatch_is_one_error(homes: dict[str, Path], kind: str) -> None:
    engine = SearchEngine.open(homes[kind], encoder=HashEncoder())  # type: ignore[arg-type]
    assert engine.query("S-400", mode="bm25").hits  # BM25 needs no encoder
    with pytest.raises(ModelMismatchError, match="rebuild") as raised:
        engine.query("S-400", mode="hybrid")
    assert raised.value.status == 503


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"q": "x", "k": 101}, 400),
        ({"q": "foo AND", "syntax": "true"}, 400),
        ({"q": "bad\x01control"}, 400),
        ({"q": "x", "mode": "fuzzy"}, 422),
    ],
)
def test_http_error_statuses(client: TestClient, params: dict, status: int) -> None:  # type: ignore[type-arg]
    response = client.get("/search", params=params)
    assert response.status_code == status and "detail" in response.json()


def test_http_search_and_documents(client: TestClient) -> None:
    body = client.get("/search", params={"q": EXACT_QUERY, "k": 3}).json()
    assert body["hits"][0]["doc_id"] == "kitchen/bread.md"
    document = client.get("/documents/kitchen/bread.md").json()
    assert document["title"] == "Baking sourdough bread" and document["passages"]
    assert client.get("/documents/no/such.md").status_code == 404


def test_cli_query_info_verify_generations(homes: dict[str, Path], kind: str) -> None:
    runner, home = CliRunner(), str(homes[kind])
    found = runner.invoke(app, ["query", EXACT_QUERY, "--index", home, "--json", "-m", "bm25"])
    assert found.exit_code == 0, found.output
    assert json.loads(found.stdout)["hits"][0]["doc_id"] == "kitchen/bread.md"
    info = json.loads(runner.invoke(app, ["info", "--index", home, "--json"]).stdout)
    assert info["documents"] == len(FIXTURE_DOCS) + 1 and info["shards"] == KINDS.index(kind) + 1
    assert info["fusion"]["method"] == "zscore" and info["bytes"] == sum(info["files"].values())
    verified = runner.invoke(app, ["verify", "--index", home, "--deep", "--json"])
    assert verified.exit_code == 0 and json.loads(verified.stdout)["ok"] is True
    listed = json.loads(runner.invoke(app, ["generations", "--index", home, "--json"]).stdout)
    assert [entry["live"] for entry in listed] == [True]
    assert listed[0]["documents"] == info["documents"]


def test_both_kinds_answer_alike(homes: dict[str, Path], real_encoder: Encoder) -> None:
    """Vector results are identical; BM25 and hybrid differ at most through each shard's own
    average passage length, which corpus-wide IDF leaves."""
    local, sharded = (SearchEngine.open(homes[k], encoder=real_encoder) for k in KINDS)
    assert local.info()["passages"] == sharded.info()["passages"]
    for text in QUERIES:
        for mode in ("vector", "bm25", "hybrid"):
            ones = [(h.doc_id, h.start) for h in local.query(text, mode=mode).hits]  # type: ignore[arg-type]
            twos = [(h.doc_id, h.start) for h in sharded.query(text, mode=mode).hits]  # type: ignore[arg-type]
            if mode == "vector":
                assert ones == twos
            else:
                assert ones[:1] == twos[:1] and len(set(ones) & set(twos)) >= 0.8 * len(ones)


def test_admin_rebuild_of_a_sharded_home_needs_its_cluster(homes: dict[str, Path]) -> None:
    """Served without Ray, /admin/rebuild says how to rebuild; served with a Ray address, it
    starts the distributed rebuild as a job (here against an address nothing listens at)."""
    settings = Settings(index_dir=homes["sharded"], admin_token="s3cret")
    auth = {"Authorization": "Bearer s3cret"}
    with TestClient(create_app(settings)) as test_client:
        refused = test_client.post("/admin/rebuild", headers=auth)
    assert refused.status_code == 409 and "--ray-address" in refused.json()["detail"]
    assert str(homes["sharded"]) not in refused.json()["detail"]  # no path reaches a client
    with TestClient(create_app(settings, ray_address="127.0.0.1:1")) as test_client:
        started = test_client.post("/admin/rebuild", headers=auth)
        assert started.status_code == 202
        path = f"/admin/jobs/{started.json()['id']}"
        deadline = time.monotonic() + 120
        while (job := test_client.get(path, headers=auth).json())["state"] in ACTIVE:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    assert job["state"] == "failed" and "Ray" in job["error"], job


JUDGED = {
    "q1": (EXACT_QUERY, "kitchen/bread.md"),
    "q2": (PARAPHRASE_QUERY, "garage/oil.txt"),
    "q3": ("plants that need sun and a stake", "garden/tomatoes.html"),
    "q4": ("a rover collecting rock cores", "space/mars.txt"),
    "q5": ("S-400 sanctions", "news/seed.txt"),
    "q6": ("defence ministers of Russia and China", "news/seed.txt"),
}


def test_eval_as_built_and_tune_on_both_kinds(
    homes: dict[str, Path], kind: str, tmp_path: Path
) -> None:
    """A deployment's relevance is measured and tuned where it runs, local or sharded."""
    beir = tmp_path / "judged"
    (beir / "qrels").mkdir(parents=True)
    (beir / "corpus.jsonl").write_text("")  # the index as built is scored, not this corpus
    queries = [json.dumps({"_id": qid, "text": text}) for qid, (text, _) in JUDGED.items()]
    (beir / "queries.jsonl").write_text("\n".join(queries) + "\n")
    rows = [f"{qid}\t{doc}\t1" for qid, (_, doc) in JUDGED.items()]
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(rows))
    runner, home = CliRunner(), str(homes[kind])
    scored = runner.invoke(
        app, ["eval", str(beir), "--split", "test", "--index", home, "--as-built", "--json"]
    )
    assert scored.exit_code == 0, scored.output
    assert json.loads(scored.stdout)["hybrid"]["ndcg@10"] > 0.8
    try:
        tuned = runner.invoke(
            app, ["tune", str(beir), "--split", "test", "--index", home, "--json"]
        )
        assert tuned.exit_code == 0, tuned.output
        stored = json.loads((homes[kind] / "fusion.json").read_text())["fusion"]
        assert stored == json.loads(tuned.stdout)["stored"]
        info = json.loads(runner.invoke(app, ["info", "--index", home, "--json"]).stdout)
        assert info["fusion"] == stored  # the tuned fusion is the one in effect
    finally:
        (homes[kind] / "fusion.json").unlink(missing_ok=True)
