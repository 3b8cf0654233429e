"""Real-text ingestion section: 100k+ passages of HTML documentation through the real pipeline.

Reading, HTML extraction, passage splitting, the catalog and tantivy all run for real; only
the vectors are random, because encoding 225k passages would add about 25 minutes on 2 cores to
every benchmark run. The encoding rate is measured apart, on a sample of the same passages,
with the default backend.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from searchkit import build_index
from searchkit.config import Settings
from searchkit.embed import ModelFolder, load_encoder, passage_backend

# Debian's kernel documentation (apt-get install linux-doc): 3,185 HTML pages and their reST
# sources, 225k passages.
DEFAULT_SOURCES = ("linux-doc-*/html", "python3*/html")
DOC_ROOT = Path("/usr/share/doc")
SAMPLE = 2000


@dataclass
class IngestRow:
    source: str
    documents: int
    passages: int
    read_s: float
    write_s: float
    read_per_s: float
    tantivy_per_s: float
    encode_backend: str
    encode_per_s: float
    projected_encode_s: float
    kinds: str = ""  # files by suffix: Sphinx output holds reST sources (.txt) beside its HTML


def file_kinds(source: Path) -> str:
    """'3,185 .html, 3,183 .txt': the indexable files under ``source`` by suffix."""
    counts = Counter(p.suffix for p in source.rglob("*") if p.suffix in {".html", ".txt", ".md"})
    return ", ".join(f"{n:,} {suffix}" for suffix, n in counts.most_common())


class RandomVectors(ModelFolder):
    """Random unit vectors, recording what would have been embedded; the real model's name,
    fingerprint and token counts."""

    variant = "random"

    def __init__(self) -> None:
        super().__init__(Settings().model)
        self.dimension = int(self.pooling["word_embedding_dimension"])
        self.texts: list[str] = []

    def encode(
        self, texts: Sequence[str], on_batch: Callable[[int], None] | None = None
    ) -> np.ndarray:
        self.texts.extend(texts)
        shape = (len(texts), self.dimension)
        vectors = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def find_source(given: str | None) -> Path | None:
    if given:
        return Path(given) if Path(given).exists() else None
    for pattern in DEFAULT_SOURCES:
        found = sorted(DOC_ROOT.glob(pattern))
        if found:
            return found[-1]
    return None


def ingest_row(source: Path) -> IngestRow:
    encoder = RandomVectors()
    with tempfile.TemporaryDirectory() as tmp:
        report = build_index([source], Path(tmp) / "index", Settings(), encoder)
    sample = encoder.texts[:: max(1, len(encoder.texts) // SAMPLE)][:SAMPLE]
    backend = passage_backend(Settings())
    real = load_encoder(Settings())
    real.encode(sample[:32])  # model load and first-call costs
    started = time.perf_counter()
    real.encode(sample)
    rate = len(sample) / (time.perf_counter() - started)
    read_s, write_s = report.seconds["read"], report.seconds["write"]
    row = IngestRow(
        str(source),
        report.documents,
        report.passages,
        read_s,
        write_s,
        report.passages / read_s,
        report.passages / write_s,
        backend,
        rate,
        report.passages / rate,
        file_kinds(source),
    )
    print(
        f"{source}: {row.documents:,} documents, {row.passages:,} passages; read+split+catalog "
        f"{row.read_per_s:,.0f} passages/s, tantivy+FAISS write {row.tantivy_per_s:,.0f} "
        f"passages/s; encoding ({backend}) {rate:.1f} passages/s on a {len(sample)}-passage "
        f"sample, so {row.projected_encode_s / 60:.0f} min for all"
    )
    return row
