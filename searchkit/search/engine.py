"""``SearchEngine``: the one query pipeline behind the CLI, the HTTP API, evaluation and tuning.

    validate -> encode -> legs -> fuse -> per-doc cap -> relevance (min_relevance) -> page
    -> hits -> highlights -> result

written once (``query``), over a ``ShardSet``: a local index is its one-shard case, a sharded
home its N-shard case, searched in this process or through Ray Serve.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..choices import Mode
from ..config import Settings
from ..embed import Encoder
from ..errors import IndexCorruptError
from ..records import FilterValue, Fused, Ranked, RankedDocuments, SearchResult
from ..storage.analysis import manifest_languages
from ..storage.live import live_record
from ..storage.sharded import ShardedStore
from ..storage.store import Store, is_sharded
from .adaptive import (
    learned_vector_weight,
    leg_effectiveness,
    leg_parts,
    query_explanation,
    weight_source,
    with_weight,
)
from .fusion import FusionOptions, aggregate_documents, cap_per_group, fuse_legs, resolve_fusion
from .hits import explain as explain_hits
from .local import LocalShard
from .query_check import validate_query
from .query_encoder import IndexQueryEncoder
from .relevance import Evidence, relevance
from .shards import ShardClient, ShardSet

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from .reader import Legs


class SearchEngine:
    """Searches one index at one pinned version: a generation of a local index, or a sharded
    home's cluster manifest (which pins each shard's generation)."""

    def __init__(
        self,
        shards: ShardSet,
        manifest: dict[str, Any],
        home: Path,
        *,
        generation: int,
        settings: Settings,
        encoder: Encoder | None = None,
        files: Callable[[], dict[str, int]],
    ) -> None:
        self.shards = shards
        self.manifest = manifest
        self.home = home
        self.generation = generation
        self.settings = settings
        self.effectiveness = leg_effectiveness(manifest)
        self.learned_weight = learned_vector_weight(self.effectiveness)
        tuning = Store(home).read_tuning()
        self.fusion = with_weight(resolve_fusion(settings, tuning), self.learned_weight)
        self.weights_from = weight_source(
            tuned=tuning is not None and "vector_weight" in tuning.get("fusion", {}),
            explicit="vector_weight" in settings.model_fields_set
            and settings.vector_weight is not None,
            learned=self.learned_weight,
        )
        self.query_encoder = IndexQueryEncoder(settings, manifest["model"], home, encoder)
        self._files = cache(files)  # a sharded home reads each shard's manifest for it, once

    @classmethod
    def open(
        cls,
        index_dir: Path | str,
        settings: Settings | None = None,
        encoder: Encoder | None = None,
        *,
        open_vectors: bool = True,
    ) -> SearchEngine:
        """Open the index at ``index_dir`` as it is now: the generation ``CURRENT`` names, or
        for a sharded home the cluster manifest ``CLUSTER`` names. ``open_vectors=False``
        defers FAISS to the first query that needs it (a one-off bm25 query)."""
        settings = settings or Settings()
        home = Path(index_dir)
        if is_sharded(home):
            return open_sharded(home, settings, encoder, open_vectors=open_vectors)
        generation = Store(home).require_current()
        shard = LocalShard(home, settings, open_vectors=open_vectors)
        opened = shard.at(generation)  # opening checks the generation (and a delta's base)
        return cls(
            ShardSet([shard], [generation]),
            opened.manifest,
            home,
            generation=generation,
            settings=settings,
            encoder=encoder,
            files=opened.files,
        )

    # ----- the pipeline ---------------------------------------------------------------------
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
        highlight: bool = True,
        path_prefix: str | None = None,
        filters: dict[str, FilterValue] | None = None,
        min_relevance: float | None = None,
        query_vector: NDArray[np.float32] | None = None,
    ) -> SearchResult:
        """The ranked, highlighted passages for ``text``: hits ``offset`` to ``offset + k``.

        ``explain`` adds semantic highlights (``hits.explain``) and, in hybrid mode, the weights,
        their reason and each leg's part of each hit. ``highlight=False`` leaves hits unmarked
        (no ``highlights``, ``html`` the escaped text): highlighting is most of a bm25 query's
        time, which a caller that shows no marks need not spend. ``path_prefix`` and
        ``filters`` restrict both legs; ``min_relevance`` drops hits less relevant
        (``search.relevance``).
        ``query_vector``, from ``query_encoder.vector``, saves encoding ``text`` here.
        """
        started = time.perf_counter()
        validate_query(
            self.settings, text, k=k, mode=mode, offset=offset, syntax=syntax, per_doc=per_doc
        )
        given = fusion is not None and fusion.vector_weight not in (None, self.fusion.vector_weight)
        source = "request" if given else self.weights_from
        fusion = self._complete(fusion)
        vector = self.query_encoder.vector(text, mode) if query_vector is None else query_vector
        if mode == "bm25":
            vector = None
        # One leg alone ranks its own candidates: it needs no more than the page and the
        # runner-up (the best hit's relevance counts its lead), unless per_doc drops some of
        # them. Hybrid fuses each leg's full candidate list.
        shown = max(offset + k, 2)
        single = mode != "hybrid" and per_doc is None
        depth = shown if single else max(fusion.candidates, offset + k)
        bm25, vectors = self.shards.legs(
            text,
            mode,
            depth,
            syntax=syntax,
            query_vector=vector,
            path_prefix=path_prefix,
            filters=filters,
        )
        fused = fuse_legs(mode, bm25, vectors, fusion)
        # A single leg's relevance falls with its score already: it needs only what is shown.
        whole = mode == "hybrid" or min_relevance is not None or per_doc is not None
        evidence = self._evidence(text, mode, (bm25, vectors), depth)
        relevant = relevance(
            fused if whole else fused[:shown], mode, evidence, fusion.vector_weight
        )
        # Judged before per_doc's cap, as rank_documents (and so eval) judges: the best hit
        # leads its own document's other passages too.
        if per_doc is not None:
            judged = dict(zip((item.passage_id for item in fused), relevant, strict=True))
            fused = cap_per_group(fused, self._documents_of(fused), per_doc)
            relevant = [judged[item.passage_id] for item in fused]
        if min_relevance is not None:  # relevance falls with rank: the relevant are a prefix
            kept = sum(1 for value in relevant if value >= min_relevance)
            fused, relevant = fused[:kept], relevant[:kept]
        page = fused[offset : offset + k]
        hits = [
            hit.with_relevance(value)
            for hit, value in zip(
                self.shards.hits(page, text if highlight else "", syntax),  # "": no words to mark
                relevant[offset : offset + k],
                strict=True,
            )
        ]
        if explain and highlight and vector is not None:
            hits = explain_hits(hits, page, vector, self.query_encoder.encoder)
        explanation = None
        if explain and mode == "hybrid":  # a single leg's score is that leg's own
            hits = [replace(h, explanation=leg_parts(f)) for h, f in zip(hits, page, strict=True)]
            explanation = query_explanation(fusion, source, self.effectiveness)
        took = (time.perf_counter() - started) * 1000
        return SearchResult(
            text, mode, self.generation, k, offset, hits, round(took, 2), explanation
        )

    def rank_documents(
        self,
        text: str,
        mode: Mode = "hybrid",
        k: int = 100,
        *,
        fusion: FusionOptions | None = None,
        query_vector: NDArray[np.float32] | None = None,
    ) -> RankedDocuments:
        """The top ``k`` documents for ``text``, ranked from their passages (for evaluation).

        ``query_vector`` lets a caller that encodes many queries in one batch skip encoding here.
        """
        fusion = self._complete(fusion)
        if query_vector is None:
            query_vector = self.query_encoder.vector(text, mode)
        # A single leg looks deeper so that k documents survive grouping; hybrid fuses exactly
        # the candidates each leg is asked for, as `query` does.
        depth = fusion.candidates if mode == "hybrid" else max(fusion.candidates, 3 * k)
        legs = self.shards.legs(text, mode, depth, query_vector=query_vector)
        fused = fuse_legs(mode, *legs, fusion)
        document_of = self._documents_of(fused)
        ranked = aggregate_documents(fused, document_of, fusion.aggregate, fusion.decay)[:k]
        values = relevance(
            fused, mode, self._evidence(text, mode, legs, depth), fusion.vector_weight
        )
        relevant: dict[str, float] = {}  # a document's: its best passage's
        for item, value in zip(fused, values, strict=True):
            relevant.setdefault(document_of(item.passage_id), value)
        return RankedDocuments(ranked, relevant)

    def documents_from_legs(
        self,
        mode: Mode,
        legs: Legs,
        fusion: FusionOptions,
        k: int,
        document_of: Callable[[int], str] | None = None,
    ) -> list[tuple[str, float]]:
        """Fuse ``legs`` (each cut to ``fusion.candidates`` in hybrid) and rank documents by
        their passages. ``tune`` calls this on cached legs with many fusion choices."""
        bm25, vectors = legs
        fusion = self._complete(fusion)
        if mode == "hybrid":
            bm25, vectors = bm25[: fusion.candidates], vectors[: fusion.candidates]
        fused = fuse_legs(mode, bm25, vectors, fusion)
        document_of = document_of or self._documents_of(fused)
        return aggregate_documents(fused, document_of, fusion.aggregate, fusion.decay)[:k]

    def legs(self, text: str, depth: int, query_vector: NDArray[np.float32] | None = None) -> Legs:
        """Both legs' top ``depth`` candidates, unfused (what ``tune`` caches)."""
        if query_vector is None:
            query_vector = self.query_encoder.vector(text, "hybrid")
        return self.shards.legs(text, "hybrid", depth, query_vector=query_vector)

    def documents_of(self, legs: Legs) -> Callable[[int], str]:
        """The document of every passage in ``legs``, looked up once."""
        return self.shards.documents_of({ranked.passage_id for leg in legs for ranked in leg})

    def _documents_of(self, items: list[Fused] | list[Ranked]) -> Callable[[int], str]:
        return self.shards.documents_of(item.passage_id for item in items)

    def _evidence(self, text: str, mode: Mode, legs: Legs, depth: int) -> Evidence:
        """What both legs say about ``text`` on an absolute scale, for ``relevance``."""
        idf_sum = 0.0 if mode == "vector" else self.shards.idf_sum(text)
        return Evidence(idf_sum, legs[0], legs[1], depth)

    def _complete(self, fusion: FusionOptions | None) -> FusionOptions:
        """``fusion`` (default: the index's) with a weight: the index's where none is given."""
        return with_weight(fusion or self.fusion, self.fusion.vector_weight)

    # ----- documents and description --------------------------------------------------------
    def document(self, doc_id: str) -> dict[str, Any] | None:
        """A document's metadata and passages, or None when the index does not hold it."""
        return self.shards.document(doc_id)

    def known_documents(self, doc_ids: set[str]) -> int:
        """How many of ``doc_ids`` the index holds (to check qrels against it)."""
        return self.shards.known_documents(doc_ids)

    def info(self) -> dict[str, Any]:
        """What ``searchkit info --json`` prints, the same for a local and a sharded index."""
        counts = self.manifest["counts"]
        files = self._files()
        return {
            "index": str(self.home),
            "generation": self.generation,
            "created": self.manifest["created"],
            "documents": counts["documents"],
            "passages": counts["passages"],
            "model": self.manifest["model"],
            "languages": list(manifest_languages(self.manifest)),  # the main one first
            "sources": self.manifest["sources"],
            "bytes": sum(files.values()),
            "files": files,
            "shards": self.shards.shards,
            "fusion": asdict(self.fusion),
            # documents written live, the last write shown, and a delta's base
            "live": {k: v for k, v in live_record(self.manifest).items() if k != "hidden"},
        }

    def close(self) -> None:
        self.shards.close()


