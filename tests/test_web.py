"""The HTTP API through FastAPI's TestClient, against the real index, model and libraries."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from searchkit import build_index
from searchkit.config import Settings
from searchkit.embed import Encoder
from searchkit.web import create_app

from .conftest import SEEDS

TOKEN = "test-admin-token"


@pytest.fixture(scope="module")
def client(seeds_index: Path) -> Iterator[TestClient]:
    app = create_app(Settings(index_dir=seeds_index, admin_token=TOKEN))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def test_search_get_and_post(client: TestClient) -> None:
    response = client.get("/search", params={"q": "S-400 sanctions", "k": 3})
    assert response.status_code == 200
    body = response.json()
    assert response.headers["X-Index-Generation"] == str(body["generation"]) == "1"
    again = client.get("/search", params={"q": "sanctions"})
    numbers = [int(r.headers["X-Searchkit-Request"]) for r in (response, again)]
    assert numbers[1] > numbers[0]  # each worker numbers the requests it answers
    assert "S-400" in body["hits"][0]["text"] and len(body["hits"]) == 3
    assert '<mark class="lexical">S-400</mark>' in body["hits"][0]["html"]
    posted = client.post(
        "/search",
        json={"q": "S-400 sanctions", "k": 3, "fusion": "rrf", "vector_weight": 0.5, "rrf_k": 60},
    )
    assert posted.status_code == 200
    top = posted.json()["hits"][0]
    assert top["score"] == pytest.approx(
        1 / (60 + top["bm25"]["rank"]) + 1 / (60 + top["vector"]["rank"])
    )


def test_hits_carry_relevance_and_min_relevance_drops_weak_ones(client: TestClient) -> None:
    hits = client.get("/search", params={"q": "Russia China"}).json()["hits"]
    assert all(0.0 <= hit["relevance"] <= 1.0 for hit in hits)
    floor = hits[2]["relevance"]
    kept = client.post("/search", json={"q": "Russia China", "min_relevance": floor}).json()
    assert kept["hits"] and all(hit["relevance"] >= floor for hit in kept["hits"])
    assert client.get("/search", params={"q": "x", "min_relevance": 2}).status_code == 422


def test_post_filters_and_explain(client: TestClient) -> None:
    nothing = client.post("/search", json={"q": "Russia", "filters": {"type": "pdf"}})
    assert nothing.status_code == 200 and nothing.json()["hits"] == []
    txt = client.post("/search", json={"q": "Russia", "filters": {"type": "txt"}, "k": 1})
    assert len(txt.json()["hits"]) == 1
    explained = client.get(
        "/search", params={"q": "defence chief's maiden trip abroad", "explain": "true", "k": 1}
    )
    assert explained.json()["hits"][0]["highlights"][0]["kind"] == "semantic"
    asked = {"q": "S-400 sanctions", "highlight": False}
    for answer in (client.get("/search", params=asked), client.post("/search", json=asked)):
        plain = answer.json()["hits"]
        assert plain and all(h["highlights"] == [] and "<mark" not in h["html"] for h in plain)


def test_documents_health_stats(client: TestClient) -> None:
    document = client.get("/documents/000_f93c24d53a7b0e50.txt")
    assert document.status_code == 200
    assert document.json()["title"].startswith("Sino-Russian") and document.json()["passages"]
    assert client.get("/documents/nope.txt").json() == {"detail": "no such document in the index"}
    assert client.get("/healthz").json() == {"status": "ok", "generation": 1}
    client.get("/search", params={"q": "Russia"})
    stats = client.get("/stats").json()
    assert stats["passages"] == 11 and stats["latency"]["count"] >= 1
    assert stats["languages"] == ["english"]
    assert stats["latency"]["p50_ms"] is not None
    for _ in range(3):
        client.get("/search", params={"q": "Russia"})
    latency = client.get("/stats").json()["latency"]  # percentiles now, to the microsecond
    assert all(round(latency[key], 3) == latency[key] for key in ("p50_ms", "p95_ms", "p99_ms"))


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"q": ""}, 422),
        ({"q": "x", "k": 0}, 422),
        ({"q": "x", "k": 101}, 400),
        ({"q": "x", "k": 2**40}, 400),
        ({"q": "x", "offset": 2**31}, 400),
        ({"q": "x", "offset": 2**63, "k": 2**63}, 400),
        ({"q": "x" * 1001}, 400),
        ({"q": "(" * 400 + "x" + ")" * 400, "syntax": "true"}, 400),  # 801 chars, 400 deep
        ({"q": " ".join(["w"] * 65), "syntax": "true"}, 400),
        ({"q": "foo AND", "syntax": "true"}, 400),
        ({"q": "title:", "syntax": "true"}, 400),
        ({"q": "nosuchfield:x", "syntax": "true"}, 400),
        ({"q": "bad\x01control"}, 400),
        ({"q": "x", "mode": "fuzzy"}, 422),
    ],
)
@pytest.mark.parametrize("mode", ["hybrid", "bm25"])  # bm25: some on the event loop
def test_queries_of_death_get_4xx(
    client: TestClient,
    params: dict,  # type: ignore[type-arg]
    status: int,
    mode: str,
) -> None:
    response = client.get("/search", params={"mode": mode, **params})
    assert response.status_code == status, response.text
    assert "detail" in response.json()
    assert "Traceback" not in response.text and "/tmp/" not in response.text
    assert client.get("/healthz").status_code == 200  # still alive


def test_long_tokens_and_bad_utf8(client: TestClient) -> None:
    assert client.get("/search", params={"q": "x" * 1000}).status_code == 200
    assert client.get("/search", params={"q": "a" * 997 + " b"}).status_code == 200
    bad = client.get("/search?q=%ff%fe%fd")
    assert bad.status_code == 400 and bad.json()["detail"] == "the query string is not valid UTF-8"
    body = client.post(
        "/search", content=b'{"q": "\xff\xfe"}', headers={"content-type": "application/json"}
    )
    assert body.status_code in (400, 422) and "detail" in body.json()


def test_oversized_body_is_413(client: TestClient) -> None:
    big = client.post("/search", json={"q": "x", "filters": {"k": "v" * 20_000}})
    assert big.status_code == 413 and "larger than 16384 bytes" in big.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit must count the bytes
        yield b'{"q": "x", "filters": {"k": "'
        for _ in range(40):
            yield b"v" * 1000
        yield b'"}}'

    chunked = client.post("/search", content=chunks(), headers={"content-type": "application/json"})
    assert chunked.status_code == 413
    assert client.get("/healthz").status_code == 200


def test_rust_panic_is_a_generic_500(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from searchkit.storage import lexical

    class PanicException(BaseException):  # what pyo3 raises for a Rust panic
        pass

    def panic(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise PanicException("called `Option::unwrap()` on a `None` value")

    monkeypatch.setattr(lexical.LexicalIndex, "search_units", panic)
    response = client.get("/search", params={"q": "Russia", "mode": "bm25"})
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error"}
    monkeypatch.undo()
    assert client.get("/search", params={"q": "Russia", "mode": "bm25"}).status_code == 200


def test_admin_routes_need_the_token(seeds_index: Path) -> None:
    closed = create_app(Settings(index_dir=seeds_index))
    with TestClient(closed) as test_client:
        assert test_client.post("/admin/rebuild").status_code == 403
    app = create_app(Settings(index_dir=seeds_index, admin_token=TOKEN))
    with TestClient(app) as test_client:
        refused = test_client.post("/admin/rebuild")
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        wrong = {"Authorization": "Bearer nope"}
        assert test_client.post("/admin/rebuild", headers=wrong).status_code == 401
        assert test_client.get("/admin/jobs/abc", headers=wrong).status_code == 401


def test_admin_rebuild_job_publishes_a_generation(
    tmp_path: Path, seeds_index: Path, real_encoder: Encoder
) -> None:
    docs, index = tmp_path / "docs", tmp_path / "index"
    shutil.copytree(SEEDS, docs)
    build_index([docs], index, encoder=real_encoder)
    (docs / "late.txt").write_text("A late note on the S-400 deliveries and their sanctions.\n")
    app = create_app(Settings(index_dir=index, admin_token=TOKEN))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(app) as test_client:
        started = test_client.post("/admin/rebuild", headers=auth)
        assert started.status_code == 202
        job_id = started.json()["id"]
        assert test_client.post("/admin/rebuild", headers=auth).status_code == 409
        deadline = time.monotonic() + 120
        while (job := test_client.get(f"/admin/jobs/{job_id}", headers=auth).json())["state"] in (
            "queued",
            "running",
        ):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert job["state"] == "succeeded", job
        report = job["report"]
        assert report["published"] and report["added"] == 1
        assert report["reused"] == report["passages"] - 1  # only the new note was encoded
        # bm25 is answered on the event loop, but a due version is opened on a thread first
        response = test_client.get("/search", params={"q": "S-400", "mode": "bm25"})
        assert response.headers["X-Index-Generation"] == "2"  # swapped between requests
        response = test_client.get("/search", params={"q": "S-400"})
        assert response.headers["X-Index-Generation"] == "2"
        assert test_client.get("/admin/jobs/nosuchjob", headers=auth).status_code == 404


def test_openapi_documents_every_route(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/search", "/documents/{doc_id}", "/healthz", "/stats", "/admin/rebuild"} <= set(paths)
    assert {"400", "413", "422", "500"} <= set(paths["/search"]["get"]["responses"])
    assert {"401", "403", "409"} <= set(paths["/admin/rebuild"]["post"]["responses"])


def test_schemathesis_no_5xx_and_responses_in_schema(client: TestClient) -> None:
    """Property-based requests from the app's own OpenAPI: no 5xx, every response in schema."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 7
    for operation in operations:

        @given(case=operation.as_strategy())
        @hypothesis_settings(
            max_examples=25,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
        )
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(checks=checks)

        check()


