"""The build job: documents -> passages -> embeddings -> lexical + vector indexes -> publish.

Everything is written into a new generation directory beside the live one; the live index
changes only at the final atomic replacement of ``CURRENT``.
"""

from __future__ import annotations

import errno
import json
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .catalog import Catalog, CatalogWriter
from .config import Settings
from .documents import IngestStats, iter_documents
from .embed import Encoder, SentenceTransformerEncoder
from .errors import IndexCorruptError, SourceError, StorageError
from .lexical import LexicalIndex, LexicalRow, write_lexical
from .passages import PassageSettings, split_passages
from .records import BuildReport
from .store import FORMAT_VERSION, MANIFEST, Store, atomic_write, file_inventory
from .vectors import VectorIndex, build_vector_index

MAX_TITLE_TOKENS = 64


class Progress(Protocol):
    """Receives progress of long stages; the CLI draws bars from it."""

    def stage(self, name: str, total: int | None = None) -> None: ...
    def advance(self, amount: int = 1) -> None: ...


class SilentProgress:
    def stage(self, name: str, total: int | None = None) -> None:
        pass

    def advance(self, amount: int = 1) -> None:
        pass


@dataclass
class _Job:
    """One build: its inputs, and what it gathered on the way."""

    number: int
    out: Path
    sources: list[Path]
    settings: Settings
    encoder: Encoder
    progress: Progress
    stats: IngestStats = field(default_factory=IngestStats)
    texts: list[str] = field(default_factory=list)
    rows: list[LexicalRow] = field(default_factory=list)
    documents: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


def load_encoder(settings: Settings) -> Encoder:
    """The configured embedding model (loaded lazily, on its first encode)."""
    return SentenceTransformerEncoder(settings.model, settings.device, settings.batch_size)


def has_index(index_dir: Path | str) -> bool:
    """Whether ``index_dir`` has a published generation."""
    return Store(Path(index_dir)).current() is not None


def build_index(
    sources: Iterable[Path | str],
    index_dir: Path | str,
    settings: Settings | None = None,
    encoder: Encoder | None = None,
    progress: Progress | None = None,
) -> BuildReport:
    """Index ``sources`` into a new generation under ``index_dir`` and publish it."""
    settings = settings or Settings()
    source_paths = [Path(s).resolve() for s in sources]
    for missing in (s for s in source_paths if not s.exists()):
        raise SourceError(f"source not found: {missing}")
    store = Store(Path(index_dir))
    with store.build_lock():
        number, partial = store.start_generation()
        try:
            job = _Job(
                number,
                partial,
                source_paths,
                settings,
                encoder or load_encoder(settings),
                progress or SilentProgress(),
            )
            _build_generation(job)
            store.finish_generation(number, partial)
            store.publish(number)
        except BaseException as exc:
            shutil.rmtree(partial, ignore_errors=True)
            if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
                raise StorageError(
                    "disk full while building; the live index is unchanged"
                ) from None
            raise
        store.prune(settings.keep_generations)
    return BuildReport(
        generation=number,
        documents=job.documents,
        passages=len(job.texts),
        skipped=job.stats.skipped,
        replaced_bytes=job.stats.replaced_chars,
        seconds={name: round(value, 3) for name, value in job.seconds.items()},
    )


def _build_generation(job: _Job) -> None:
    clock = time.perf_counter()
    _collect(job)
    job.seconds["read"] = time.perf_counter() - clock

    clock = time.perf_counter()
    job.progress.stage("encoding passages", len(job.texts))
    vectors = job.encoder.encode(job.texts, on_batch=job.progress.advance)
    job.seconds["encode"] = time.perf_counter() - clock

    clock = time.perf_counter()
    job.progress.stage("writing indexes")
    ids = np.arange(len(job.texts), dtype=np.int64)
    atomic_write(job.out / "embeddings.f32", vectors.astype(np.float32).tobytes())
    atomic_write(job.out / "vectors.faiss", build_vector_index(vectors, ids))
    write_lexical(job.out / "lexical", iter(job.rows))
    job.seconds["write"] = time.perf_counter() - clock

    clock = time.perf_counter()
    atomic_write(job.out / MANIFEST, json.dumps(_manifest(job), indent=2).encode())
    _validate(job)
    job.seconds["validate"] = time.perf_counter() - clock


def _collect(job: _Job) -> None:
    """Read every document, cut it into passages and store both in the catalog."""
    writer = CatalogWriter(job.out / "passages.sqlite")
    job.progress.stage("reading documents")
    try:
        for document in iter_documents(job.sources, job.stats):
            context = _embedding_context(document.title, job.encoder)
            budget = job.encoder.max_tokens - job.encoder.count_tokens(context)
            settings = PassageSettings(job.settings.min_passage_words, budget)
            passages = split_passages(document, settings, job.encoder.count_tokens)
            ids = writer.add(document, passages)
            for pid, passage in zip(ids, passages, strict=True):
                job.texts.append(context + passage.text)
                job.rows.append(
                    LexicalRow(pid, document.doc_id, document.path, document.title, passage.text)
                )
            job.documents += 1
            job.progress.advance()
    finally:
        writer.close()
    if not job.texts:
        names = ", ".join(str(s) for s in job.sources)
        raise SourceError(f"no indexable documents in {names} (supported: .txt .md .html .jsonl)")


def _embedding_context(title: str, encoder: Encoder) -> str:
    """What precedes each passage when it is embedded: its document's title, when short.

    A passage alone often lacks its subject ("the patients", "this protein"); the title supplies
    it. Passages are cut to fit the model's window together with this prefix.
    """
    if not title or encoder.count_tokens(title) > MAX_TITLE_TOKENS:
        return ""
    return title + "\n"


def _manifest(job: _Job) -> dict[str, Any]:
    settings, encoder = job.settings, job.encoder
    return {
        "format": FORMAT_VERSION,
        "generation": job.number,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "sources": [str(s) for s in job.sources],
        "counts": {
            "documents": job.documents,
            "passages": len(job.texts),
            "skipped": len(job.stats.skipped),
        },
        "passages": {"min_words": settings.min_passage_words, "max_tokens": encoder.max_tokens},
        "model": {
            "name": encoder.name,
            "dimension": encoder.dimension,
            "normalize": True,
            "fingerprint": encoder.fingerprint,
        },
        "indexes": {"lexical": "tantivy bm25", "vectors": "faiss IndexFlatIP"},
        "files": file_inventory(job.out),
    }


def _validate(job: _Job) -> None:
    """Reopen what was written: tantivy, FAISS and the catalog must agree on the count."""
    expected = len(job.texts)
    catalog = Catalog(job.out / "passages.sqlite")
    try:
        counts = {
            "lexical": LexicalIndex(job.out / "lexical").count,
            "vectors": VectorIndex(job.out / "vectors.faiss").count,
            "catalog": catalog.counts()[1],
        }
    finally:
        catalog.close()
    if any(count != expected for count in counts.values()):
        raise IndexCorruptError(f"new generation is inconsistent ({counts}, expected {expected})")
