"""The build job: documents -> passages -> embeddings -> lexical + vector indexes -> publish.

Everything is written into a new generation directory beside the live one; the live index
changes only at the final atomic replacement of ``CURRENT``. Passages whose embedded text is
unchanged take their vectors from the live generation instead of being encoded again.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..config import Settings
from ..embed import Encoder, load_encoder, load_query_encoder, prepared_query_encoder
from ..errors import IndexCorruptError, ShrinkRefusedError, SourceError, StorageError
from ..ingest.documents import SUPPORTED_SUFFIXES, iter_documents
from ..ingest.passages import embedded_passages
from ..records import BuildReport, Document
from ..storage.catalog import CatalogWriter, content_hash
from ..storage.generation import CATALOG, EMBEDDINGS, LEXICAL, MANIFEST, VECTORS, passage_counts
from ..storage.lexical import LexicalRow, write_lexical
from ..storage.store import Store, atomic_write
from ..storage.vectors import build_vector_index
from .job import (
    Job,
    Progress,
    choose_language,
    detect_language,
    document_base,
    index_languages,
    index_plan,
    kept_language,
    live_manifest,
    live_sources,
    manifest,
    report,
    unchanged,
)
from .livedocs import delta_bases, live_input, nothing_new
from .reuse import EmbeddingReuse
from .selfcheck import check_generation, sentence_encoder

SHRINK_LIMIT = 0.5  # publishing under half the live documents needs allow_shrink
CRASH_AFTER_VARIABLE = "SEARCHKIT_CRASH_AFTER"
CRASH_POINTS = (
    "started",  # the .partial directory exists
    "catalog",  # passages.sqlite written
    "vectors",  # embeddings.f32 and vectors.faiss written
    "lexical",  # tantivy committed
    "manifest",  # manifest.json written, generation validated
    "renamed",  # .partial renamed to its final name, not yet live
    "published",  # CURRENT replaced
)


class SilentProgress:
    def stage(self, name: str, total: int | None = None) -> None:
        pass

    def advance(self, amount: int = 1) -> None:
        pass


__all__ = ["Progress", "build_index", "document_base", "live_sources", "load_encoder"]


def build_index(
    sources: Iterable[Path | str] | Path | str,
    index_dir: Path | str,
    settings: Settings | None = None,
    encoder: Encoder | None = None,
    progress: Progress | None = None,
    *,
    reuse: bool = True,
    allow_shrink: bool = False,
    only: Callable[[Document], bool] | None = None,
    pinned: Collection[int] = (),
    delta: bool = False,
) -> BuildReport:
    """Index ``sources`` (paths, or one path) into a new generation under ``index_dir`` and
    publish it, with the documents written to the index live (``storage.live``).

    ``reuse`` takes unchanged passages' vectors from the live generation; ``allow_shrink``
    permits publishing an empty or much smaller index than the live one. ``only`` keeps the
    documents it accepts (one shard's share); ``pinned`` generations survive pruning (those a
    cluster manifest still names). ``delta`` builds a delta generation instead: the live
    documents written since the live full generation, over it (``build.livedocs``). Without an
    ``encoder``, the configured one is loaded, and the query encoder is made ready too (the
    ONNX export), so the first query after the build does not pay for it.
    """
    settings = settings or Settings()
    if isinstance(sources, str | Path):  # one source, not the characters of its name
        sources = [sources]
    source_paths = [Path(s).resolve() for s in sources]
    for missing in (s for s in source_paths if not s.exists() and not delta):  # a delta reads none
        raise SourceError(f"source not found: {missing}")
    store = Store(Path(index_dir))
    store.refuse_foreign_files()
    existed = store.home.exists()
    try:
        return _build_locked(
            store,
            source_paths,
            settings,
            encoder,
            progress,
            reuse=reuse,
            allow_shrink=allow_shrink,
            only=only,
            pinned=pinned,
            delta=delta,
        )
    except BaseException:
        if not existed:
            with contextlib.suppress(OSError):  # only empty: a build started since keeps it
                store.home.rmdir()
        raise


def _build_locked(
    store: Store,
    source_paths: list[Path],
    settings: Settings,
    encoder: Encoder | None,
    progress: Progress | None,
    *,
    reuse: bool,
    allow_shrink: bool,
    only: Callable[[Document], bool] | None,
    pinned: Collection[int],
    delta: bool,
) -> BuildReport:
    with store.build_lock():
        live = live_input(store, delta)
        if delta and live is None:  # every live write is shown already
            return nothing_new(store)
        first = store.current() is None and not store.numbers()
        number, partial = store.start_generation()
        try:
            query_encoder = None
            if encoder is None:
                encoder = load_encoder(settings)
                query_encoder = prepared_query_encoder(settings)
            elif hasattr(encoder, "new_text_encoder"):  # a shard's vectors, computed elsewhere
                query_encoder = load_query_encoder(settings)  # self-check sentences as queries
            job = Job(
                number=number,
                out=partial,
                sources=source_paths,
                settings=settings,
                encoder=encoder,
                progress=progress or SilentProgress(),
                reuse=EmbeddingReuse(store, encoder) if reuse else None,
                only=only,
                query_encoder=query_encoder,
                id_base=document_base(store, source_paths),
                live_docs=live,
                kept_language=kept_language(live_manifest(store)),
            )
            _checkpoint("started")
            _build_generation(job, allow_shrink)
            store.finish_generation(number, partial)
            _checkpoint("renamed")
            store.publish(number)
            _checkpoint("published")
        except Unchanged:
            shutil.rmtree(partial, ignore_errors=True)
            # What unchanged() saw:
            assert job.reuse is not None and job.reuse.generation is not None
            return replace(report(job), generation=job.reuse.generation, published=False)
        except BaseException as exc:
            shutil.rmtree(partial, ignore_errors=True)
            if first:  # nothing was live: leave nothing behind, not even the lock file
                store.forget_failed_first_build()
            if _is_disk_full(exc):
                raise StorageError(
                    f"disk full while building in {store.home}; the live index is unchanged"
                ) from None
            raise
        store.prune(settings.keep_generations, {*pinned, *delta_bases(store)})
    return report(job)


class Unchanged(Exception):  # noqa: N818 (a signal inside the build, not an error)
    """The new generation would repeat the live one: nothing is published."""


def _is_disk_full(exc: BaseException) -> bool:
    """ENOSPC as Python, SQLite and tantivy (Rust) each report it."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    text = str(exc).lower()
    return "no space left on device" in text or "database or disk is full" in text