def test_cors_only_when_configured(seeds_index: Path) -> None:
    origin = {"Origin": "http://example.test"}
    with TestClient(create_app(Settings(index_dir=seeds_index))) as plain:
        assert "access-control-allow-origin" not in plain.get("/healthz", headers=origin).headers
    allowed = Settings(index_dir=seeds_index, cors_origins=["http://example.test"])
    with TestClient(create_app(allowed)) as configured:
        answer = configured.get("/healthz", headers=origin)
        assert answer.headers["access-control-allow-origin"] == "http://example.test"


def test_serve_refuses_a_public_bind_without_a_token(
    seeds_index: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from searchkit.cli import app

    monkeypatch.delenv("SEARCHKIT_ADMIN_TOKEN", raising=False)
    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--index", str(seeds_index)])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: refusing to bind 0.0.0.0 without an admin token")


def test_docs_pages_load_their_assets_from_this_server(client: TestClient) -> None:
    for page, asset in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
        html = client.get(page).text
        assert "cdn.jsdelivr.net" not in html and "unpkg.com" not in html
        assert f"/static-offline-docs/{asset}" in html
        assert client.get(f"/static-offline-docs/{asset}").status_code == 200


@pytest.mark.parametrize(
    ("send", "field"),
    [
        (lambda c: c.get("/search", params={"q": "x", "k": 0}), "k"),
        (lambda c: c.get("/search", params={"q": ""}), "q"),
        (lambda c: c.post("/search", json={"q": "x", "mode": "fuzzy"}), "mode"),
        (lambda c: c.post("/search", json={"q": "x", "nope": 1}), "nope"),
    ],
)
def test_every_4xx_has_one_detail_line(client: TestClient, send: Any, field: str) -> None:
    response = send(client)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail.startswith(f"{field}: "), detail


JSON = {"content-type": "application/json"}
FORM = {"content-type": "application/x-www-form-urlencoded"}  # what curl's -d sends


@pytest.mark.parametrize(
    ("send", "says"),
    [
        (lambda c: c.post("/search", content=b'{"q": "x"', headers=JSON), "not valid JSON"),
        (lambda c: c.post("/search", content=b'{"q": "x"}', headers=FORM),
         "content-type: application/json (this request's: application/x-www-form-urlencoded)"),
        (lambda c: c.post("/search", json=["x"]), "must be a JSON object"),
        (lambda c: c.post("/search", content=b"", headers=JSON), "has no body"),
    ],
)  # fmt: skip
def test_a_body_that_is_no_json_object_says_why(client: TestClient, send: Any, says: str) -> None:
    response = send(client)
    assert response.status_code == 422 and says in response.json()["detail"]
