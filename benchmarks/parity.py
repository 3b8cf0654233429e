"""A local index and a 2-shard home of the same documents answer alike, through the CLI alone.

The first DOCS SciFact documents are indexed twice, each build encoding on its own: once with
`searchkit index`, once with `searchkit rebuild --ray-address ... --shards 2` on a local Ray
cluster. With Ray stopped, `searchkit info --json` of both and `searchkit query --json` of
QUERIES judged queries in every mode are compared: the counts, the fusion in effect, and each
query's top-10 overlap.

    python benchmarks/parity.py [--dataset ../shared/datasets/scifact] [--docs 600] [--queries 40]

Prints its figures and writes them to benchmarks/parity.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
MODES = ("bm25", "vector", "hybrid")


def searchkit(*args: str) -> Any:
    """Run the CLI in its own process and return its JSON."""
    done = subprocess.run(
        [sys.executable, "-m", "searchkit", *args, "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"searchkit {' '.join(args)} failed: {done.stderr.strip()}")
    return json.loads(done.stdout)


def sample(dataset: Path, docs: int, queries: int, folder: Path) -> tuple[Path, list[str]]:
    """The first ``docs`` documents as a corpus, and judged queries whose documents it holds."""
    corpus = folder / "corpus.jsonl"
    with (dataset / "corpus.jsonl").open() as source:
        lines = list(islice(source, docs))
    corpus.write_text("".join(lines))
    held = {json.loads(line)["_id"] for line in lines}
    judged: set[str] = set()
    for split in sorted((dataset / "qrels").glob("*.tsv")):
        for row in split.read_text().splitlines()[1:]:
            qid, doc, *_ = row.split("\t")
            if doc in held:
                judged.add(qid)
    texts = []
    with (dataset / "queries.jsonl").open() as source:
        for line in source:
            record = json.loads(line)
            if record["_id"] in judged:
                texts.append(record["text"])
    return corpus, texts[:queries]


def build_sharded(corpus: Path, home: Path) -> float:
    import ray
    from ray.cluster_utils import Cluster

    os.environ["RAY_AUTH_MODE"] = "disabled"
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"node_ip_address": "127.0.0.2", "num_cpus": 2, "include_dashboard": False},
    )
    try:
        cluster.wait_for_nodes()
        started = time.perf_counter()
        searchkit("rebuild", str(corpus), "--index", str(home), "--ray-address", cluster.address,
                  "--shards", "2", "--quiet")  # fmt: skip
        return time.perf_counter() - started
    finally:
        ray.shutdown()
        cluster.shutdown()


def overlap(local: Path, sharded: Path, text: str, mode: str) -> float:
    tops = [top10(home, text, mode) for home in (local, sharded)]
    return len(tops[0] & tops[1]) / max(len(tops[0]), 1)


def top10(home: Path, text: str, mode: str) -> set[tuple[str, int]]:
    hits = searchkit("query", text, "--index", str(home), "-m", mode)["hits"]
    return {(hit["doc_id"], hit["start"]) for hit in hits}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", type=Path, default=REPO.parent / "shared/datasets/scifact")
    parser.add_argument("--docs", type=int, default=600)
    parser.add_argument("--queries", type=int, default=40)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="searchkit-parity-"))
    corpus, queries = sample(args.dataset, args.docs, args.queries, folder)
    local, sharded = folder / "local", folder / "sharded"
    started = time.perf_counter()
    searchkit("index", str(corpus), "--index", str(local), "--quiet")
    print(f"local build: {time.perf_counter() - started:.1f} s")
    print(f"sharded build on Ray: {build_sharded(corpus, sharded):.1f} s (Ray stopped after)")
    infos = {name: searchkit("info", "--index", str(home)) for name, home in
             (("local", local), ("sharded", sharded))}  # fmt: skip
    result: dict[str, Any] = {
        "documents": args.docs,
        "queries": len(queries),
        "info": {
            name: {key: info[key] for key in ("documents", "passages", "shards", "fusion")}
            for name, info in infos.items()
        },
        "overlap": {},
    }
    for name, info in result["info"].items():
        print(f"info {name}: {info}")
    for mode in MODES:
        values = [overlap(local, sharded, text, mode) for text in queries]
        result["overlap"][mode] = {"mean": statistics.mean(values), "min": min(values)}
        print(f"top-10 overlap, {mode}: mean {statistics.mean(values):.3f}, min {min(values):.2f}")
    (REPO / "benchmarks" / "parity.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
