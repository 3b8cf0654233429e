"""``IndexReader``: one generation of one index home, read-only: each leg's candidates, the
document of a passage, and the hits for chosen passages. A shard, in the pipeline's terms."""

from __future__ import annotations

from dataclasses import replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

from ..choices import Mode
from ..config import Settings
from ..errors import QuerySyntaxError, SearchkitError
from ..records import FilterValue, Fused, Hit, Ranked
from ..storage.analysis import (
    highlight_units,
    manifest_languages,
    query_terms,
    term_weights,
    weighted_units,
)
from ..storage.catalog import Catalog
from ..storage.generation import CATALOG, EMBEDDINGS, LEXICAL, VECTORS, check_counts, corrupt
from ..storage.lexical import LexicalIndex, TermStats
from ..storage.store import Store
from .hits import make_hit

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from ..storage.vectors import VectorIndex

Legs = tuple[list[Ranked], list[Ranked]]


class IndexReader:
    """A read-only view of one generation; both legs of every query read that generation."""

    def __init__(
        self, store: Store, generation: int, settings: Settings, *, open_vectors: bool = True
    ) -> None:
        self.store = store
        self.generation = generation
        self.settings = settings
        self.manifest = store.manifest(generation)
        self.languages = manifest_languages(self.manifest)  # the main one first
        # Queries never read the raw vectors; FAISS is checked when it is opened.
        store.check_sizes(generation, self.manifest, skip={EMBEDDINGS, VECTORS})
        root = store.path(generation)
        try:
            self._lexical = LexicalIndex(root / LEXICAL, self.languages[0])
            self._catalog = Catalog(root / CATALOG)
        except Exception as exc:  # damaged files fail inside tantivy or SQLite
            raise corrupt(generation, f"cannot be opened ({type(exc).__name__})") from None
        found = {LEXICAL: self._lexical.count, CATALOG: self._catalog.counts()[1]}
        check_counts(generation, found, self.passages)
        if open_vectors:
            self._vectors  # noqa: B018 (opening it checks the file)

    @property
    def passages(self) -> int:
        count: int = self.manifest["counts"]["passages"]
        return count

    @cached_property
    def _vectors(self) -> VectorIndex:
        """The FAISS index, opened on the first query that needs it: a bm25-only process
        never imports FAISS, and works without the file."""
        from ..storage.vectors import VectorIndex

        others = {name.split("/")[0] for name in self.manifest["files"]} - {VECTORS}
        self.store.check_sizes(self.generation, self.manifest, skip=others)
        path = self.store.path(self.generation) / VECTORS
        try:
            vectors = VectorIndex(path, self.settings.hnsw_ef_search, self.settings.ivf_probe_share)
        except Exception as exc:  # a damaged file fails inside FAISS
            raise corrupt(self.generation, f"cannot be opened ({type(exc).__name__})") from None
        check_counts(self.generation, {VECTORS: vectors.count}, self.passages)
        return vectors

    def candidates(
        self,
        text: str,
        mode: Mode,
        depth: int,
        *,
        syntax: bool = False,
        query_vector: NDArray[np.float32] | None = None,
        path_prefix: str | None = None,
        filters: dict[str, FilterValue] | None = None,
        term_stats: TermStats | None = None,
    ) -> Legs:
        """Each leg's top ``depth`` passages, unfused; a leg that ``mode`` does not use comes
        back empty. ``path_prefix`` and ``filters`` restrict both legs; ``term_stats``
        (corpus-wide, for a shard) makes BM25 use the whole corpus's IDF."""
        allowed = self._allowed(path_prefix, filters or {})
        if allowed is not None and not allowed:
            return [], []
        bm25 = (
            [] if mode == "vector" else self._lexical_leg(text, syntax, depth, allowed, term_stats)
        )
        if mode == "bm25":
            return bm25, []
        if query_vector is None:
            raise ValueError("the vector leg needs the query's vector")
        return bm25, self._vector_leg(query_vector, depth, allowed)

    def term_stats(self, text: str) -> TermStats:
        """Passage count and document frequencies of the query's terms in this generation."""
        main = term_weights(text, self.languages[:1])
        terms = list(main) if len(self.languages) == 1 else query_terms(text, self.languages)
        return replace(self._lexical.term_stats(terms), reference=tuple(main.items()))

    def hits(self, page: list[Fused], text: str, syntax: bool = False) -> list[Hit]:
        """Hits for fused candidates of this generation, with the words matching ``text``."""
        units = highlight_units(text, syntax, self.languages)
        rows = self._catalog.passages([f.passage_id for f in page])
        return [make_hit(item, rows[item.passage_id], units, self.languages) for item in page]

    def doc_ids(self, passage_ids: list[int]) -> list[str]:
        """The ids of the documents the passages ``passage_ids`` belong to: looked up for
        these passages alone, never a list of every passage's (a million strings at 1M)."""
        found = self._catalog.documents_of(passage_ids)
        return [found[pid] for pid in passage_ids]

    def document(self, doc_id: str) -> dict[str, Any] | None:
        """A document's metadata and passages, or None when this generation does not hold it."""
        return self._catalog.document(doc_id)

    def passages_of(self, doc_ids: list[str]) -> list[int]:
        """The passage ids of the documents ``doc_ids`` in this generation."""
        return self._catalog.passages_of(doc_ids)

    def known_documents(self, doc_ids: set[str]) -> int:
        """How many of ``doc_ids`` this generation holds (to check qrels against it)."""
        return self._catalog.known_documents(doc_ids)

    def close(self) -> None:
        self._catalog.close()

    def _allowed(
        self, path_prefix: str | None, filters: dict[str, FilterValue]
    ) -> list[int] | None:
        """Passage ids that pass the filters (None: no filter)."""
        if not path_prefix and not filters:
            return None
        return self._catalog.matching_passages(path_prefix, filters)

    def _vector_leg(
        self, query_vector: NDArray[np.float32], depth: int, allowed: list[int] | None
    ) -> list[Ranked]:
        if allowed is None:
            return self._vectors.search(query_vector, depth, None)
        import numpy as np  # imported here: an unfiltered bm25 query never loads numpy

        return self._vectors.search(query_vector, depth, np.array(allowed, dtype=np.int64))

    def _lexical_leg(
        self,
        text: str,
        syntax: bool,
        depth: int,
        allowed: list[int] | None,
        stats: TermStats | None,
    ) -> list[Ranked]:
        try:
            if syntax:
                return self._lexical.search_syntax(text, depth, allowed)
            units = weighted_units(text, self.languages)
            return self._lexical.search_units(units, depth, allowed, stats)
        except (SearchkitError, KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            # tantivy's Rust panics surface as pyo3 PanicException, a BaseException.
            if syntax and isinstance(exc, ValueError):
                raise QuerySyntaxError(f"cannot run query: {exc}") from None
            raise SearchkitError("the lexical index failed on this query") from None
