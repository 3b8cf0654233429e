"""Scale section: vector index kinds by size, and hybrid search over 1M synthetic passages.

Synthetic passage vectors are real SciFact passage embeddings plus Gaussian noise, renormalized,
so they keep the clustered shape of real embeddings (uniform random vectors would make every
approximate index look bad and every exact one look normal). Queries are real SciFact queries
encoded by the real model. Passage texts are synthetic too: words drawn by frequency from the
SciFact corpus, one paragraph per document.

    python benchmarks/scale.py hybrid --passages 1000000 --out FILE   (one stage, own process)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from searchkit import SearchEngine, build_index
from searchkit.config import Settings
from searchkit.embed import ModelFolder, load_query_encoder
from searchkit.storage.store import Store
from searchkit.storage.vectors import IndexPlan, VectorIndex, build_vector_index

NOISE = 0.08  # per dimension: a synthetic vector keeps cosine ~0.6 with the embedding it came from
DEPTH = 300  # what each leg asks for in a hybrid query


@dataclass
class VectorRow:
    passages: int
    kind: str
    build_s: float
    recall_at_10: float
    p50_ms: float
    p95_ms: float
    bytes_per_passage: float


def synthetic_vectors(base: np.ndarray, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((count, base.shape[1]), dtype=np.float32)
    for start in range(0, count, 100_000):
        stop = min(count, start + 100_000)
        chunk = base[rng.integers(0, len(base), stop - start)]
        chunk = chunk + NOISE * rng.standard_normal(chunk.shape, dtype=np.float32)
        out[start:stop] = chunk / np.linalg.norm(chunk, axis=1, keepdims=True)
    return out


def percentiles(values: Sequence[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(values, n=100)
    return cuts[49], cuts[94]


def vector_rows(base: np.ndarray, queries: np.ndarray, sizes: Sequence[int]) -> list[VectorRow]:
    """Recall@10 against exact search, single-query latency at the leg's depth, and size."""
    rows = []
    for count in sizes:
        vectors = synthetic_vectors(base, count, seed=count)
        exact = faiss.IndexFlatIP(vectors.shape[1])
        exact.add(vectors)
        _, truth = exact.search(queries, 10)
        del exact
        kinds = ["flat", "ivf", "hnsw"] if count <= 200_000 else ["ivf", "hnsw"]
        for kind in kinds:
            rows.append(_measure_kind(vectors, queries, truth, kind))
    return rows


def _measure_kind(
    vectors: np.ndarray, queries: np.ndarray, truth: np.ndarray, kind: str
) -> VectorRow:
    plan = IndexPlan(kind=kind)  # type: ignore[arg-type]
    started = time.perf_counter()
    blob = build_vector_index(vectors, np.arange(len(vectors), dtype=np.int64), plan)
    build_s = time.perf_counter() - started
    with tempfile.NamedTemporaryFile(suffix=".faiss") as handle:
        handle.write(blob)
        handle.flush()
        settings = Settings()
        index = VectorIndex(Path(handle.name), settings.hnsw_ef_search, settings.ivf_probe_share)
    faiss.omp_set_num_threads(1)
    found, latencies = 0, []
    for query, want in zip(queries, truth, strict=True):
        started = time.perf_counter()
        ranked = index.search(query, DEPTH)
        latencies.append((time.perf_counter() - started) * 1000)
        found += len({r.passage_id for r in ranked[:10]} & set(want.tolist()))
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    p50, p95 = percentiles(latencies)
    row = VectorRow(
        len(vectors), kind, build_s, found / truth.size, p50, p95, len(blob) / len(vectors)
    )
    print(
        f"{kind:<5} {len(vectors):>9,} passages: build {build_s:6.1f} s, recall@10 "
        f"{row.recall_at_10:.3f}, p50 {p50:.2f} ms, p95 {p95:.2f} ms, "
        f"{row.bytes_per_passage:.0f} bytes/passage"
    )
    return row


# --- hybrid search over synthetic passages, each stage in a process of its own ---------------


class SyntheticEncoder(ModelFolder):
    """Passage vectors from ``synthetic_vectors``; name, fingerprint and token counts of the
    real model, so the engine accepts the real query encoder."""

    variant = "synthetic"

    def __init__(self, base: np.ndarray) -> None:
        super().__init__(Settings().model)
        self._base = base
        self._seed = 0
        self.dimension = base.shape[1]

    def encode(
        self, texts: Sequence[str], on_batch: Callable[[int], None] | None = None
    ) -> np.ndarray:
        self._seed += 1
        vectors = synthetic_vectors(self._base, len(texts), seed=self._seed)
        if on_batch is not None:
            on_batch(len(texts))
        return vectors


def vocabulary(corpus: Path, documents: int = 3000) -> tuple[list[str], np.ndarray]:
    counts: Counter[str] = Counter()
    with corpus.open() as handle:
        for _, line in zip(range(documents), handle, strict=False):
            counts.update(json.loads(line)["text"].lower().split())
    words = [w.strip(".,;:()[]") for w, _ in counts.most_common(20_000)]
    weights = np.array([c for _, c in counts.most_common(20_000)], dtype=np.float64)
    return words, weights / weights.sum()


