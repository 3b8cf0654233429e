"""Crash safety of rebuilds: kill -9 at random moments, named crash points, a full disk.

Builds run as real `searchkit` processes with the real model. Every random choice comes from
SEARCHKIT_TEST_SEED (printed on failure) so a failing run can be replayed.
"""

from __future__ import annotations

import gc
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from searchkit import SearchEngine, build_index
from searchkit.build.builder import CRASH_AFTER_VARIABLE, CRASH_POINTS
from searchkit.build.lifecycle import verify
from searchkit.cli import app
from searchkit.embed import Encoder
from searchkit.storage.store import Store

from .conftest import FIXTURE_DOCS, SEEDS, write_corpus

SEED = int(os.environ.get("SEARCHKIT_TEST_SEED", "20261126"))
KILLS = 20
QUERIES = [("S-400 sanctions", "hybrid"), ("sourdough starter", "bm25"), ("car grease", "vector")]


def _corpus(root: Path) -> Path:
    docs = dict(FIXTURE_DOCS)
    docs["news/seed.txt"] = next(SEEDS.iterdir()).read_text()
    for i in range(30):
        docs[f"filler/{i:02d}.txt"] = (
            f"Filler note {i}\nThis note number {i} records routine maintenance of pump {i}, "
            f"valve {i * 3} and the pressure gauge, checked by the night shift on day {i}."
        )
    return write_corpus(root, docs)


def _answers(index: Path, encoder: Encoder) -> list[list[tuple[str, int, float]]]:
    engine = SearchEngine.open(index, encoder=encoder)
    return [
        [(h.doc_id, h.start, round(h.score, 5)) for h in engine.query(text, mode=mode).hits]
        for text, mode in QUERIES
    ]


def _rebuild(index: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen:  # type: ignore[type-arg]
    argv = [
        sys.executable,
        "-m",
        "searchkit",
        "rebuild",
        "--full",
        "--quiet",
        "--index",
        str(index),
    ]
    return subprocess.Popen(
        [*argv, *extra],
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, real_encoder: Encoder) -> tuple[Path, list]:  # type: ignore[type-arg]
    root = tmp_path_factory.mktemp("crash")
    index = root / "index"
    build_index([_corpus(root / "docs")], index, encoder=real_encoder)
    return index, _answers(index, real_encoder)


def _check_intact(index: Path, golden: list, encoder: Encoder, context: str) -> None:  # type: ignore[type-arg]
    problems = verify(index, deep=True)
    assert problems == [], f"{context}: {problems}"
    assert _answers(index, encoder) == golden, f"{context}: answers changed"


def test_kill_9_at_random_moments(live: tuple[Path, list], real_encoder: Encoder) -> None:  # type: ignore[type-arg]
    index, golden = live
    started = time.perf_counter()
    assert _rebuild(index).wait() == 0
    duration = time.perf_counter() - started
    rng = random.Random(SEED)
    landed = 0
    for attempt in range(KILLS):
        delay = rng.uniform(0.05, 0.95) * duration
        process = _rebuild(index)
        time.sleep(delay)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            landed += 1
        process.wait()
        context = f"seed {SEED}, kill {attempt} after {delay:.2f}s of {duration:.2f}s"
        _check_intact(index, golden, real_encoder, context)
    print(f"\n{landed} of {KILLS} kills landed mid-rebuild (rebuild takes {duration:.1f} s)")
    assert landed >= KILLS // 2, f"seed {SEED}: only {landed} kills landed mid-rebuild"
    after = _rebuild(index)
    assert after.wait() == 0, after.stderr.read() if after.stderr else ""
    _check_intact(index, golden, real_encoder, f"seed {SEED}, rebuild after the kills")
    assert not [p for p in (index / "generations").iterdir() if p.name.endswith(".partial")]


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_named_crash_points(live: tuple[Path, list], real_encoder: Encoder, point: str) -> None:  # type: ignore[type-arg]
    index, golden = live
    before = Store(index).current()
    process = _rebuild(index, env={CRASH_AFTER_VARIABLE: point})
    assert process.wait() == -signal.SIGKILL
    current = Store(index).current()
    assert current == (before + 1 if point == "published" else before)
    _check_intact(index, golden, real_encoder, f"crash after {point}")
    sources = Store(index).manifest(current)["sources"]
    report = build_index(sources, index, encoder=real_encoder, reuse=False)  # a full rebuild
    assert report.generation > current
    assert not [p for p in (index / "generations").iterdir() if p.name.endswith(".partial")]
    _check_intact(index, golden, real_encoder, f"rebuild after crash at {point}")


def _snapshot(index: Path) -> dict[str, bytes]:
    return {
        p.relative_to(index).as_posix(): p.read_bytes()
        for p in sorted(index.rglob("*"))
        if p.is_file() and not p.name.startswith("LOCK")
    }


def test_full_disk_leaves_live_index_byte_identical(
    tmp_path: Path, real_encoder: Encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = write_corpus(tmp_path / "small", {"a.txt": FIXTURE_DOCS["garage/oil.txt"]})
    big = _corpus(tmp_path / "big")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = _mount_tmpfs(disk, size_kib=1024)
    if not mounted:  # not root: inject ENOSPC where the vectors are written
        import errno

        import searchkit.build.builder as build_module

        real_write = build_module.atomic_write

        def full_disk(path: Path, data: bytes) -> None:
            if path.name == "vectors.faiss" and Store(disk / "index").current() is not None:
                raise OSError(errno.ENOSPC, "No space left on device")
            real_write(path, data)

        monkeypatch.setattr(build_module, "atomic_write", full_disk)
    try:
        index = disk / "index"
        build_index([small], index, encoder=real_encoder)
        before = _snapshot(index)
        filler = disk / "filler"  # leave the build less room than a generation of `big` needs
        if mounted:
            _fill(filler, keep_free=64 * 1024)
        result = CliRunner().invoke(app, ["index", str(big), "--index", str(index), "--quiet"])
        assert result.exit_code == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: disk full while building")
        assert _snapshot(index) == before
        assert not [p for p in (index / "generations").iterdir() if p.name.endswith(".partial")]
        assert verify(index, deep=True) == []
    finally:
        if mounted:
            gc.collect()  # drop tantivy's and FAISS's memory maps of files on the tmpfs
            if subprocess.run(["umount", str(disk)], check=False).returncode != 0:
                subprocess.run(["umount", "-l", str(disk)], check=False)


def _mount_tmpfs(path: Path, size_kib: int) -> bool:
    if shutil.which("mount") is None or os.geteuid() != 0:
        return False
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


def _fill(path: Path, keep_free: int) -> None:
    free = shutil.disk_usage(path.parent).free
    path.write_bytes(b"\0" * max(free - keep_free, 0))
