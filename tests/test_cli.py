"""The CLI through typer's runner (in process) and, for start-up costs, a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from searchkit.cli import app

from .conftest import REPO, SEEDS


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    return CliRunner()


def _query_json(runner: CliRunner, index: Path, *args: str) -> dict:  # type: ignore[type-arg]
    result = runner.invoke(app, ["query", *args, "--json", "--index", str(index)])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)  # stdout holds nothing but the JSON


def test_query_json_shape(runner: CliRunner, seeds_index: Path) -> None:
    body = _query_json(runner, seeds_index, "S-400 sanctions", "-k", "3")
    assert set(body) >= {"query", "mode", "generation", "hits"}
    assert body["query"] == "S-400 sanctions" and body["mode"] == "hybrid"
    assert body["generation"] == 1 and len(body["hits"]) == 3
    hit = body["hits"][0]
    assert set(hit) == {
        "doc_id", "path", "title", "text", "start", "end", "page", "score", "bm25", "vector",
        "highlights", "html", "relevance", "explanation",
    }  # fmt: skip
    assert hit["explanation"] is None and body["explanation"] is None  # only with --explain
    assert "S-400" in hit["text"]
    marked = [hit["text"][h["start"] : h["end"]] for h in hit["highlights"]]
    assert marked == ["sanctions", "S-400"]
    assert {h["kind"] for h in hit["highlights"]} == {"lexical"}
    assert set(hit["bm25"]) == {"rank", "score"}
    plain = _query_json(runner, seeds_index, "S-400 sanctions", "-k", "3", "--no-highlight")
    assert [h["text"] for h in plain["hits"]] == [h["text"] for h in body["hits"]]
    assert all(h["highlights"] == [] and "<mark" not in h["html"] for h in plain["hits"])


def test_query_modes_offset_and_per_doc(runner: CliRunner, seeds_index: Path) -> None:
    bm25 = _query_json(runner, seeds_index, "defence chief's maiden trip abroad", "--mode", "bm25")
    assert bm25["hits"] == []
    vector = _query_json(runner, seeds_index, "defence chief's maiden trip abroad", "-m", "vector")
    assert "first foreign visit" in vector["hits"][0]["text"]
    assert vector["hits"][0]["bm25"] is None
    page = _query_json(runner, seeds_index, "Russia", "-k", "2", "--offset", "1")
    assert len(page["hits"]) == 2 and page["offset"] == 1
    capped = _query_json(runner, seeds_index, "Russia", "--per-doc", "1")
    assert len(capped["hits"]) == 1


def test_human_output(runner: CliRunner, seeds_index: Path) -> None:
    result = runner.invoke(
        app, ["query", "S-400 sanctions", "-k", "2", "--index", str(seeds_index)]
    )
    assert result.exit_code == 0
    assert result.stdout.startswith("1. Sino-Russian cooperation")
    assert "S-400" in result.stdout and "bm25 #1" in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["query", "   "],
        ["query", "x", "-k", "0"],
        ["query", "foo AND", "--syntax"],
        ["query", "x", "--offset", "5000"],
    ],
)
def test_bad_input_exits_2_with_one_line(
    runner: CliRunner, seeds_index: Path, args: list[str]
) -> None:
    result = runner.invoke(app, [*args, "--index", str(seeds_index)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "Traceback" not in result.output


def test_missing_index_is_an_environment_error(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["query", "x", "--index", str(tmp_path / "none")])
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("error: no index at")


def test_unknown_option_follows_typer(runner: CliRunner) -> None:
    assert runner.invoke(app, ["query", "x", "--mode", "fuzzy"]).exit_code == 2


def test_index_and_info(runner: CliRunner, tmp_path: Path, fixture_corpus: Path) -> None:
    index = tmp_path / "index"
    built = runner.invoke(app, ["index", str(fixture_corpus), "--index", str(index), "--json"])
    assert built.exit_code == 0, built.stderr
    report = json.loads(built.stdout)
    assert report["generation"] == 1 and report["documents"] == 4
    info = runner.invoke(app, ["info", "--index", str(index), "--json"])
    details = json.loads(info.stdout)
    assert details["generation"] == 1 and details["documents"] == 4
    assert details["passages"] == report["passages"]
    assert details["model"]["name"] == "all-MiniLM-L6-v2"
    assert details["sources"] == [str(fixture_corpus.resolve())]
    assert details["bytes"] > 0
    human = runner.invoke(app, ["info", "--index", str(index)])
    assert "generation  1" in human.stdout


def test_index_missing_path_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["index", str(tmp_path / "nope"), "--index", str(tmp_path / "i")])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: source not found: {tmp_path / 'nope'}"
    assert not (tmp_path / "i").exists()


def test_first_query_builds_index_from_seeds(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "seeds").mkdir()
    for seed in SEEDS.iterdir():
        (tmp_path / "seeds" / seed.name).write_bytes(seed.read_bytes())
    result = runner.invoke(app, ["query", "S-400 sanctions", "--json"])
    assert result.exit_code == 0, result.stderr
    assert "indexing the seed corpus" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1  # a one-line notice, no bars or summary
    assert (tmp_path / "index" / "CURRENT").is_file()
    assert "S-400" in json.loads(result.stdout)["hits"][0]["text"]


def _run_and_list_heavy_modules(*argv: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run the CLI in a fresh interpreter; report which heavy modules it imported."""
    code = (
        "import sys\n"
        "from searchkit.cli import app\n"
        "try:\n    app(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "heavy = {'torch', 'sentence_transformers', 'fastapi', 'transformers', 'numpy'}\n"
        "print(sorted(heavy & set(sys.modules)), file=sys.stderr)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, env=env, check=False
    )
    loaded = set(json.loads(done.stderr.strip().splitlines()[-1].replace("'", '"')))
    return done, loaded


