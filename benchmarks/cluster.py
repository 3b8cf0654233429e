"""Ray scale-out on this machine: SciFact rebuilt into 2 shards on a 1-node and on a 2-node
loopback cluster (the same 2 cores, so the difference is Ray's overhead, not a speed-up), query
latency through the sharded Serve service, agreement and nDCG@10 against one local index of
the same vectors, and the time to answer again after losing a node.

    python benchmarks/cluster.py [--dataset ../shared/datasets/scifact] [--queries 200]

Prints its figures and writes them to benchmarks/cluster.json (run.py folds them into
RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from searchkit import build_index
from searchkit.choices import Mode
from searchkit.config import Settings
from searchkit.embed import load_encoder
from searchkit.evaluation.evaluate import evaluate, load_beir
from searchkit.search.engine import SearchEngine, open_sharded
from searchkit.sharded.precomputed import PrecomputedEncoder, stored_vectors

REPO = Path(__file__).resolve().parent.parent
PORT = 18321


def start_cluster(nodes: int) -> Any:
    import ray
    from ray.cluster_utils import Cluster

    os.environ["RAY_AUTH_MODE"] = "disabled"
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"node_ip_address": "127.0.0.2", "num_cpus": 2, "include_dashboard": False},
    )
    for n in range(1, nodes):
        cluster.add_node(node_ip_address=f"127.0.0.{2 + n}", num_cpus=2)
    ray.init(address=cluster.address, logging_level="ERROR", log_to_driver=False)
    cluster.wait_for_nodes()
    return cluster


def stop_cluster(cluster: Any) -> None:
    import ray
    from ray import serve

    serve.shutdown()
    ray.shutdown()
    cluster.shutdown()


def rebuild(corpus: Path, home: Path, settings: Settings) -> dict[str, Any]:
    from searchkit.sharded.ray_build import cluster_rebuild

    started = time.perf_counter()
    report = cluster_rebuild([corpus], home, settings, 2, reuse=False)
    seconds = time.perf_counter() - started
    print(f"  rebuild: {seconds:.1f} s, {report.passages} passages, stages {report.seconds}")
    return {"seconds": round(seconds, 1), "passages": report.passages, "stages": report.seconds}


def search(text: str, mode: str) -> dict[str, Any]:
    query = urllib.parse.urlencode({"q": text, "mode": mode})
    with urllib.request.urlopen(f"http://127.0.0.2:{PORT}/search?{query}", timeout=60) as reply:
        answer: dict[str, Any] = json.load(reply)
    return answer


def agreement(local: SearchEngine, sharded: SearchEngine, queries: list[str]) -> dict[str, float]:
    """Per mode: the share of queries whose top 10 is identical, and mean top-10 overlap."""
    figures = {}
    modes: tuple[Mode, ...] = ("vector", "bm25", "hybrid")
    for mode in modes:
        same = overlap = 0.0
        for text in queries:
            a = [(h.doc_id, h.start) for h in local.query(text, mode=mode).hits]
            b = [(h.doc_id, h.start) for h in sharded.query(text, mode=mode).hits]
            same += a == b
            overlap += len(set(a) & set(b)) / max(len(a), 1)
        figures[mode] = {
            "identical_top10": round(same / len(queries), 3),
            "mean_overlap": round(overlap / len(queries), 3),
        }
        print(f"  {mode}: {figures[mode]}")
    return figures


def serve_figures(
    home: Path, settings: Settings, dataset: Any, queries: list[str]
) -> dict[str, Any]:
    """HTTP latency through the sharded service; top-10 agreement and nDCG@10 against one
    local index of the same vectors (so that only sharding differs)."""
    results: dict[str, Any] = {}
    for text in queries[:10]:
        search(text, "hybrid")  # warm-up: every replica opens its shard
    for mode in ("bm25", "vector", "hybrid"):
        walls = []
        for text in queries:
            started = time.perf_counter()
            search(text, mode)
            walls.append((time.perf_counter() - started) * 1000)
        cuts = statistics.quantiles(walls, n=100)
        results[f"http_{mode}_ms"] = {"p50": round(cuts[49], 1), "p95": round(cuts[94], 1)}
        print(f"  HTTP {mode}: p50 {cuts[49]:.1f} ms, p95 {cuts[94]:.1f} ms")
    print("one local index of the very same vectors:")
    encoder = load_encoder(settings)
    vectors = PrecomputedEncoder(encoder, stored_vectors(home, encoder))
    build_index([dataset.corpus], home.parent / "one-index", settings, vectors)  # type: ignore[arg-type]
    local = SearchEngine.open(home.parent / "one-index", settings)
    modes: list[Mode] = ["bm25", "vector", "hybrid"]
    ndcg = {"one index": _ndcg(dataset, local, modes)}
    results["agreement"] = {}
    for name, global_idf in (("shard IDF", False), ("global IDF", True)):
        print(f"2 shards, {name}:")
        sharded = open_sharded(home, settings.model_copy(update={"global_idf": global_idf}))
        results["agreement"][name] = agreement(local, sharded, queries)
        ndcg[f"2 shards, {name}"] = _ndcg(dataset, sharded, modes)
    for name, scores in ndcg.items():
        print(f"  nDCG@10, {name}: {scores}")
    results["ndcg@10"] = ndcg
    return results


def _ndcg(dataset: Any, engine: Any, modes: list[Mode]) -> dict[str, float]:
    scores = evaluate(dataset, engine, modes)
    return {mode: round(scores[mode]["ndcg@10"], 4) for mode in modes}


def node_loss(cluster: Any, query: str) -> dict[str, Any]:
    """Remove the worker node; time until the service answers again."""
    cluster.remove_node(next(iter(cluster.worker_nodes)))
    lost, failures = time.perf_counter(), 0
    while True:
        try:
            search(query, "hybrid")
            break
        except Exception:
            failures += 1
            time.sleep(0.1)
    recovery = time.perf_counter() - lost
    print(f"  answering again {recovery:.2f} s after losing a node ({failures} failed)")
    return {
        "recovery_after_node_loss_s": round(recovery, 2),
        "failed_requests_during_recovery": failures,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default=str(REPO.parent / "shared/datasets/scifact"))
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    dataset = load_beir(Path(args.dataset), "train")
    queries = list(dataset.queries.values())[: args.queries]
    settings = Settings()
    results: dict[str, Any] = {"corpus": dataset.root.name, "queries": len(queries)}
    with tempfile.TemporaryDirectory() as tmp:
        print("no Ray: searchkit's own build (build_index):")
        started = time.perf_counter()
        build_index([dataset.corpus], Path(tmp) / "local", settings)
        results["build_without_ray_s"] = round(time.perf_counter() - started, 1)
        print(f"  build: {results['build_without_ray_s']} s")
        print("1-node cluster (127.0.0.2, 2 CPUs):")
        cluster = start_cluster(1)
        results["rebuild_1_node"] = rebuild(dataset.corpus, Path(tmp) / "one", settings)
        stop_cluster(cluster)

        print("2-node cluster (127.0.0.2 + 127.0.0.3, 2 CPUs each, one machine):")
        cluster = start_cluster(2)
        home = Path(tmp) / "two"
        results["rebuild_2_nodes"] = rebuild(dataset.corpus, home, settings)

        from searchkit.sharded.ray_serve import serve_cluster

        serve_cluster(cluster.address, home, settings, host="127.0.0.2", port=PORT, replicas=2)
        results.update(serve_figures(home, settings, dataset, queries))
        results.update(node_loss(cluster, queries[0]))
        stop_cluster(cluster)
    (REPO / "benchmarks" / "cluster.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
