"""One build: its inputs (and what the live generation says of them), what it gathers on the
way, and what it writes about itself (the generation's manifest and the caller's report)."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..choices import Language
from ..config import Settings
from ..embed import Encoder
from ..errors import IndexCorruptError
from ..ingest.documents import IngestStats, id_base
from ..records import BuildReport, Document
from ..storage.analysis import (
    DEFAULT_LANGUAGE,
    Languages,
    document_language,
    latin_language,
    main_language,
    manifest_languages,
)
from ..storage.catalog import Catalog
from ..storage.generation import CATALOG
from ..storage.lexical import LexicalRow
from ..storage.live import live_record
from ..storage.store import FORMAT_VERSION, Store, file_inventory
from ..storage.vectors import IndexPlan, describe
from .reuse import EmbeddingReuse

if TYPE_CHECKING:
    import numpy as np


class Progress(Protocol):
    """Receives progress of long stages; the CLI draws bars from it."""

    def stage(self, name: str, total: int | None = None) -> None: ...
    def advance(self, amount: int = 1) -> None: ...


@dataclass(frozen=True)
class LiveInput:
    """What a build takes from the index's live-written documents (``storage.live``): a full
    generation takes all of them, a delta generation those written since its base."""

    documents: list[Document]  # to index, after (or, in a delta, instead of) the files
    hidden: frozenset[str]  # ids of files or base documents the live writes replace or delete
    record: dict[str, Any]  # the manifest's "live" entry
    delta_of: int | None = None  # a delta over this full generation: live documents alone
    # A delta's language and how it was chosen: its base's, so both layers read one way.
    base_language: tuple[Language, dict[str, Any]] | None = None


@dataclass
class Job:
    """One build: its inputs, and what it gathered on the way."""

    number: int
    out: Path
    sources: list[Path]
    settings: Settings
    encoder: Encoder
    progress: Progress
    reuse: EmbeddingReuse | None
    only: Callable[[Document], bool] | None = None
    query_encoder: Encoder | None = None  # encodes the self-check's held-out sentences
    id_base: Path | None = None  # the folder file ids are relative to (None: from sources)
    live_docs: LiveInput | None = None  # the documents written live, for this build
    stats: IngestStats = field(default_factory=IngestStats)
    texts: list[str] = field(default_factory=list)  # what is embedded, per passage
    reused: dict[int, np.ndarray] = field(default_factory=dict)  # passage id -> stored vector
    rows: list[LexicalRow] = field(default_factory=list)
    document_hashes: dict[str, str] = field(default_factory=dict)
    kept_language: Language | None = None  # the live generation's, where it was configured
    detected: Counter[str] = field(default_factory=Counter)  # documents per language ("": none)
    language: Language = DEFAULT_LANGUAGE  # the main language of Latin script in this index
    language_choice: dict[str, Any] = field(default_factory=dict)  # how, for the manifest
    self_check: dict[str, Any] | None = None
    seconds: dict[str, float] = field(default_factory=dict)


def document_base(store: Store, sources: list[Path]) -> Path | None:
    """The folder the ids of ``sources`` are relative to, kept from the live generation where
    it holds them all (``ingest.documents.id_base``); None without sources (live documents
    alone)."""
    if not sources:
        return None
    previous = live_manifest(store).get("id_base")
    return id_base(sources, Path(previous) if previous else None)


def live_manifest(store: Store) -> dict[str, Any]:
    """The live generation's manifest, of any format; {} without one, or a damaged one (which
    the build replaces)."""
    current = store.current()
    if current is not None:
        with contextlib.suppress(IndexCorruptError):
            manifest: dict[str, Any] = store.manifest(current, any_format=True)
            return manifest
    return {}


def live_sources(index_dir: Path | str) -> list[Path]:
    """The sources the live generation was built from (what a plain rebuild re-reads)."""
    store = Store(Path(index_dir))
    manifest = store.manifest(store.require_current(), any_format=True)
    return [Path(s) for s in manifest["sources"]]


def _configured(job: Job) -> Language | None:
    """The language every document is read in, where one was set (or kept by a rebuild)."""
    live = job.live_docs
    if live is not None and live.base_language is not None:  # a delta reads as its base
        main, choice = live.base_language
        return main if choice.get("source") == "configured" else None
    if job.settings.language is None:  # unset: a language set before is kept
        return job.kept_language
    return None if job.settings.language == "auto" else job.settings.language


def detect_language(job: Job, document: Document) -> Language | None:
    """The Latin-script language ``document`` is written in, where it is detected (None: the
    index's main language reads it), counted for the manifest."""
    found = None if _configured(job) else latin_language(document_language(document.text))
    job.detected[found or ""] += 1
    return found


def choose_language(job: Job) -> None:
    """The main language of Latin script: set, kept or a delta's base's; else the one most
    documents are written in."""
    configured = _configured(job)
    if job.live_docs is not None and job.live_docs.base_language is not None:
        job.language, job.language_choice = job.live_docs.base_language
    elif configured is not None:
        job.language, job.language_choice = configured, {"source": "configured"}
    else:
        job.language = main_language(job.detected)
        job.language_choice = {"source": "detected"}


def index_languages(job: Job) -> Languages:
    """The languages this index's documents are analyzed in, the main one first."""
    return manifest_languages({"language": job.language, "languages": analyzed_languages(job)})


def analyzed_languages(job: Job) -> dict[str, int]:
    """How many documents are analyzed in each language, the main one first."""
    others = {lang: n for lang, n in job.detected.items() if lang not in {"", job.language}}
    main = job.detected[""] + job.detected[job.language]
    return {job.language: main, **dict(sorted(others.items()))}


def kept_language(live: dict[str, Any]) -> Language | None:
    """The live generation's language (``live``: its manifest) where it was configured, for a
    rebuild to keep."""
    if live.get("language_choice", {}).get("source") != "configured":
        return None
    return manifest_languages(live)[0]


def index_plan(settings: Settings) -> IndexPlan:
    return IndexPlan(
        settings.vector_index, settings.exact_limit, settings.hnsw_m, settings.hnsw_ef_construction
    )


def manifest(job: Job) -> dict[str, Any]:
    encoder, settings = job.encoder, _settings(job)
    return {
        "format": FORMAT_VERSION,
        "generation": job.number,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "sources": settings["sources"],
        "id_base": None if job.id_base is None else str(job.id_base),
        "counts": {
            "documents": len(job.document_hashes),
            "passages": len(job.texts),
            "skipped": len(job.stats.skipped),
            "encoded": len(job.texts) - len(job.reused),
            "reused": len(job.reused),
        },
        "passages": settings["passages"],
        "model": {
            "name": encoder.name,
            "dimension": encoder.dimension,
            "normalize": True,
            "fingerprint": encoder.fingerprint,
            "variant": encoder.variant,
        },
        "indexes": settings["indexes"],
        "language": settings["language"],
        "language_choice": settings["language_choice"],
        "languages": settings["languages"],
        "self_check": job.self_check,
        "live": None if job.live_docs is None else job.live_docs.record,
        "files": file_inventory(job.out),
    }


def _vector_description(job: Job) -> str:
    plan = index_plan(job.settings)
    return describe(plan.choose_kind(len(job.texts)), plan, len(job.texts))


def report(job: Job) -> BuildReport:
    before = job.reuse.documents if job.reuse else {}
    after = job.document_hashes
    return BuildReport(
        generation=job.number,
        documents=len(after),
        passages=len(job.texts),
        added=sum(1 for doc in after if doc not in before),
        changed=sum(1 for doc, digest in after.items() if doc in before and before[doc] != digest),
        removed=sum(1 for doc in before if doc not in after),
        encoded=len(job.texts) - len(job.reused),
        reused=len(job.reused),
        model_changed=bool(job.reuse and job.reuse.model_changed),
        skipped=job.stats.skipped,
        replaced_bytes=job.stats.replaced_chars,
        seconds={name: round(value, 3) for name, value in job.seconds.items()},
    )


def unchanged(job: Job) -> bool:
    """Whether the generation being built would repeat the live one: the same catalog (every
    document, passage, title and metadata value), sources, model and precision, passage and
    index settings. Publishing it would only push an older generation out of retention."""
    reuse = job.reuse
    if (
        reuse is None
        or reuse.generation is None
        or reuse.model_changed
        or len(job.reused) < len(job.texts)
    ):
        return False
    if reuse.manifest.get("format") != FORMAT_VERSION:  # an older format is always replaced
        return False
    if "base" in live_record(reuse.manifest):  # a delta is folded into a full generation
        return False
    catalog = Catalog(job.out / CATALOG)
    try:
        same_rows = catalog.fingerprint() == reuse.catalog_fingerprint
    finally:
        catalog.close()
    return same_rows and all(
        value == reuse.manifest.get(key) for key, value in _settings(job).items()
    )


def _settings(job: Job) -> dict[str, Any]:
    """What the manifest records of how the generation was built, besides the model."""
    return {
        "sources": [str(s) for s in job.sources],
        "passages": {
            "min_words": job.settings.min_passage_words,
            "max_tokens": job.encoder.max_tokens,
        },
        "indexes": {"lexical": "tantivy bm25", "vectors": _vector_description(job)},
        "language": job.language,
        "language_choice": job.language_choice,
        "languages": analyzed_languages(job),
    }