def open_sharded(
    home: Path | str,
    settings: Settings,
    encoder: Encoder | None = None,
    clients: list[ShardClient] | None = None,
    *,
    open_vectors: bool = True,
) -> SearchEngine:
    """A sharded home at the cluster manifest ``CLUSTER`` names now. Without ``clients`` its
    shards are searched in this process (no Ray needed); a Ray ingress passes Serve handles."""
    store = ShardedStore(home)
    version = store.require_current()
    manifest = store.manifest(version)
    entries = manifest["shards"]
    if clients is None:
        local = [
            LocalShard(store.shard_home(entry["shard"]), settings, open_vectors=open_vectors)
            for entry in entries
        ]
        for shard, entry in zip(local, entries, strict=True):
            shard.at(entry["generation"])  # opening checks it, as for a local index
        clients = list(local)
    if len(clients) != len(entries):
        raise IndexCorruptError(
            f"the cluster manifest has {len(entries)} shards but {len(clients)} are served; "
            "restart 'searchkit serve --ray-address' after changing the shard count"
        )
    shard_set = ShardSet(clients, [e["generation"] for e in entries], settings.global_idf)
    return SearchEngine(
        shard_set,
        manifest,
        store.home,
        generation=version,
        settings=settings,
        encoder=encoder,
        files=lambda: store.files(manifest),
    )