def _checkpoint(name: str) -> None:
    """Crash-test hook: ``SEARCHKIT_CRASH_AFTER=<name>`` kills the process right here."""
    if os.environ.get(CRASH_AFTER_VARIABLE) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def _build_generation(job: Job, allow_shrink: bool) -> None:
    clock = time.perf_counter()
    _collect(job)
    delta = job.live_docs is not None and job.live_docs.delta_of is not None
    choose_language(job)
    if not delta:
        _check_size(job, allow_shrink)  # before any encoding is spent on a refused build
        if unchanged(job):
            raise Unchanged
    _checkpoint("catalog")
    job.seconds["read"] = time.perf_counter() - clock

    clock = time.perf_counter()
    vectors = _embeddings(job)
    job.seconds["encode"] = time.perf_counter() - clock

    clock = time.perf_counter()
    job.progress.stage("writing indexes")
    ids = np.arange(len(job.texts), dtype=np.int64)
    atomic_write(job.out / EMBEDDINGS, vectors.tobytes())
    atomic_write(job.out / VECTORS, build_vector_index(vectors, ids, index_plan(job.settings)))
    _checkpoint("vectors")
    write_lexical(job.out / LEXICAL, iter(job.rows), job.language)
    _checkpoint("lexical")
    job.seconds["write"] = time.perf_counter() - clock

    if not delta:  # a delta's few documents say little: queries use its base's measurement
        clock = time.perf_counter()
        job.progress.stage("checking how well each leg finds its own passages")
        # Vectors computed elsewhere (a shard's) know no held-out text: their model encodes it.
        passages: Encoder = getattr(job.encoder, "new_text_encoder", job.encoder)
        queries = sentence_encoder(job.query_encoder, passages)
        settings = job.settings
        job.self_check = check_generation(
            job.out,
            job.rows,
            job.texts,
            passages,
            queries,
            languages=index_languages(job),
            vector_search=(settings.hnsw_ef_search, settings.ivf_probe_share),
        )
        job.seconds["self_check"] = time.perf_counter() - clock

    clock = time.perf_counter()
    atomic_write(job.out / MANIFEST, json.dumps(manifest(job), indent=2).encode())
    _validate(job)
    _checkpoint("manifest")
    job.seconds["validate"] = time.perf_counter() - clock


