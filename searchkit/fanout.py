"""Searching a sharded index as one: the fan-out engine and the shard clients it talks to.

A query is validated once, sent to every shard for each leg's top candidates, the legs are
merged by score and fused exactly as in local mode, and the page's hits come from the shards
that hold them. No Ray here: a ``ShardClient`` is a Ray Serve handle (``cluster_serve``) or an
in-process engine (``LocalShard``: tests, benchmarks, and the CLI on a sharded index).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from .config import Settings
from .engine import SearchEngine
from .errors import IndexCorruptError, UserInputError
from .fusion import (
    FusionOptions,
    aggregate_documents,
    cap_per_group,
    fuse_legs,
    resolve_fusion,
)
from .hits import explain as explain_hits
from .lexical import TermStats
from .query_check import validate_query
from .records import Fused, Hit, Mode, Ranked, SearchResult
from .shards import global_id, merge_leg, shard_of, split_id
from .store import Store

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from .embed import Encoder

STATS_CACHE = 10_000  # query texts whose corpus-wide term statistics are kept
T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Pending(Protocol[T_co]):
    """A call in flight (a Ray Serve ``DeploymentResponse`` has this shape)."""

    def result(self) -> T_co: ...


class Done(Generic[T]):
    """A call that already finished, for clients that answer in-process."""

    def __init__(self, value: T) -> None:
        self._value = value

    def result(self) -> T:
        return self._value


Legs = tuple[list[Ranked], list[Ranked]]


class ShardClient(Protocol):
    """One shard as the coordinator sees it, at the generation a request is pinned to. Calls
    return at once so that all shards work in parallel; ``result()`` waits."""

    def candidates(
        self, generation: int, text: str, mode: Mode, depth: int, options: dict[str, Any]
    ) -> Pending[Legs]: ...
    def hits(
        self, generation: int, page: list[Fused], text: str, syntax: bool
    ) -> Pending[list[Hit]]: ...
    def document(self, generation: int, doc_id: str) -> Pending[dict[str, Any] | None]: ...
    def doc_ids(self, generation: int, passage_ids: list[int]) -> Pending[list[str]]: ...
    def term_stats(self, generation: int, text: str) -> Pending[TermStats]: ...


class LocalShard:
    """A shard searched in this process (tests, and a cluster home opened without Ray)."""

    def __init__(self, home: Path, settings: Settings) -> None:
        self._store = Store(home)
        self._settings = settings
        self._engines: dict[int, SearchEngine] = {}
        self._lock = threading.Lock()  # a Serve replica answers on several threads

    def engine(self, generation: int) -> SearchEngine:
        """The engine for ``generation``; the two most recent stay open during a rollout."""
        with self._lock:
            if generation not in self._engines:
                engine = SearchEngine(self._store, generation, self._settings, None)
                self._engines[generation] = engine
                for old in sorted(self._engines)[:-2]:
                    self._engines.pop(old).close()
            return self._engines[generation]

    def candidates(
        self, generation: int, text: str, mode: Mode, depth: int, options: dict[str, Any]
    ) -> Done[Legs]:
        return Done(self.engine(generation).candidates(text, mode, depth, **options))

    def hits(self, generation: int, page: list[Fused], text: str, syntax: bool) -> Done[list[Hit]]:
        return Done(self.engine(generation).hits(page, text, syntax))

    def document(self, generation: int, doc_id: str) -> Done[dict[str, Any] | None]:
        return Done(self.engine(generation).document(doc_id))

    def doc_ids(self, generation: int, passage_ids: list[int]) -> Done[list[str]]:
        engine = self.engine(generation)
        return Done([engine.document_of(pid) for pid in passage_ids])

    def term_stats(self, generation: int, text: str) -> Done[TermStats]:
        return Done(self.engine(generation).term_stats(text))


class ClusterEngine:
    """Searches every shard of one cluster manifest as one index; ``query`` answers exactly
    like ``SearchEngine.query``."""

    def __init__(
        self,
        manifest: dict[str, Any],
        clients: Sequence[ShardClient],
        settings: Settings,
        encoder: Callable[[], Encoder],
    ) -> None:
        if len(clients) != len(manifest["shards"]):
            raise IndexCorruptError(
                f"the cluster manifest has {len(manifest['shards'])} shards but "
                f"{len(clients)} are served; restart 'searchkit serve --ray-address' after "
                "changing the shard count"
            )
        self.manifest = manifest
        self.generation: int = manifest["version"]
        self.settings = settings
        self.fusion: FusionOptions = resolve_fusion(settings, None)
        self._clients = clients
        self._generations = [entry["generation"] for entry in manifest["shards"]]
        self._encoder = encoder
        self._stats: dict[str, TermStats] = {}

    @property
    def shards(self) -> int:
        return len(self._clients)

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
        started = time.perf_counter()
        validate_query(self.settings, text, k=k, mode=mode, offset=offset, syntax=syntax)
        if per_doc is not None and per_doc < 1:
            raise UserInputError("per-doc must be at least 1")
        fusion = fusion or self.fusion
        depth = max(fusion.candidates, offset + k)
        vector = None if mode == "bm25" else self._query_vector(text)
        options = {"syntax": syntax, "path_prefix": path_prefix, "filters": filters}
        fused = self._rank(text, mode, fusion, depth, vector=vector, options=options)
        if per_doc is not None:
            fused = cap_per_group(fused, self._document_of(fused), per_doc)
        page = fused[offset : offset + k]
        hits = self._hits(page, text, syntax)
        if explain and vector is not None:
            hits = explain_hits(hits, page, vector, self._encoder())
        took = (time.perf_counter() - started) * 1000
        return SearchResult(text, mode, self.generation, k, offset, hits, round(took, 2))

    def rank_documents(
        self,
        text: str,
        mode: Mode = "hybrid",
        k: int = 100,
        *,
        fusion: FusionOptions | None = None,
        query_vector: NDArray[np.float32] | None = None,
    ) -> list[tuple[str, float]]:
        """The top ``k`` documents, as ``SearchEngine.rank_documents`` ranks them."""
        fusion = fusion or self.fusion
        depth = fusion.candidates if mode == "hybrid" else max(fusion.candidates, 3 * k)
        if query_vector is None and mode != "bm25":
            query_vector = self._query_vector(text)
        fused = self._rank(text, mode, fusion, depth, vector=query_vector, options={})
        document_of = self._document_of(fused)
        return aggregate_documents(fused, document_of, fusion.aggregate, fusion.decay)[:k]

    @property
    def encoder(self) -> Encoder:
        return self._encoder()

    def _rank(
        self,
        text: str,
        mode: Mode,
        fusion: FusionOptions,
        depth: int,
        *,
        vector: NDArray[np.float32] | None,
        options: dict[str, Any],
    ) -> list[Fused]:
        """Every shard's candidates for both legs, merged per leg, then fused."""
        options = {**options, "query_vector": vector}
        if self.settings.global_idf and mode != "vector" and not options.get("syntax"):
            options["term_stats"] = self._term_stats(text)
        calls = [
            client.candidates(self._generations[shard], text, mode, depth, options)
            for shard, client in enumerate(self._clients)
        ]
        legs = [call.result() for call in calls]
        bm25 = merge_leg([leg[0] for leg in legs], depth)
        vectors = merge_leg([leg[1] for leg in legs], depth)
        return fuse_legs(mode, bm25, vectors, fusion)

    def _term_stats(self, text: str) -> TermStats:
        """The query terms' statistics over all shards (cached: they change with the manifest,
        and a new manifest gets a new engine)."""
        if text not in self._stats:
            if len(self._stats) >= STATS_CACHE:
                self._stats.clear()
            calls = [
                client.term_stats(self._generations[shard], text)
                for shard, client in enumerate(self._clients)
            ]
            self._stats[text] = TermStats.total(call.result() for call in calls)
        return self._stats[text]

    def _query_vector(self, text: str) -> NDArray[np.float32]:
        encoder = self._encoder()
        model = self.manifest["model"]
        if encoder.fingerprint != model["fingerprint"]:
            raise UserInputError(
                f"the sharded index was built with model {model['name']!r}, "
                f"not {encoder.name!r}; set SEARCHKIT_MODEL to it"
            )
        vector: NDArray[np.float32] = encoder.encode([text])[0]
        return vector

    def _document_of(self, fused: list[Fused]) -> Callable[[int], str]:
        """Document ids of the fused candidates, asked of their shards once."""
        by_shard: dict[int, list[int]] = {}
        for item in fused:
            shard, local = split_id(item.passage_id, self.shards)
            by_shard.setdefault(shard, []).append(local)
        calls = {
            shard: self._clients[shard].doc_ids(self._generations[shard], ids)
            for shard, ids in by_shard.items()
        }
        owners: dict[int, str] = {}
        for shard, ids in by_shard.items():
            for local, doc_id in zip(ids, calls[shard].result(), strict=True):
                owners[global_id(shard, local, self.shards)] = doc_id
        return owners.__getitem__

    def _hits(self, page: list[Fused], text: str, syntax: bool) -> list[Hit]:
        """The page's hits, each from its own shard, in page order."""
        by_shard: dict[int, list[tuple[int, Fused]]] = {}
        for position, item in enumerate(page):
            shard, local = split_id(item.passage_id, self.shards)
            by_shard.setdefault(shard, []).append((position, replace(item, passage_id=local)))
        calls = {
            shard: self._clients[shard].hits(
                self._generations[shard], [item for _, item in items], text, syntax
            )
            for shard, items in by_shard.items()
        }
        found: list[Hit | None] = [None] * len(page)
        for shard, items in by_shard.items():
            for (position, _), hit in zip(items, calls[shard].result(), strict=True):
                found[position] = hit
        return [hit for hit in found if hit is not None]

    def document(self, doc_id: str) -> dict[str, Any] | None:
        shard = shard_of(doc_id, self.shards)
        found = self._clients[shard].document(self._generations[shard], doc_id).result()
        if found is None:
            return None
        passages = [
            {**passage, "id": global_id(shard, passage["id"], self.shards)}
            for passage in found["passages"]
        ]  # ids in the cluster's id space, as fusion sees them
        return {**found, "passages": passages}

    def info(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "documents": self.manifest["counts"]["documents"],
            "passages": self.manifest["counts"]["passages"],
            "model": self.manifest["model"],
            "bytes": sum(entry["bytes"] for entry in self.manifest["shards"]),
            "shards": self.shards,
        }


def open_sharded(home: Path | str, settings: Settings) -> ClusterEngine:
    """A sharded index's live manifest, searched in this process (no Ray needed)."""
    from .embed import load_query_encoder
    from .shards import ClusterStore

    store = ClusterStore(home)
    manifest = store.manifest(store.require_current())
    clients = [LocalShard(store.shard_home(s["shard"]), settings) for s in manifest["shards"]]
    model = settings.model_copy(update={"model": manifest["model"]["name"]})
    encoders: list[Encoder] = []

    def encoder() -> Encoder:
        if not encoders:
            encoders.append(load_query_encoder(model))
        return encoders[0]

    return ClusterEngine(manifest, clients, settings, encoder)
