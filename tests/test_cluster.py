"""The Ray scale-out on a real 2-node cluster on loopback: head on 127.0.0.2, a node on 127.0.0.3.

Real model, tantivy, FAISS, Ray Data and Ray Serve. Timings are printed (run with -s to see
them), never asserted tightly.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from searchkit import build_index
from searchkit.config import Settings
from searchkit.embed import load_encoder, load_query_encoder
from searchkit.search.engine import SearchEngine, open_sharded
from searchkit.sharded.precomputed import PrecomputedEncoder, stored_vectors
from searchkit.storage.sharded import ShardedStore

from .conftest import free_port

pytestmark = [pytest.mark.cluster, pytest.mark.slow]
ray = pytest.importorskip("ray", reason="needs the 'cluster' extra")

QUERIES = ["enzyme activity in cells", "solar power storage", "river flooding", "chess openings"]
TOPICS = {
    "biology": "enzyme protein cell membrane activity metabolism gene expression",
    "energy": "solar panel battery storage grid power wind turbine",
    "water": "river flooding rainfall dam levee basin erosion",
    "games": "chess opening gambit endgame knight bishop tournament",
}


def _write_corpus(folder: Path, per_topic: int = 12) -> Path:
    folder.mkdir()
    for topic, words in TOPICS.items():
        vocabulary = words.split()
        for n in range(per_topic):
            sentences = [
                f"Note {n} on {topic}: "
                + " ".join(vocabulary[(n + i) % len(vocabulary)] for i in range(6))
                + "."
                for _ in range(3)
            ]
            (folder / f"{topic}-{n:02d}.txt").write_text(
                f"{topic.title()} {n}\n\n" + " ".join(sentences)
            )
    return folder


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    from ray.cluster_utils import Cluster

    os.environ["RAY_AUTH_MODE"] = "disabled"
    started = time.perf_counter()
    # The head runs the dashboard only for its job server (``ray job submit``).
    head = {
        "node_ip_address": "127.0.0.2",
        "num_cpus": 2,
        "include_dashboard": True,
        "dashboard_host": "127.0.0.2",
        "dashboard_port": free_port("127.0.0.2"),
    }
    nodes = Cluster(initialize_head=True, head_node_args=head)
    nodes.dashboard_url = f"http://127.0.0.2:{head['dashboard_port']}"
    nodes.add_node(node_ip_address="127.0.0.3", num_cpus=2)
    ray.init(address=nodes.address, logging_level="ERROR", log_to_driver=False)
    nodes.wait_for_nodes()
    print(f"\n2-node cluster up in {time.perf_counter() - started:.1f} s")
    yield nodes
    from ray import serve

    serve.shutdown()
    ray.shutdown()
    nodes.shutdown()


@pytest.fixture(scope="module")
def built(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from searchkit.sharded.ray_build import cluster_rebuild

    root = tmp_path_factory.mktemp("cluster")
    corpus = _write_corpus(root / "corpus")
    settings = Settings(backend="onnx-fp32", index_dir=root / "sharded")
    started = time.perf_counter()
    report = cluster_rebuild([corpus], root / "sharded", settings, 2, actors=2)
    print(f"2-shard rebuild on 2 nodes: {time.perf_counter() - started:.1f} s {report.seconds}")
    # The one-index reference holds the very same vectors, so that only sharding differs.
    encoder = load_encoder(settings)
    vectors = PrecomputedEncoder(encoder, stored_vectors(root / "sharded", encoder))
    build_index([corpus], root / "local", settings, vectors)  # type: ignore[arg-type]
    return {"root": root, "corpus": corpus, "settings": settings, "report": report}


def _cluster_engine(built: dict[str, Any]) -> SearchEngine:
    settings = built["settings"]
    return open_sharded(built["root"] / "sharded", settings, load_query_encoder(settings))


def _top(hits: list[Any]) -> list[tuple[str, int]]:
    return [(h["doc_id"], h["start"]) if isinstance(h, dict) else (h.doc_id, h.start) for h in hits]


def test_rebuild_spreads_embedding_and_shards_over_both_nodes(built: dict[str, Any]) -> None:
    report = built["report"]
    assert report.documents == 48
    assert report.encoded == report.passages > 0
    assert len(report.embed_batches_per_node) == 2, report.embed_batches_per_node
    assert len(set(report.shard_nodes)) == 2
    store = ShardedStore(built["root"] / "sharded")
    manifest = store.manifest(store.require_current())
    assert sum(s["counts"]["documents"] for s in manifest["shards"]) == 48
    for entry in manifest["shards"]:
        shard = SearchEngine.open(store.shard_home(entry["shard"]))
        for doc in shard.info()["sources"]:
            assert doc  # each shard is an ordinary index
        assert entry["counts"]["documents"] > 0


def test_sharded_vector_results_equal_one_local_index(built: dict[str, Any]) -> None:
    settings = built["settings"]
    local = SearchEngine.open(built["root"] / "local", settings)
    sharded = _cluster_engine(built)
    for text in QUERIES:
        assert _top(sharded.query(text, mode="vector").hits) == _top(
            local.query(text, mode="vector").hits
        )
        # BM25 uses each shard's own term statistics: the same passages, perhaps reordered.
        shared = set(_top(sharded.query(text, mode="bm25").hits)) & set(
            _top(local.query(text, mode="bm25").hits)
        )
        assert len(shared) >= 5


def test_a_second_rebuild_reuses_every_vector(built: dict[str, Any]) -> None:
    from searchkit.sharded.ray_build import cluster_rebuild

    settings = built["settings"]
    report = cluster_rebuild([built["corpus"]], built["root"] / "sharded", settings, 2, actors=2)
    assert (report.encoded, report.reused) == (0, report.passages)
    assert report.version == built["report"].version + 1


def test_rebuild_runs_as_a_submitted_job_and_the_cli_queries_it(
    cluster: Any, built: dict[str, Any]
) -> None:
    from ray.job_submission import JobStatus, JobSubmissionClient

    home = built["root"] / "from-job"
    command = [
        sys.executable, "-m", "searchkit", "rebuild", str(built["corpus"]),
        "--index", str(home), "--ray-address", "auto", "--shards", "2", "--backend", "onnx-fp32",
    ]  # fmt: skip
    client = JobSubmissionClient(cluster.dashboard_url)
    started = time.perf_counter()
    job = client.submit_job(entrypoint=shlex.join(command))
    status = client.get_job_status(job)
    while status not in {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED}:
        assert time.perf_counter() - started < 300, "the job did not finish in 5 minutes"
        time.sleep(1)
        status = client.get_job_status(job)
    assert status == JobStatus.SUCCEEDED, client.get_job_logs(job)[-2000:]
    print(f"rebuild as a Ray job: {time.perf_counter() - started:.1f} s")
    assert len(ShardedStore(home).manifest(ShardedStore(home).require_current())["shards"]) == 2

    # `searchkit query` on a sharded index searches its shards in-process.
    for text in QUERIES[:2]:
        shown = subprocess.run(
            [sys.executable, "-m", "searchkit", "query", text, "--index", str(home),
             "--mode", "vector", "--json"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        local = SearchEngine.open(built["root"] / "local", built["settings"])
        assert _top(json.loads(shown.stdout)["hits"]) == _top(local.query(text, mode="vector").hits)


def _search(port: int, text: str, mode: str = "vector") -> dict[str, Any]:
    query = urllib.parse.urlencode({"q": text, "mode": mode})
    with urllib.request.urlopen(f"http://127.0.0.2:{port}/search?{query}", timeout=60) as reply:
        answer: dict[str, Any] = json.load(reply)
    return answer


def test_sharded_service_rolls_out_and_survives_losing_a_node(
    cluster: Any, built: dict[str, Any]
) -> None:
    from ray import serve

    from searchkit.sharded.ray_build import cluster_rebuild
    from searchkit.sharded.ray_serve import APP_NAME, serve_cluster

    settings, home = built["settings"], built["root"] / "sharded"
    port = free_port("127.0.0.2")
    serve_cluster(cluster.address, home, settings, host="127.0.0.2", port=port, replicas=2)
    local = SearchEngine.open(built["root"] / "local", settings)
    for text in QUERIES:
        assert _top(_search(port, text)["hits"]) == _top(local.query(text, mode="vector").hits)
    for shard in range(2):
        handle = serve.get_deployment_handle(f"shard-{shard}", app_name=APP_NAME)
        assert len({handle.node.remote().result() for _ in range(30)}) == 2, (
            "replicas on both nodes"
        )

    # A rebuild publishes a new manifest while queries run: none may fail.
    failures: list[str] = []
    generations: set[int] = set()
    stop = threading.Event()

    def keep_querying() -> None:
        while not stop.is_set():
            try:
                generations.add(_search(port, "solar power", "hybrid")["generation"])
            except Exception as exc:
                failures.append(repr(exc))

    (built["corpus"] / "extra.txt").write_text("Extra\n\nA new note on chess endgame studies.")
    worker = threading.Thread(target=keep_querying)
    worker.start()
    try:
        report = cluster_rebuild([built["corpus"]], home, settings, 2, actors=2)
        deadline = time.monotonic() + 30
        while report.version not in generations and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop.set()
        worker.join()
    assert not failures, failures[:3]
    assert report.version in generations

    # Losing the worker node: the head's replicas answer; Serve restarts the lost ones.
    worker_node = next(node for node in cluster.worker_nodes)
    cluster.remove_node(worker_node)
    lost = time.perf_counter()
    while True:
        try:
            _search(port, "river flooding", "hybrid")
            break
        except Exception:
            assert time.perf_counter() - lost < 120, "no answer two minutes after losing a node"
            time.sleep(0.2)
    print(f"answering again {time.perf_counter() - lost:.2f} s after losing a node")
    for text in QUERIES:
        _search(port, text, "hybrid")


def _rebuild_on_no_cluster(index: Path) -> subprocess.CompletedProcess[str]:
    """``searchkit rebuild seeds`` into ``index`` on a Ray address nobody answers."""
    return subprocess.run(
        [sys.executable, "-m", "searchkit", "rebuild", "seeds", "--index", str(index),
         "--ray-address", "127.0.0.9:9"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_an_unreachable_cluster_fails_at_once(tmp_path: Path) -> None:
    started = time.perf_counter()
    result = _rebuild_on_no_cluster(tmp_path)
    assert result.returncode == 1
    assert "cannot reach the Ray cluster at 127.0.0.9:9" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert time.perf_counter() - started < 60
    assert not any(tmp_path.iterdir())  # nothing was written


def test_a_first_sharded_build_refuses_a_folder_of_other_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    result = _rebuild_on_no_cluster(tmp_path)
    assert result.returncode == 2
    assert "not a searchkit index and holds other files (notes.txt)" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
