"""HTTP section of the benchmark harness: requests per second and latency of `searchkit serve`
on loopback, for bm25 and hybrid queries at 1 and 8 concurrent clients, and, as the ceiling
those rates live under, the same server and clients asking ``/healthz``, which searches
nothing; and bm25 requests that ask for no highlights."""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, replace
from pathlib import Path

import httpx


@dataclass
class HttpRow:
    mode: str  # bm25, hybrid, PLAIN_BM25 or NO_SEARCH
    clients: int
    requests: int
    failures: int
    rps: float
    p50_ms: float
    p95_ms: float
    workers: int = 1


# The mode of the ceiling row: ``/healthz``, which the event loop answers as it answers a quick
# bm25 search, through the same middleware and with a JSON body, but which searches nothing.
NO_SEARCH = "healthz"
# The mode of bm25 requests that ask for no highlights (``highlight=false``).
PLAIN_BM25 = "bm25, no highlights"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Connection:
    """One keep-alive HTTP/1.1 connection that sends GET requests and reads whole answers.
    A load generator must cost the server's 2 cores little: an httpx client in Python threads
    spends more CPU per request than the service answering it, and measures itself."""

    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        self._host = parts.hostname or "127.0.0.1"
        self._sock = socket.create_connection((self._host, parts.port or 80), timeout=60)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._reader = self._sock.makefile("rb")

    def get(self, path: str, params: dict[str, str]) -> int:
        """The status of ``GET path?params``, its body read and dropped."""
        target = f"{path}?{urllib.parse.urlencode(params)}"
        self._sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {self._host}\r\n\r\n".encode())
        status_line = self._reader.readline().split()
        if len(status_line) < 2:
            raise ConnectionError("the server closed the connection")
        status = int(status_line[1])
        length = 0
        while (line := self._reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        self._reader.read(length)
        return status

    def close(self) -> None:
        self._reader.close()
        self._sock.close()


def _load(url: str, queries: list[str], mode: str, clients: int, seconds: float) -> HttpRow:
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(number: int) -> None:
        nonlocal failures
        connection = _Connection(url)
        i = number
        while time.monotonic() < stop:
            started = time.perf_counter()
            try:
                status = (
                    connection.get("/healthz", {})
                    if mode == NO_SEARCH
                    else connection.get("/search", _params(queries[i % len(queries)], mode))
                )
            except OSError:  # a dropped connection is a failed request, then a new one
                connection.close()
                connection, status = _Connection(url), 0
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                latencies.append(elapsed)
                failures += status != 200
            i += clients
        connection.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    cuts = statistics.quantiles(latencies, n=100)
    return HttpRow(
        mode, clients, len(latencies), failures, len(latencies) / wall, cuts[49], cuts[94]
    )


def _params(query: str, mode: str) -> dict[str, str]:
    if mode == PLAIN_BM25:
        return {"q": query, "mode": "bm25", "highlight": "false"}
    return {"q": query, "mode": mode}


def http_rows(index: Path, queries: list[str], seconds: float = 15.0) -> list[HttpRow]:
    """Serve ``index`` with one worker (1 and 8 clients), then with two (8 clients, and the
    ceiling: 8 clients asking ``/healthz``, and bm25 without highlights)."""
    rows = _serve_and_load(index, queries, seconds, workers=1, clients=(1, 8))
    return rows + _serve_and_load(
        index,
        queries,
        seconds,
        workers=2,
        clients=(8,),
        modes=("bm25", "hybrid", NO_SEARCH, PLAIN_BM25),
    )


def _serve_and_load(
    index: Path,
    queries: list[str],
    seconds: float,
    *,
    workers: int,
    clients: tuple[int, ...],
    modes: tuple[str, ...] = ("bm25", "hybrid"),
) -> list[HttpRow]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "searchkit", "serve", "--index", str(index), "--port", str(port),
         "--workers", str(workers)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.2)
        for query in queries[: 20 * workers]:  # load the models and warm the caches
            httpx.get(url + "/search", params={"q": query}, timeout=60)
        rows = []
        for mode in modes:
            for count in clients:
                row = replace(_load(url, queries, mode, count, seconds), workers=workers)
                print(
                    f"HTTP {mode:<6} {workers} worker(s), {count} clients: {row.rps:7.1f} req/s  "
                    f"p50 {row.p50_ms:6.1f} ms  p95 {row.p95_ms:6.1f} ms  "
                    f"({row.requests} requests, {row.failures} failed)"
                )
                rows.append(row)
        return rows
    finally:
        server.terminate()
        server.wait(timeout=30)
