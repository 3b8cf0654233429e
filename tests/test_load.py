"""A bounded load test of `searchkit serve --workers 2` on 127.0.0.1 while rebuilds publish.

8 concurrent clients query until 3 full rebuilds have published; every response must be a 200,
at least two generations must be served, and no worker may ever go back to an older one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from searchkit import build_index
from searchkit.embed import Encoder

from .conftest import FIXTURE_DOCS, SEEDS, free_port, wait_until_up, write_corpus

CLIENTS = 8
REBUILDS = 3
MAX_REQUESTS_PER_CLIENT = 2000
QUERIES = [("S-400 sanctions", "hybrid"), ("sourdough", "bm25"), ("car grease", "vector")]


Answer = tuple[int, int | None, str | None, int]  # status, generation, worker, request number


@contextmanager
def _two_workers(index: Path, environment: dict[str, str]) -> Iterator[str]:
    """``searchkit serve --workers 2`` over ``index`` with ``environment`` added, up and with
    both workers' models warm; yields its URL and stops it on the way out."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "searchkit", "serve", "--index", str(index), "--port", str(port),
         "--workers", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, **environment},
    )  # fmt: skip
    try:
        wait_until_up(url)
        for text, mode in QUERIES * 4:  # warm both workers' models before the clock starts
            httpx.get(url + "/search", params={"q": text, "mode": mode}, timeout=120)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def _query_client(
    url: str, number: int, done: threading.Event, lock: threading.Lock, answers: list[Answer]
) -> None:
    """Query until ``done``, recording what each answer says of where it came from."""
    with httpx.Client(base_url=url, timeout=120) as http:
        for i in range(MAX_REQUESTS_PER_CLIENT):
            if done.is_set():
                return
            text, mode = QUERIES[(number + i) % len(QUERIES)]
            answer = http.get("/search", params={"q": text, "mode": mode})
            generation = answer.headers.get("X-Index-Generation")
            with lock:
                answers.append(
                    (
                        answer.status_code,
                        int(generation) if generation else None,
                        answer.headers.get("X-Searchkit-Worker"),
                        # Every answer says where it came from: without the sequence number
                        # the order check below could not fail.
                        int(answer.headers["X-Searchkit-Request"] if answer.is_success else -1),
                    )
                )


def test_two_workers_serve_through_three_rebuilds(tmp_path: Path, real_encoder: Encoder) -> None:
    docs = dict(FIXTURE_DOCS)
    docs["news/seed.txt"] = next(SEEDS.iterdir()).read_text()
    corpus = write_corpus(tmp_path / "docs", docs)
    index = tmp_path / "index"
    build_index([corpus], index, encoder=real_encoder)
    responses: list[Answer] = []
    lock = threading.Lock()
    done = threading.Event()
    with _two_workers(index, {"PYTHONUNBUFFERED": "1"}) as url:
        threads = [
            threading.Thread(target=_query_client, args=(url, n, done, lock, responses))
            for n in range(CLIENTS)
        ]
        for thread in threads:
            thread.start()
        for number in range(REBUILDS):
            # A rebuild publishes only what changed: each one changes a document.
            (corpus / "notes.txt").write_text(f"Load test notes, revision {number}.\n")
            rebuild = subprocess.run(
                [sys.executable, "-m", "searchkit", "rebuild", "--quiet", "--index",
                 str(index)],
                capture_output=True,
                text=True,
                check=False,
                timeout=300,
            )  # fmt: skip
            assert rebuild.returncode == 0, rebuild.stderr
            time.sleep(1.0)  # let requests land on the new generation
        done.set()
        for thread in threads:
            thread.join(timeout=180)
    failures = [r for r in responses if r[0] != 200]
    generations = {g for _, g, _, _ in responses}
    by_worker: dict[str | None, list[tuple[int, int]]] = defaultdict(list)
    for _, generation, worker, sequence in responses:
        if generation is not None:
            by_worker[worker].append((sequence, generation))
    print(
        f"\n{len(responses)} requests, {len(failures)} non-200, generations served "
        f"{sorted(g for g in generations if g is not None)}, workers {len(by_worker)}"
    )
    assert responses and failures == []
    assert len(generations) >= 2
    for worker, served in by_worker.items():
        in_order = [generation for _, generation in sorted(served)]  # as the worker handed out
        assert in_order == sorted(in_order), f"worker {worker} went back to an older generation"


WRITERS = 2
WRITE_TOKEN = "load-token"


def test_two_workers_serve_queries_and_writes_through_compactions(
    tmp_path: Path, real_encoder: Encoder
) -> None:
    index = tmp_path / "index"
    build_index([write_corpus(tmp_path / "docs", FIXTURE_DOCS)], index, encoder=real_encoder)
    queries: list[Answer] = []
    writes: list[int] = []
    lock = threading.Lock()
    done = threading.Event()
    settings = {
        "SEARCHKIT_ADMIN_TOKEN": WRITE_TOKEN,
        "SEARCHKIT_REFRESH_INTERVAL": "0.3",
        "SEARCHKIT_COMPACT_DOCUMENTS": "25",
    }
    with _two_workers(index, settings) as url:

        def writer(number: int) -> None:
            auth = {"Authorization": f"Bearer {WRITE_TOKEN}"}
            with httpx.Client(base_url=url, timeout=120) as http:
                for i in range(10_000):
                    if done.is_set():
                        return
                    text = f"Live load document {number}-{i} about sourdough and engines."
                    answer = http.put(f"/documents/w{number}-{i % 40}", json={"text": text},
                                      headers=auth)  # fmt: skip
                    with lock:
                        writes.append(answer.status_code)
                    time.sleep(0.05)

        threads = [
            threading.Thread(target=_query_client, args=(url, n, done, lock, queries))
            for n in range(CLIENTS)
        ]
        threads += [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 120
        compactions: set[int] = set()
        while time.monotonic() < deadline and len(compactions) < 2:
            compactions |= _compactions(index)
            time.sleep(0.2)
        time.sleep(1.0)
        done.set()
        for thread in threads:
            thread.join(timeout=180)
    print(
        f"\n{len(queries)} queries, {len(writes)} writes, compactions {sorted(compactions)}, "
        f"generations served {len({g for _, g, _, _ in queries})}"
    )
    assert len(compactions) >= 2
    assert queries and all(status == 200 for status, _, _, _ in queries)
    assert writes and all(status == 202 for status in writes)
    by_worker: dict[str | None, list[tuple[int, int]]] = defaultdict(list)
    for _, generation, worker, sequence in queries:
        by_worker[worker].append((sequence, generation or 0))
    for worker, served in by_worker.items():
        in_order = [generation for _, generation in sorted(served)]
        assert in_order == sorted(in_order), f"worker {worker} went back to an older generation"


def _compactions(index: Path) -> set[int]:
    """Full generations on disk that hold live documents: each is a compaction."""
    found = set()
    for manifest in (index / "generations").glob("g*/manifest.json"):
        try:
            live = json.loads(manifest.read_text()).get("live") or {}
        except (OSError, ValueError):
            continue  # being written, or pruned meanwhile
        number = manifest.parent.name[1:]  # g000012, or g000013.partial while it is built
        if live and "base" not in live and number.isdigit():
            found.add(int(number))
    return found