def test_help_and_bm25_queries_never_import_torch(seeds_index: Path) -> None:
    """bm25 needs neither torch, the model nor numpy; vector and hybrid encode through ONNX
    Runtime (numpy, but no torch)."""
    done, loaded = _run_and_list_heavy_modules("--help")
    assert "query" in done.stdout and loaded == set()
    done, loaded = _run_and_list_heavy_modules(
        "query", "S-400", "--mode", "bm25", "--index", str(seeds_index), "--json"
    )
    assert json.loads(done.stdout)["hits"] and loaded == set()
    done, loaded = _run_and_list_heavy_modules("info", "--index", str(seeds_index))
    assert loaded == set()
    done, loaded = _run_and_list_heavy_modules(
        "query", "defence minister visit", "--index", str(seeds_index), "--json"
    )
    assert json.loads(done.stdout)["mode"] == "hybrid" and loaded == {"numpy"}


def test_explain_is_on_for_humans_and_opt_in_for_json(runner: CliRunner, seeds_index: Path) -> None:
    query = "defence chief's maiden trip abroad"
    body = _query_json(runner, seeds_index, query, "-k", "1")
    assert body["hits"][0]["highlights"] == []
    body = _query_json(runner, seeds_index, query, "-k", "1", "--explain")
    assert body["hits"][0]["highlights"][0]["kind"] == "semantic"
    human = runner.invoke(app, ["query", query, "-k", "1", "--index", str(seeds_index)])
    assert human.exit_code == 0 and "first foreign visit" in human.stdout


def test_fusion_flags_reach_the_engine(runner: CliRunner, seeds_index: Path) -> None:
    rrf = _query_json(runner, seeds_index, "S-400 sanctions", "--fusion", "rrf", "--rrf-k", "10")
    top = rrf["hits"][0]
    expected = 1 / (10 + top["bm25"]["rank"]) + 1 / (10 + top["vector"]["rank"])
    assert top["score"] == pytest.approx(expected)
    vector_only = _query_json(runner, seeds_index, "sanctions", "--vector-weight", "1.0")
    assert vector_only["hits"][0]["vector"]["rank"] == 1
    bad = runner.invoke(app, ["query", "x", "--vector-weight", "2", "--index", str(seeds_index)])
    assert bad.exit_code == 2