def synthetic_documents(
    count: int, words: list[str], weights: np.ndarray
) -> Iterator[dict[str, str]]:
    """``count`` one-paragraph documents of 30 to 60 words each, words drawn by frequency."""
    rng = np.random.default_rng(1)
    for start in range(0, count, 10_000):
        batch = min(10_000, count - start)
        lengths = rng.integers(30, 61, batch)
        drawn = rng.choice(len(words), size=int(lengths.sum()) + 4 * batch, p=weights)
        offset = 0
        for i, length in enumerate(lengths):
            title = " ".join(words[w] for w in drawn[offset : offset + 4])
            body = " ".join(words[w] for w in drawn[offset + 4 : offset + 4 + length])
            offset += 4 + length
            yield {"_id": f"s{start + i}", "title": title, "text": body + "."}


def synthetic_corpus(folder: Path, count: int, words: list[str], weights: np.ndarray) -> None:
    """The documents as BEIR jsonl files of 100k each (about 35 MB: the reader skips files
    over 64 MiB)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = None
    for number, doc in enumerate(synthetic_documents(count, words, weights)):
        if number % 100_000 == 0:
            if out is not None:
                out.close()
            out = (folder / f"part{number // 100_000:03d}.jsonl").open("w")
        assert out is not None
        out.write(json.dumps(doc) + "\n")
    if out is not None:
        out.close()


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB, since it started its program: Linux's
    ``VmHWM``. Not ``ru_maxrss``, which a process started by another keeps from its parent
    (Linux carries the high-water mark over ``execve``): a stage started by a harness that
    held 5 GB read 5 GB."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stage_build(index: Path, passages: int, base_file: Path, scifact: Path) -> dict[str, Any]:
    base = np.load(base_file)
    words, weights = vocabulary(scifact / "corpus.jsonl")
    corpus = index.parent / "synthetic"
    synthetic_corpus(corpus, passages, words, weights)
    started = time.perf_counter()
    report = build_index([corpus], index, Settings(), SyntheticEncoder(base))
    seconds = time.perf_counter() - started
    shutil.rmtree(corpus)
    return {
        "passages": report.passages,
        "build_s": seconds,
        "stages": report.seconds,
        "build_peak_rss_mb": peak_rss_mb(),
    }


def stage_query(index: Path, queries: list[str]) -> dict[str, Any]:
    faiss.omp_set_num_threads(1)
    settings = Settings()
    engine = SearchEngine.open(index, settings, load_query_encoder(settings))
    opened_rss = peak_rss_mb()
    engine.query(queries[0])
    timings: dict[str, list[float]] = {"bm25": [], "vector": [], "hybrid": []}
    for text in queries:
        for mode, values in timings.items():
            started = time.perf_counter()
            engine.query(text, mode=mode)  # type: ignore[arg-type]
            values.append((time.perf_counter() - started) * 1000)
    result: dict[str, Any] = {"open_peak_rss_mb": opened_rss, "query_peak_rss_mb": peak_rss_mb()}
    result["vector_index"] = engine.manifest["indexes"]["vectors"]
    for mode, values in timings.items():
        result[f"{mode}_p50_ms"], result[f"{mode}_p95_ms"] = percentiles(values)
    result["recall_at_10"] = _engine_recall(engine, queries, settings)
    info = engine.info()
    parts: Counter[str] = Counter()
    for name, size in info["files"].items():
        parts[name.split("/")[0]] += size
    result["bytes_per_passage"] = {part: size / info["passages"] for part, size in parts.items()}
    return result


def _engine_recall(engine: SearchEngine, queries: list[str], settings: Settings) -> float:
    """Recall@10 of the index's own vector search against exact search over its stored vectors."""
    root = Store(engine.home).path(engine.generation)
    dimension = engine.manifest["model"]["dimension"]
    stored = np.fromfile(root / "embeddings.f32", dtype=np.float32).reshape(-1, dimension)
    probes = load_query_encoder(settings).encode(queries)
    scores = np.concatenate(
        [probes @ stored[start : start + 100_000].T for start in range(0, len(stored), 100_000)],
        axis=1,
    )
    truth = np.argpartition(-scores, 10, axis=1)[:, :10]  # a set: order does not matter
    index = VectorIndex(root / "vectors.faiss", settings.hnsw_ef_search, settings.ivf_probe_share)
    found = sum(
        len({r.passage_id for r in index.search(probe, DEPTH)[:10]} & set(want.tolist()))
        for probe, want in zip(probes, truth, strict=True)
    )
    return found / truth.size


def hybrid_at_scale(passages: int, base: np.ndarray, scifact: Path, queries: list[str]) -> dict:
    """Build and query a synthetic index of ``passages``, each stage in a fresh process."""
    with tempfile.TemporaryDirectory() as tmp:
        base_file = Path(tmp) / "base.npy"
        np.save(base_file, base)
        query_file = Path(tmp) / "queries.json"
        query_file.write_text(json.dumps(queries))
        index = Path(tmp) / "index"
        result: dict[str, Any] = {}
        for stage in ("build", "query"):
            out = Path(tmp) / f"{stage}.json"
            argv = [
                sys.executable,
                __file__,
                stage,
                "--index",
                str(index),
                "--out",
                str(out),
                "--passages",
                str(passages),
                "--base",
                str(base_file),
                "--scifact",
                str(scifact),
                "--queries",
                str(query_file),
            ]
            subprocess.run(argv, check=True)
            result |= json.loads(out.read_text())
    print(json.dumps(result, indent=2))
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("stage", choices=["build", "query"])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--passages", type=int, default=1_000_000)
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--scifact", type=Path, required=True)
    parser.add_argument("--queries", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.stage == "build":
        result = stage_build(args.index, args.passages, args.base, args.scifact)
    else:
        result = stage_query(args.index, json.loads(args.queries.read_text()))
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
