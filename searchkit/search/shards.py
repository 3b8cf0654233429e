"""The shards the pipeline reads: ``ShardSet`` searches one or more shards as one index.

Each leg's top candidates come from every shard, merged by score into one id space; the
documents and hits of chosen passages come from the shard that holds them. A local index is
the one-shard case. No Ray here: a ``ShardClient`` is an in-process home (``local.LocalShard``)
or a Ray Serve handle (``sharded.ray_serve``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from ..choices import Mode
from ..records import FilterValue, Fused, Hit, Ranked, ranked_list
from ..storage.lexical import TermStats
from ..storage.sharded import global_id, shard_of, split_id
from .reader import Legs
from .relevance import unrelated

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

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


class ShardClient(Protocol):
    """One shard as the pipeline sees it, at the generation a request is pinned to. Calls
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
    def known_documents(self, generation: int, doc_ids: set[str]) -> Pending[int]: ...
    def close(self) -> None: ...


def merge_leg(per_shard: Sequence[Sequence[Ranked]], depth: int) -> list[Ranked]:
    """Each shard's top candidates of one leg as one global top ``depth``, by raw score.

    Exact for the vector leg (inner products do not depend on the shard); BM25 is exact too
    when the shards score with corpus-wide term statistics (``global_idf``), up to the average
    passage length, which stays per shard.
    """
    shards = len(per_shard)
    pooled = [
        (ranked.score, global_id(shard, ranked.passage_id, shards))
        for shard, leg in enumerate(per_shard)
        for ranked in leg
    ]
    pooled.sort(key=lambda item: (-item[0], item[1]))
    top = pooled[:depth]
    return ranked_list([pid for _, pid in top], [score for score, _ in top])


class ShardSet:
    """Every shard of one index, each pinned to a generation, searched as one index.

    Passage ids are global (``storage.sharded.global_id``); with one shard they are the
    shard's own ids, and nothing is merged or remapped.
    """

    def __init__(
        self, clients: Sequence[ShardClient], generations: Sequence[int], global_idf: bool = True
    ) -> None:
        self._clients = list(clients)
        self._generations = list(generations)
        self._global_idf = global_idf and len(self._clients) > 1
        self._stats: dict[str, TermStats] = {}

    @property
    def shards(self) -> int:
        return len(self._clients)

    def legs(
        self,
        text: str,
        mode: Mode,
        depth: int,
        *,
        syntax: bool = False,
        query_vector: NDArray[np.float32] | None = None,
        path_prefix: str | None = None,
        filters: dict[str, FilterValue] | None = None,
    ) -> Legs:
        """Each leg's global top ``depth`` candidates. A vector leg whose best candidate is no
        closer to the query than unrelated text found nothing: a query of stopwords or of words
        the model cannot read gets no hits in any mode, rather than noise."""
        options: dict[str, Any] = {
            "syntax": syntax,
            "query_vector": query_vector,
            "path_prefix": path_prefix,
            "filters": filters,
        }
        if self._global_idf and mode != "vector" and not syntax:
            options["term_stats"] = self._term_stats(text)
        if syntax and mode == "vector":  # a broken query is broken in every mode
            client, generation = self._pinned()[0]
            client.candidates(generation, text, "bm25", 1, options).result()
        calls = [
            client.candidates(generation, text, mode, depth, options)
            for client, generation in self._pinned()
        ]
        legs = [call.result() for call in calls]
        if self.shards == 1:
            bm25, vectors = legs[0]
        else:
            bm25 = merge_leg([leg[0] for leg in legs], depth)
            vectors = merge_leg([leg[1] for leg in legs], depth)
        return bm25, [] if unrelated(vectors) else vectors

    def documents_of(self, passage_ids: Iterable[int]) -> Callable[[int], str]:
        """The document of each of ``passage_ids``, asked of their shards once."""
        by_shard: dict[int, list[int]] = {}
        for passage_id in passage_ids:
            shard, local = split_id(passage_id, self.shards)
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

    def hits(self, page: list[Fused], text: str, syntax: bool) -> list[Hit]:
        """The page's hits, each from its own shard, in page order."""
        if self.shards == 1:
            return self._clients[0].hits(self._generations[0], page, text, syntax).result()
        by_shard: dict[int, list[tuple[int, Fused]]] = {}
        for position, item in enumerate(page):
            shard, local = split_id(item.passage_id, self.shards)
            by_shard.setdefault(shard, []).append((position, item._replace(passage_id=local)))
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
        """A document and its passages, with passage ids in the global id space."""
        shard = shard_of(doc_id, self.shards)
        found = self._clients[shard].document(self._generations[shard], doc_id).result()
        if found is None or self.shards == 1:
            return found
        passages = [
            {**passage, "id": global_id(shard, passage["id"], self.shards)}
            for passage in found["passages"]
        ]
        return {**found, "passages": passages}

    def known_documents(self, doc_ids: set[str]) -> int:
        calls = [client.known_documents(gen, doc_ids) for client, gen in self._pinned()]
        return sum(call.result() for call in calls)

    def close(self) -> None:
        for client in self._clients:
            client.close()

    def _pinned(self) -> list[tuple[ShardClient, int]]:
        return list(zip(self._clients, self._generations, strict=True))

    def idf_sum(self, text: str) -> float:
        """The sum of the query terms' IDFs over the whole index, each times its weight in the
        query: BM25's reference score (a term said twice is matched for twice the weight)."""
        stats = self._term_stats(text)
        return sum(weight * stats.idf(term) for term, weight in stats.reference)

    def _term_stats(self, text: str) -> TermStats:
        """The query terms' statistics over all shards (cached: they change only with the
        pinned generations, and new generations get a new ``ShardSet``)."""
        stats = self._stats.get(text)
        if stats is None:  # server threads share the cache: read and write it once each
            calls = [client.term_stats(gen, text) for client, gen in self._pinned()]
            stats = TermStats.total(call.result() for call in calls)
            if len(self._stats) >= STATS_CACHE:
                self._stats.clear()
            self._stats[text] = stats
        return stats
