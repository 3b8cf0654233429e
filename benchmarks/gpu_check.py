"""GPU encode throughput check (issue 6, item 4): under 5 minutes on one GPU.

Encodes SciFact passages (or synthetic ones when the dataset is absent) with searchkit's torch
backend on ``cuda`` in fp32 and bf16, next to the CPU default, and prints passages per second
plus the cosine agreement of the GPU vectors with CPU fp32. Run: ``python benchmarks/gpu_check.py``
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from searchkit.config import Settings
from searchkit.embed import load_encoder

PASSAGES = 4000


def texts(dataset: Path) -> list[str]:
    corpus = dataset / "corpus.jsonl"
    if not corpus.is_file():
        return [
            f"passage {i} about proteins, cells and clinical trials " * 20 for i in range(PASSAGES)
        ]
    with corpus.open() as handle:
        docs = [json.loads(line) for _, line in zip(range(PASSAGES), handle, strict=False)]
    return [d["title"] + "\n" + d["text"] for d in docs]


def rate(backend: str, device: str, sample: list[str]) -> tuple[float, np.ndarray]:
    encoder = load_encoder(Settings(device=device, batch_size=128), backend)  # type: ignore[arg-type]
    encoder.encode(sample[:256])
    started = time.perf_counter()
    vectors = encoder.encode(sample)
    return len(sample) / (time.perf_counter() - started), vectors


def main() -> None:
    import torch

    if not torch.cuda.is_available():
        print("no CUDA device visible to torch: nothing to check", file=sys.stderr)
        raise SystemExit(1)
    sample = texts(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("../shared/datasets/scifact"))
    print(f"device: {torch.cuda.get_device_name(0)}; {len(sample)} passages")
    reference_rate, reference = rate("torch-fp32", "cpu", sample[:500])
    print(f"cpu  torch-fp32 {reference_rate:8.1f} passages/s (500-passage sample)")
    for backend in ("torch-fp32", "torch-bf16"):
        per_s, vectors = rate(backend, "cuda", sample)
        agreement = float((vectors[:500] * reference).sum(axis=1).min())
        print(f"cuda {backend} {per_s:8.1f} passages/s; least cosine to cpu fp32 {agreement:.5f}")


if __name__ == "__main__":
    main()