def _collect(job: Job) -> None:
    """Read every document, cut it into passages, store both, and find reusable vectors."""
    writer = CatalogWriter(job.out / CATALOG)
    job.progress.stage("reading documents")
    try:
        for document in _documents(job):
            passages, embedded = embedded_passages(
                document, job.settings.min_passage_words, job.encoder
            )
            hashes = [content_hash(text) for text in embedded]
            ids = writer.add(document, passages, hashes)
            language = detect_language(job, document)
            for pid, passage, text, digest in zip(ids, passages, embedded, hashes, strict=True):
                job.texts.append(text)
                stored = job.reuse.lookup(digest) if job.reuse else None
                if stored is not None:
                    job.reused[pid] = stored
                row = (pid, document.doc_id, document.path, document.title, passage.text)
                job.rows.append(LexicalRow(*row, language))
            job.document_hashes[document.doc_id] = content_hash(document.text)
            job.progress.advance()
    finally:
        writer.close()


def _documents(job: Job) -> Iterator[Document]:
    """The files of the sources (those the shard takes, without those live writes replaced or
    deleted), then the live documents; a delta takes only its live documents."""
    live = job.live_docs
    if job.sources and (live is None or live.delta_of is None):
        for document in iter_documents(job.sources, job.stats, job.id_base):
            wanted = job.only is None or job.only(document)
            if wanted and (live is None or document.doc_id not in live.hidden):
                yield document
    if live is not None:
        yield from (d for d in live.documents if job.only is None or job.only(d))


def _embeddings(job: Job) -> np.ndarray:
    """One row per passage: stored vectors where reusable, fresh encodings elsewhere."""
    dimension = job.encoder.dimension
    vectors = np.zeros((len(job.texts), dimension), dtype=np.float32)
    for pid, stored in job.reused.items():
        vectors[pid] = stored
    missing = [pid for pid in range(len(job.texts)) if pid not in job.reused]
    # Each distinct text once: a text repeated across documents gets one vector everywhere.
    unique = list(dict.fromkeys(job.texts[pid] for pid in missing))
    job.progress.stage("encoding passages", len(unique))
    if unique:
        encoded = job.encoder.encode(unique, job.progress.advance)
        row = {text: i for i, text in enumerate(unique)}
        vectors[missing] = encoded[[row[job.texts[pid]] for pid in missing]]
    return vectors


def _check_size(job: Job, allow_shrink: bool) -> None:
    """Refuse an index much smaller than the live one unless ``allow_shrink``, and an empty
    index unless it knowingly replaces a live one, is a shard (few documents, many shards) or
    follows live deletions."""
    held = len(job.reuse.documents) if job.reuse else 0  # by the live generation
    new = len(job.document_hashes)
    if held and not allow_shrink and (new == 0 or new < held * SHRINK_LIMIT):
        raise ShrinkRefusedError(
            f"the new index would hold {new} documents where the live one holds {held}; "
            "if that is intended, pass --allow-shrink"
        )
    knowingly = allow_shrink and (held or job.only is not None)
    if not job.texts and not (knowingly or job.live_docs is not None):  # live deletions, say
        names = ", ".join(str(s) for s in job.sources)
        supported = " ".join(sorted(SUPPORTED_SUFFIXES))
        raise SourceError(f"no indexable documents in {names} (supported: {supported})")


def _validate(job: Job) -> None:
    """Reopen what was written: tantivy, FAISS and the catalog must agree on the count."""
    expected = len(job.texts)
    counts = passage_counts(job.out)
    if any(count != expected for count in counts.values()):
        raise IndexCorruptError(f"new generation is inconsistent ({counts}, expected {expected})")
