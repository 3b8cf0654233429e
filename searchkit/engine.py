"""``SearchEngine``: the one query path behind the CLI, the HTTP API and evaluation."""

from __future__ import annotations

import time
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .catalog import Catalog
from .config import Settings
from .embed import Encoder, load_query_encoder
from .errors import (
    IndexCorruptError,
    ModelMismatchError,
    QuerySyntaxError,
    SearchkitError,
    UserInputError,
)
from .fusion import (
    FusionOptions,
    aggregate_documents,
    cap_per_group,
    fuse_legs,
    resolve_fusion,
)
from .hits import explain as explain_hits
from .hits import make_hit
from .lexical import LexicalIndex, TermStats, highlight_terms, query_terms
from .query_check import validate_query
from .records import Fused, Hit, Mode, Ranked, SearchResult
from .store import Store, generation_name

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from .vectors import VectorIndex


def has_index(index_dir: Path | str) -> bool:
    """Whether ``index_dir`` has a published generation."""
    return Store(Path(index_dir)).current() is not None


class SearchEngine:
    """A read-only view of one generation; both legs of every query read that generation."""

    def __init__(
        self,
        store: Store,
        generation: int,
        settings: Settings,
        encoder: Encoder | None,
        *,
        open_vectors: bool = True,
    ) -> None:
        self.store = store
        self.generation = generation
        self.settings = settings
        self.manifest = store.manifest(generation)
        store.check_sizes(generation, self.manifest)
        root = store.path(generation)
        try:
            self._lexical = LexicalIndex(root / "lexical")
            self._catalog = Catalog(root / "passages.sqlite")
        except Exception as exc:  # damaged files fail inside tantivy, FAISS or SQLite
            raise _corrupt(generation, f"cannot be opened ({type(exc).__name__})") from None
        self._encoder = encoder
        self._encoder_checked = False
        self._doc_of_passage: list[str] | None = None
        self.fusion = resolve_fusion(settings, store.read_tuning())
        self._check_counts()
        if open_vectors:
            self._vectors  # noqa: B018 (opening it checks the file)

    @classmethod
    def open(
        cls,
        index_dir: Path | str,
        settings: Settings | None = None,
        encoder: Encoder | None = None,
        *,
        open_vectors: bool = True,
    ) -> SearchEngine:
        """Open the generation that ``index_dir/CURRENT`` names. ``open_vectors=False``
        defers the FAISS index to the first query that needs it (a one-off bm25 query)."""
        store = Store(Path(index_dir))
        settings = settings or Settings()
        return cls(store, store.require_current(), settings, encoder, open_vectors=open_vectors)

    def _check_counts(self) -> None:
        expected = self.manifest["counts"]["passages"]
        found = {"lexical": self._lexical.count, "catalog": self._catalog.counts()[1]}
        for part, count in found.items():
            if count != expected:
                raise _corrupt(self.generation, f"{part} holds {count} passages, not {expected}")

    @cached_property
    def _vectors(self) -> VectorIndex:
        """The FAISS index, opened on the first query that needs it: a bm25-only process
        never imports FAISS (``store.check_sizes`` has already vouched for the file)."""
        from .vectors import VectorIndex

        path = self.store.path(self.generation) / "vectors.faiss"
        try:
            vectors = VectorIndex(path, self.settings.hnsw_ef_search)
        except Exception as exc:  # a damaged file fails inside FAISS
            raise _corrupt(self.generation, f"cannot be opened ({type(exc).__name__})") from None
        expected = self.manifest["counts"]["passages"]
        if vectors.count != expected:
            detail = f"vectors holds {vectors.count} passages, not {expected}"
            raise _corrupt(self.generation, detail)
        return vectors

    # ----- queries --------------------------------------------------------------------------
    def query(
        self,
        text: str,
        k: int = 10,
        mode: Mode = "hybrid",
        offset: int = 0,
        *,
        syntax: bool = False,
        per_doc: int | None = None,
        fusion: FusionOptions | None = None,
        explain: bool = False,
        path_prefix: str | None = None,
        filters: dict[str, str] | None = None,
    ) -> SearchResult:
        """The ranked, highlighted passages for ``text``: hits ``offset`` to ``offset + k``.

        ``explain`` adds semantic highlights: in hits the vector leg found whose words do not
        match the query, the sentences most similar to the query (costs one batch encode).
        ``path_prefix`` and ``filters`` (metadata key = value) restrict both legs before fusion.
        """
        started = time.perf_counter()
        validate_query(self.settings, text, k=k, mode=mode, offset=offset, syntax=syntax)
        if per_doc is not None and per_doc < 1:
            raise UserInputError("per-doc must be at least 1")
        fusion = fusion or self.fusion
        depth = max(fusion.candidates, offset + k)
        vector = None if mode == "bm25" else self.encoder.encode([text])[0]
        allowed = self._allowed(path_prefix, filters or {})
        fused = self._rank(
            text, mode, fusion, depth, syntax=syntax, query_vector=vector, allowed=allowed
        )
        if per_doc is not None:
            fused = cap_per_group(fused, self.document_of, per_doc)
        page = fused[offset : offset + k]
        hits = self.hits(page, text, syntax)
        if explain and vector is not None:
            hits = explain_hits(hits, page, vector, self.encoder)
        took = (time.perf_counter() - started) * 1000
        return SearchResult(text, mode, self.generation, k, offset, hits, round(took, 2))

    def candidates(
        self,
        text: str,
        mode: Mode,
        depth: int,
        *,
        syntax: bool = False,
        query_vector: NDArray[np.float32] | None = None,
        path_prefix: str | None = None,
        filters: dict[str, str] | None = None,
        term_stats: TermStats | None = None,
    ) -> tuple[list[Ranked], list[Ranked]]:
        """Each leg's top ``depth`` passages, unfused: what a shard answers a fan-out with.
        A leg that ``mode`` does not use comes back empty; ``term_stats`` (corpus-wide, for a
        shard) makes BM25 use the whole corpus's IDF rather than this index's."""
        allowed = self._allowed(path_prefix, filters or {})
        return self._legs(
            text,
            mode,
            depth,
            syntax=syntax,
            query_vector=query_vector,
            allowed=allowed,
            stats=term_stats,
        )

    def term_stats(self, text: str) -> TermStats:
        """Passage count and document frequencies of the query's terms in this index."""
        return self._lexical.term_stats(query_terms(text))

    def hits(self, page: list[Fused], text: str, syntax: bool = False) -> list[Hit]:
        """Hits for fused candidates of this index, with the words matching ``text`` marked."""
        terms = highlight_terms(text, syntax)
        rows = self._catalog.passages([f.passage_id for f in page])
        return [make_hit(item, rows[item.passage_id], terms) for item in page]

    def rank_documents(
        self,
        text: str,
        mode: Mode = "hybrid",
        k: int = 100,
        *,
        fusion: FusionOptions | None = None,
        query_vector: NDArray[np.float32] | None = None,
    ) -> list[tuple[str, float]]:
        """The top ``k`` documents for ``text``, ranked from their passages (for evaluation).

        ``query_vector`` lets a caller that encodes many queries in one batch skip encoding here.
        """
        fusion = fusion or self.fusion
        # A single leg looks deeper so that k documents survive grouping; hybrid fuses exactly
        # the candidates each leg is asked for, as `query` and `tune` do.
        depth = fusion.candidates if mode == "hybrid" else max(fusion.candidates, 3 * k)
        fused = self._rank(text, mode, fusion, depth, query_vector=query_vector)
        ranked = aggregate_documents(fused, self.document_of, fusion.aggregate, fusion.decay)
        return ranked[:k]

    def _rank(
        self,
        text: str,
        mode: Mode,
        fusion: FusionOptions,
        depth: int,
        *,
        syntax: bool = False,
        query_vector: NDArray[np.float32] | None = None,
        allowed: NDArray[np.int64] | None = None,
    ) -> list[Fused]:
        bm25, vector = self._legs(
            text, mode, depth, syntax=syntax, query_vector=query_vector, allowed=allowed
        )
        return fuse_legs(mode, bm25, vector, fusion)

    def _legs(
        self,
        text: str,
        mode: Mode,
        depth: int,
        *,
        syntax: bool = False,
        query_vector: NDArray[np.float32] | None = None,
        allowed: NDArray[np.int64] | None = None,
        stats: TermStats | None = None,
    ) -> tuple[list[Ranked], list[Ranked]]:
        if allowed is not None and not len(allowed):
            return [], []
        bm25 = self._search_lexical(text, syntax, depth, allowed, stats) if mode != "vector" else []
        if mode == "bm25":
            return bm25, []
        if query_vector is None:
            query_vector = self.encoder.encode([text])[0]
        return bm25, self._vectors.search(query_vector, depth, allowed)

    def document_of(self, passage_id: int) -> str:
        """The id of the document passage ``passage_id`` belongs to."""
        if self._doc_of_passage is None:
            self._doc_of_passage = self._catalog.passage_documents()
        return self._doc_of_passage[passage_id]

    def _allowed(
        self, path_prefix: str | None, filters: dict[str, str]
    ) -> NDArray[np.int64] | None:
        """Passage ids that pass the filters (None: no filter)."""
        if not path_prefix and not filters:
            return None
        import numpy as np  # imported here: an unfiltered bm25 query never loads numpy

        ids = self._catalog.matching_passages(path_prefix, filters)
        return np.array(ids, dtype=np.int64)

    def _search_lexical(
        self,
        text: str,
        syntax: bool,
        depth: int,
        allowed: NDArray[np.int64] | None = None,
        stats: TermStats | None = None,
    ) -> list[Ranked]:
        only = None if allowed is None else allowed.tolist()
        try:
            if syntax:
                return self._lexical.search_syntax(text, depth, only)
            return self._lexical.search_terms(query_terms(text), depth, only, stats)
        except (SearchkitError, KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            # tantivy's Rust panics surface as pyo3 PanicException, a BaseException.
            if syntax and isinstance(exc, ValueError):
                raise QuerySyntaxError(f"cannot run query: {exc}") from None
            raise SearchkitError("the lexical index failed on this query") from None

    @property
    def encoder(self) -> Encoder:
        """The query encoder, loaded on first use and checked against the index's model."""
        if self._encoder is None or not self._encoder_checked:
            encoder = self._encoder or load_query_encoder(
                self.settings.model_copy(update={"model": self.manifest["model"]["name"]})
            )
            self._check_model(encoder)
            self._encoder, self._encoder_checked = encoder, True
        return self._encoder

    def _check_model(self, encoder: Encoder) -> None:
        built = self.manifest["model"]
        if encoder.fingerprint != built["fingerprint"] or encoder.dimension != built["dimension"]:
            raise ModelMismatchError(
                f"this index was built with model {built['name']!r} "
                f"(fingerprint {built['fingerprint']}), not {encoder.name!r} "
                f"(fingerprint {encoder.fingerprint}); rebuild it with "
                f"'searchkit index PATH --index {self.store.home}' using the model you query with"
            )

    @property
    def loaded_encoder(self) -> Encoder | None:
        """The query encoder if it was loaded already (to hand on to a newer engine)."""
        return self._encoder

    def document(self, doc_id: str) -> dict[str, Any] | None:
        """A document's metadata and passages, or None when the index does not hold it."""
        return self._catalog.document(doc_id)

    def known_documents(self, doc_ids: set[str]) -> int:
        """How many of ``doc_ids`` the index holds (to check qrels against it)."""
        return self._catalog.known_documents(doc_ids)

    # ----- description ----------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """What ``searchkit info --json`` prints."""
        counts = self.manifest["counts"]
        files = self.manifest["files"]
        return {
            "index": str(self.store.home),
            "generation": self.generation,
            "created": self.manifest["created"],
            "documents": counts["documents"],
            "passages": counts["passages"],
            "model": self.manifest["model"],
            "sources": self.manifest["sources"],
            "bytes": sum(entry["size"] for entry in files.values()),
            "files": {name: entry["size"] for name, entry in files.items()},
        }

    def close(self) -> None:
        self._catalog.close()


def _corrupt(generation: int, detail: str) -> SearchkitError:
    return IndexCorruptError(
        f"generation {generation_name(generation)} is inconsistent: {detail}; rebuild the index"
    )
