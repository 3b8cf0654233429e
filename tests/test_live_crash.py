"""Crash safety of live writes: ``kill -9`` of ``searchkit serve`` at random moments in a
stream of batches, ten times. Afterwards ``verify --deep`` passes, every acknowledged batch is
searchable, and no batch is half visible."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from searchkit import SearchEngine, build_index
from searchkit.build.writer import IndexWriter
from searchkit.embed import Encoder

from .conftest import FIXTURE_DOCS, free_port, wait_until_up, write_corpus

KILLS = 10
TOKEN = "crash-token"


def _batch(kill: int, number: int) -> list[dict[str, str]]:
    """Two documents that must become visible together."""
    return [
        {"id": f"k{kill}-b{number}-{part}", "text": f"Crash batch word w{kill}x{number}y{part}."}
        for part in (0, 1)
    ]


def _write_until_killed(url: str, kill: int, acked: list[int], sent: list[int]) -> None:
    with httpx.Client(base_url=url, timeout=10) as http:
        for number in range(10_000):
            sent.append(number)
            body = "\n".join(json.dumps(d) for d in _batch(kill, number))
            headers = {"Authorization": f"Bearer {TOKEN}", "content-type": "application/x-ndjson"}
            try:
                answer = http.post("/documents", content=body, headers=headers)
            except httpx.HTTPError:
                return  # the server is gone: this batch was never acknowledged
            if answer.status_code == 202:
                acked.append(number)


def test_killed_servers_lose_no_acknowledged_write(tmp_path: Path, real_encoder: Encoder) -> None:
    index = tmp_path / "index"
    build_index([write_corpus(tmp_path / "docs", FIXTURE_DOCS)], index, encoder=real_encoder)
    environment = {
        **os.environ,
        "SEARCHKIT_ADMIN_TOKEN": TOKEN,
        "SEARCHKIT_REFRESH_INTERVAL": "0.2",
        "SEARCHKIT_COMPACT_DOCUMENTS": "40",  # some kills land in a compaction
    }
    chance = random.Random(17)
    acked: dict[int, list[int]] = {}
    sent: dict[int, list[int]] = {}
    for kill in range(KILLS):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [sys.executable, "-m", "searchkit", "serve", "--index", str(index), "--port",
             str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment,
        )  # fmt: skip
        try:
            wait_until_up(url)
            acked[kill], sent[kill] = [], []
            writer = threading.Thread(
                target=_write_until_killed, args=(url, kill, acked[kill], sent[kill])
            )
            writer.start()
            time.sleep(chance.uniform(0.3, 2.5))
        finally:
            os.kill(server.pid, signal.SIGKILL)
            server.wait(timeout=30)
        writer.join(timeout=30)
    done = subprocess.run(
        [sys.executable, "-m", "searchkit", "verify", "--deep", "--index", str(index)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    IndexWriter(index, encoder=real_encoder).flush()  # what the next server would show
    engine = SearchEngine.open(index, encoder=real_encoder)
    total = sum(len(numbers) for numbers in acked.values())
    print(f"\n{KILLS} kills, {total} acknowledged batches, generation {engine.generation}")
    assert total > KILLS
    for kill, numbers in sent.items():
        for number in numbers:
            shown = [engine.document(d["id"]) is not None for d in _batch(kill, number)]
            if number in acked[kill]:
                assert all(shown), (kill, number)
            else:
                assert shown in ([True, True], [False, False]), (kill, number)  # whole or not
    word = _batch(0, acked[0][0])[0]["text"].split()[-1].rstrip(".")
    assert [hit.doc_id for hit in engine.query(word, mode="bm25").hits][:1] == [
        _batch(0, acked[0][0])[0]["id"]
    ]
