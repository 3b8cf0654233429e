"""Careless input on the command line, through a real ``searchkit`` process: one ``error:`` line
on stderr and exit 2 for bad input, 1 for the environment, never a traceback or a panel."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from searchkit import __version__, build_index
from searchkit.embed import Encoder

from .conftest import SEEDS, free_port, write_corpus

ENVIRONMENT = {**os.environ, "HF_HUB_OFFLINE": "1"}


def _searchkit(*args: str | bytes, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "searchkit", *args],
        capture_output=True,
        text=True,
        errors="replace",
        env=ENVIRONMENT,
        cwd=cwd,
        check=False,
    )


def _one_error_line(done: subprocess.CompletedProcess[str], code: int) -> str:
    assert done.returncode == code, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr and "╭" not in done.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["query", "x", "--mode", "foo"], ["--mode", "hybrid", "bm25", "vector"]),
        (["query", "x", "--vector-weight", "2"], ["--vector-weight", "at most 1"]),
        (["query", "x", "--candidates", "0"], ["--candidates", "at least 1"]),
        (["serve", "--port", "99999"], ["--port", "at most 65535"]),
        (["rollback", "abc"], ["GENERATION", "number"]),
        (["eval", "somewhere", "--mode", "fuzzy"], ["fuzzy", "hybrid"]),
        (["nosuchcommand"], ["nosuchcommand"]),
    ],
)
def test_option_errors_are_one_line_naming_the_option(args: list[str], names: list[str]) -> None:
    line = _one_error_line(_searchkit(*args), 2)
    assert all(name in line for name in names), line
    assert "Value error" not in line and "Input should" not in line


def test_a_query_that_begins_with_a_dash_is_told_to_use_double_dash(tmp_path: Path) -> None:
    line = _one_error_line(_searchkit("query", "-5 degrees frost", "--index", str(tmp_path)), 2)
    assert "searchkit query -- '-5" in line


def test_index_pointing_at_a_file(tmp_path: Path) -> None:
    plain = tmp_path / "notes.txt"
    plain.write_text("not an index")
    for command in (["query", "x"], ["info"], ["verify"], ["generations"], ["index", str(plain)]):
        line = _one_error_line(_searchkit(*command, "--index", str(plain)), 2)
        assert "is a file" in line, (command, line)


def test_version() -> None:
    done = _searchkit("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"searchkit {__version__}"


def test_help_shows_what_to_type_not_python_types() -> None:
    commands = ("query", "index", "rebuild", "eval", "tune", "serve", "rollback", "watch", "add")
    for command in commands:
        done = _searchkit(command, "--help")
        assert done.returncode == 0, command
        for python_words in ("<bool>", "list[", "{"):
            assert python_words not in done.stdout, (command, python_words)
    assert "searchkit query [OPTIONS] TEXT" in _searchkit("query", "--help").stdout
    assert "<bool>" not in _searchkit("--help").stdout
    assert "KEY=VALUE" in _searchkit("query", "--help").stdout


def test_a_query_that_is_not_utf8(seeds_index: Path) -> None:
    for mode in ("hybrid", "bm25"):
        done = subprocess.run(
            [sys.executable, "-m", "searchkit", "query", b"caf\xe9", "-m", mode, "--index",
             str(seeds_index)],
            capture_output=True, text=True, env=ENVIRONMENT, check=False,
        )  # fmt: skip
        assert "not valid UTF-8" in _one_error_line(done, 2)


@pytest.mark.parametrize("output", ["--no-explain", "--json"])
def test_a_closed_pipe_ends_the_query_quietly(seeds_index: Path, output: str) -> None:
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first byte, as after 'head -1'
    writer = subprocess.run(
        [sys.executable, "-m", "searchkit", "query", "Russia", "-k", "50", "--index",
         str(seeds_index), output],
        stdout=write, stderr=subprocess.PIPE, text=True, env=ENVIRONMENT, check=False,
    )  # fmt: skip
    os.close(write)
    assert writer.stderr == "" and writer.returncode == 1


def test_hits_and_sizes_read_as_a_person_would_write_them(seeds_index: Path) -> None:
    done = _searchkit("query", "S-400 sanctions", "-k", "1", "--index", str(seeds_index))
    assert done.returncode == 0 and "1 hit ·" in done.stdout
    info = _searchkit("info", "--index", str(seeds_index))
    assert "0.0 MB" not in info.stdout and "KB" in info.stdout, info.stdout


def test_generations_of_a_missing_index_says_so(tmp_path: Path) -> None:
    line = _one_error_line(_searchkit("generations", "--index", str(tmp_path / "none")), 1)
    assert "no index" in line


def test_serve_checks_the_index_and_the_port_before_it_says_serving(
    tmp_path: Path, seeds_index: Path
) -> None:
    empty = _searchkit("serve", "--index", str(tmp_path), "--port", str(free_port()))
    assert "no index" in _one_error_line(empty, 1) and "Serving" not in empty.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = _searchkit("serve", "--index", str(seeds_index), "--port", str(port))
    assert f"127.0.0.1:{port}" in _one_error_line(busy, 1) and "Serving" not in busy.stderr


def test_bm25_needs_no_faiss_file(tmp_path: Path, seeds_index: Path) -> None:
    index = tmp_path / "index"
    shutil.copytree(seeds_index, index)
    for generation in (index / "generations").iterdir():
        (generation / "vectors.faiss").unlink()
    keywords = _searchkit("query", "S-400", "-m", "bm25", "--json", "--index", str(index))
    assert keywords.returncode == 0 and json.loads(keywords.stdout)["hits"], keywords.stderr
    meaning = _searchkit("query", "S-400", "-m", "vector", "--index", str(index))
    assert "vectors.faiss is missing" in _one_error_line(meaning, 1)


def test_clashing_ids_are_a_user_error_and_leave_nothing_behind(tmp_path: Path) -> None:
    for part in ("a", "b"):
        record = {"_id": "d1", "title": part, "text": f"Notes from {part}."}
        (tmp_path / f"{part}.jsonl").write_text(json.dumps(record) + "\n")
    index = tmp_path / "index"
    done = _searchkit("index", str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl"),
                      "--index", str(index), "--quiet")  # fmt: skip
    line = _one_error_line(done, 2)
    assert "'d1'" in line and "a.jsonl" in line and "b.jsonl" in line
    assert not index.exists()  # no LOCK, no empty generations/
    empty = tmp_path / "empty"
    empty.mkdir()
    kept = tmp_path / "kept"
    kept.mkdir()
    _one_error_line(_searchkit("index", str(empty), "--index", str(kept), "--quiet"), 2)
    assert kept.is_dir() and not any(kept.iterdir())  # the folder given stays, empty


def test_an_index_is_never_written_among_other_files(tmp_path: Path) -> None:
    docs, notes = tmp_path / "docs", tmp_path / "notes"
    write_corpus(docs, {"oil.txt": "Change the engine oil every year."})
    write_corpus(notes, {"a.txt": "A note.", "b.md": "# B"})
    line = _one_error_line(_searchkit("index", str(docs), "--index", str(notes), "--quiet"), 2)
    assert "is not a searchkit index and holds other files (a.txt, b.md)" in line
    assert sorted(p.name for p in notes.iterdir()) == ["a.txt", "b.md"]  # nothing written there


def test_a_rebuild_with_nothing_changed_says_so(tmp_path: Path, real_encoder: Encoder) -> None:
    docs, index = tmp_path / "docs", tmp_path / "index"
    shutil.copytree(SEEDS, docs)
    build_index([docs], index, encoder=real_encoder)
    done = _searchkit("rebuild", "--index", str(index))
    assert done.returncode == 0, done.stderr
    assert "Nothing changed since generation 1" in done.stderr
    assert [p.name for p in (index / "generations").iterdir()] == ["g000001"]


SPINNER = set("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏━\r")


def test_progress_off_a_terminal_is_plain_lines(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "oil.txt").write_text("Engine oil\n\nChange the oil of a car every year or so.\n")
    done = _searchkit("index", str(docs), "--index", str(tmp_path / "index"))
    assert done.returncode == 0, done.stderr
    assert not SPINNER & set(done.stderr), done.stderr
    assert "reading documents: started" in done.stderr
    assert "encoding passages: done, 1 in" in done.stderr
    failed = _searchkit(  # the same folder twice: every id clashes
        "index", str(docs), str(docs), "--index", str(tmp_path / "other"),
    )  # fmt: skip
    assert failed.returncode == 2
    assert not SPINNER & set(failed.stderr)
    assert failed.stderr.splitlines()[-1].startswith("error: ")


def test_plain_progress_says_where_a_long_stage_is(capsys: pytest.CaptureFixture[str]) -> None:
    from searchkit.cli.console import PlainProgress

    progress = PlainProgress(every=0.0)
    progress.stage("encoding passages", 4)
    progress.advance(2)
    progress.close()
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "encoding passages: started (4)"
    assert lines[1].startswith("encoding passages: 2/4 (50%), ")
    assert lines[2].startswith("encoding passages: done, 2 in ")


def test_rebuilding_part_of_an_indexed_folder_keeps_its_ids(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    for folder, name in (("garage", "oil.txt"), ("garage", "tyres.txt"), ("web", "page.md")):
        (docs / folder).mkdir(parents=True, exist_ok=True)
        (docs / folder / name).write_text(f"{name}\n\nA few words about {name} and more.\n")
    index = str(tmp_path / "index")
    assert _searchkit("index", str(docs), "--index", index, "--quiet").returncode == 0
    done = _searchkit("rebuild", str(docs / "web"), "--index", index, "--allow-shrink")
    assert done.returncode == 0, done.stderr
    assert "0 added, 0 changed, 2 removed" in done.stderr, done.stderr
    listed = _searchkit("query", "page", "-m", "bm25", "--json", "--index", index)
    assert [hit["doc_id"] for hit in json.loads(listed.stdout)["hits"]] == ["web/page.md"]


def test_an_error_of_the_machine_is_one_line_naming_the_path(tmp_path: Path) -> None:
    # /sys refuses new folders even to root: what a read-only or full disk looks like.
    done = _searchkit("index", str(SEEDS), "--index", "/sys/searchkit-index", "--quiet")
    line = _one_error_line(done, 1)
    assert "internal error" not in line and "/sys/searchkit-index" in line
