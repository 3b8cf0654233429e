"""Build throughput section: `searchkit index` per encoder backend next to plain
``SentenceTransformer.encode`` of the very same passage texts, interleaved round by round."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sentence_transformers import SentenceTransformer

from searchkit import build_index
from searchkit.choices import Backend
from searchkit.config import Settings
from searchkit.embed import Encoder, load_encoder, passage_backend
from searchkit.embed.model import resolve_model

BACKENDS: tuple[Backend, ...] = ("torch-fp32", "onnx-fp32", "onnx-int8", "torch-bf16")


@dataclass
class ThroughputRow:
    what: str
    passages: int
    passages_per_s: float
    seconds: list[float]


class Recording:
    """Wraps an encoder and keeps the texts it was asked to encode."""

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner
        self.texts: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def encode(self, texts: Sequence[str], on_batch: Callable[[int], None] | None = None) -> Any:
        self.texts.extend(texts)
        return self.inner.encode(texts, on_batch)


def _subset(dataset: Path, documents: int, folder: Path) -> Path:
    """The first ``documents`` lines of the BEIR corpus, as a corpus of their own."""
    target = folder / "corpus.jsonl"
    with (dataset / "corpus.jsonl").open() as source, target.open("w") as out:
        for _, line in zip(range(documents), source, strict=False):
            out.write(line)
    return target


def throughput_rows(dataset: Path, documents: int = 600, rounds: int = 3) -> list[ThroughputRow]:
    settings = Settings()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = _subset(dataset, documents, Path(tmp))
        recorder = Recording(load_encoder(settings, "onnx-fp32"))
        probe = build_index([corpus], Path(tmp) / "probe", settings, recorder)  # type: ignore[arg-type]
        # A build encodes its passages first; its self-check's held-out texts come after them.
        texts = recorder.texts[: probe.passages]
        model = SentenceTransformer(str(resolve_model(settings.model)), device="cpu")
        encoders = {backend: load_encoder(settings, backend) for backend in BACKENDS}
        model.encode(texts[:64], batch_size=32)  # warm-ups: model loads and first-call costs
        for encoder in encoders.values():
            encoder.encode(texts[:64])
        timings: dict[str, list[float]] = {"plain": []} | {b: [] for b in BACKENDS}
        for round_number in range(rounds):
            started = time.perf_counter()
            model.encode(texts, batch_size=32, normalize_embeddings=True)
            timings["plain"].append(time.perf_counter() - started)
            for backend, encoder in encoders.items():
                index = Path(tmp) / f"{backend}-{round_number}"
                started = time.perf_counter()
                report = build_index([corpus], index, settings, encoder, reuse=False)
                timings[backend].append(time.perf_counter() - started)
                assert report.passages == len(texts)
    default = passage_backend(settings)
    rows = [_row("plain SentenceTransformer.encode (fp32, batch 32)", len(texts), timings["plain"])]
    for backend in BACKENDS:
        label = f"searchkit index, --backend {backend}" + (" (default)" * (backend == default))
        rows.append(_row(label, len(texts), timings[backend]))
    return rows


def _row(what: str, passages: int, seconds: list[float]) -> ThroughputRow:
    best = min(seconds)  # least disturbed by the machine's other work
    result = ThroughputRow(what, passages, passages / best, [round(s, 2) for s in seconds])
    print(f"{what:<58} {result.passages_per_s:7.1f} passages/s  {result.seconds}")
    return result


def quality_rows(dataset: Path, split: str, home: Path) -> dict[str, dict[str, float]]:
    """nDCG@10 per mode for each passage backend (the evaluation index is cached per backend)."""
    from searchkit.evaluation.evaluate import evaluate, load_beir, open_eval_engine

    beir = load_beir(dataset, split)
    scores = {}
    for backend in ("torch-fp32", "torch-bf16", "onnx-int8"):
        settings = Settings(index_dir=home, backend=backend)
        engine = open_eval_engine(beir, home, settings)
        results = evaluate(beir, engine, ["vector", "hybrid"])
        scores[backend] = {mode: values["ndcg@10"] for mode, values in results.items()}
        print(f"nDCG@10 with passages from {backend}: {json.dumps(scores[backend])}")
    return scores


# The plain side of the whole-process comparison: what a user would write without searchkit.
PLAIN_SCRIPT = """
import json, sys
from sentence_transformers import SentenceTransformer
model = SentenceTransformer(sys.argv[1], device="cpu")
with open(sys.argv[2]) as corpus:
    records = [json.loads(line) for line in corpus]
model.encode([r.get("title", "") + "\\n" + r["text"] for r in records], batch_size=32,
             normalize_embeddings=True)
"""


def whole_process(dataset: Path, documents: int = 1500, rounds: int = 3) -> dict[str, Any]:
    """Wall seconds of a whole `searchkit index` process over the first ``documents`` of the
    corpus, next to a whole process encoding the same documents with sentence-transformers
    (each document as one text, cut at the model's window), interleaved round by round."""
    searchkit = str(Path(sys.executable).with_name("searchkit"))
    model = str(resolve_model(Settings().model))
    seconds: dict[str, list[float]] = {"plain": [], "searchkit": []}
    with tempfile.TemporaryDirectory() as tmp:
        corpus = _subset(dataset, documents, Path(tmp))
        for round_number in range(rounds):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", PLAIN_SCRIPT, model, str(corpus)], check=True)
            seconds["plain"].append(time.perf_counter() - started)
            index = Path(tmp) / f"index-{round_number}"
            started = time.perf_counter()
            argv = [searchkit, "index", str(corpus), "--index", str(index), "--quiet"]
            subprocess.run(argv, check=True, capture_output=True)
            seconds["searchkit"].append(time.perf_counter() - started)
    return {"documents": documents, "seconds": seconds}
