"""A local index home as one shard, at any of its generations (``LocalShard``).

A full generation is read as it is (``PlainShard``). A delta generation (``build.livedocs``)
holds the documents written live since its base, a full generation, and names the base
documents those writes replaced or deleted; ``LayeredShard`` reads both layers: the base
without the hidden passages, the delta whole, BM25 scored with the two layers' term statistics
together, each leg's candidates merged by score. Its passage ids are the layers' own,
interleaved (``global_id`` with two "shards": base 0, delta 1).
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from pathlib import Path
from typing import Any, Protocol

from ..choices import Mode
from ..config import Settings
from ..records import Fused, Hit, Ranked
from ..storage.lexical import TermStats
from ..storage.live import live_record, shown_counts
from ..storage.sharded import global_id, split_id
from ..storage.store import Store
from .reader import IndexReader, Legs
from .shards import Done, merge_leg

KEPT = 2  # generations a shard keeps open: the live one and the one before
BASE, DELTA = 0, 1
LAYERS = 2


class GenerationShard(Protocol):
    """One opened generation of a home, answering at once (``LocalShard`` wraps its answers
    as the ``ShardClient`` calls return them)."""

    manifest: dict[str, Any]

    def files(self) -> dict[str, int]: ...
    def candidates(self, text: str, mode: Mode, depth: int, options: dict[str, Any]) -> Legs: ...
    def hits(self, page: list[Fused], text: str, syntax: bool) -> list[Hit]: ...
    def document(self, doc_id: str) -> dict[str, Any] | None: ...
    def doc_ids(self, passage_ids: list[int]) -> list[str]: ...
    def term_stats(self, text: str) -> TermStats: ...
    def known_documents(self, doc_ids: set[str]) -> int: ...
    def close(self) -> None: ...


class LocalShard:
    """A shard searched in this process: a local index, a shard of a sharded home opened
    without Ray, or what a Ray Serve replica answers with. Every call names the generation
    it reads; the two used last stay open (a rollout or a rollback serves two), older ones
    are dropped, not closed: a request may still be reading one."""

    def __init__(self, home: Path, settings: Settings, *, open_vectors: bool = True) -> None:
        self._store = Store(home)
        self._settings = settings
        self._open_vectors = open_vectors
        self._open: OrderedDict[int, GenerationShard] = OrderedDict()  # least recent first
        self._lock = threading.Lock()  # a Serve replica answers on several threads

    def at(self, generation: int) -> GenerationShard:
        """Generation ``generation``, opened (and checked) on first use."""
        with self._lock:
            if generation not in self._open:
                self._open[generation] = self._opened(generation)
            self._open.move_to_end(generation)
            while len(self._open) > KEPT:
                self._open.popitem(last=False)
            return self._open[generation]

    def _opened(self, generation: int) -> GenerationShard:
        reader = IndexReader(
            self._store, generation, self._settings, open_vectors=self._open_vectors
        )
        if "base" in live_record(reader.manifest):
            return LayeredShard(reader, self._settings, open_vectors=self._open_vectors)
        return PlainShard(reader)

    def candidates(
        self, generation: int, text: str, mode: Mode, depth: int, options: dict[str, Any]
    ) -> Done[Legs]:
        return Done(self.at(generation).candidates(text, mode, depth, options))

    def hits(self, generation: int, page: list[Fused], text: str, syntax: bool) -> Done[list[Hit]]:
        return Done(self.at(generation).hits(page, text, syntax))

    def document(self, generation: int, doc_id: str) -> Done[dict[str, Any] | None]:
        return Done(self.at(generation).document(doc_id))

    def doc_ids(self, generation: int, passage_ids: list[int]) -> Done[list[str]]:
        return Done(self.at(generation).doc_ids(passage_ids))

    def term_stats(self, generation: int, text: str) -> Done[TermStats]:
        return Done(self.at(generation).term_stats(text))

    def known_documents(self, generation: int, doc_ids: set[str]) -> Done[int]:
        return Done(self.at(generation).known_documents(doc_ids))

    def close(self) -> None:
        with self._lock:
            for opened in self._open.values():
                opened.close()
            self._open.clear()


class PlainShard:
    """A full generation, read as it is."""

    def __init__(self, reader: IndexReader) -> None:
        self.reader = reader
        self.manifest = reader.manifest

    def files(self) -> dict[str, int]:
        return {name: entry["size"] for name, entry in self.manifest["files"].items()}

    def candidates(self, text: str, mode: Mode, depth: int, options: dict[str, Any]) -> Legs:
        return self.reader.candidates(text, mode, depth, **options)

    def hits(self, page: list[Fused], text: str, syntax: bool) -> list[Hit]:
        return self.reader.hits(page, text, syntax)

    def document(self, doc_id: str) -> dict[str, Any] | None:
        return self.reader.document(doc_id)

    def doc_ids(self, passage_ids: list[int]) -> list[str]:
        return self.reader.doc_ids(passage_ids)

    def term_stats(self, text: str) -> TermStats:
        return self.reader.term_stats(text)

    def known_documents(self, doc_ids: set[str]) -> int:
        return self.reader.known_documents(doc_ids)

    def close(self) -> None:
        self.reader.close()


_BASES: OrderedDict[tuple[Path, int], IndexReader] = OrderedDict()
_BASES_LOCK = threading.Lock()


def _base_reader(store: Store, base: int, settings: Settings, open_vectors: bool) -> IndexReader:
    """A base's reader, shared by the deltas over it: every refresh publishes a new delta,
    and reopening a large base each time would cost more than the refresh."""
    key = (store.home.resolve(), base)
    with _BASES_LOCK:
        if key not in _BASES:
            _BASES[key] = IndexReader(store, base, settings, open_vectors=open_vectors)
        _BASES.move_to_end(key)
        while len(_BASES) > KEPT:
            _BASES.popitem(last=False)  # dropped, not closed: a request may read it
        return _BASES[key]


class LayeredShard:
    """A delta generation over its base, answering as one shard."""

    def __init__(self, delta: IndexReader, settings: Settings, *, open_vectors: bool) -> None:
        self.delta = delta
        record = live_record(delta.manifest)
        self.base = _base_reader(delta.store, int(record["base"]), settings, open_vectors)
        self.hidden_documents = frozenset(record["hidden"])
        self.hidden = frozenset(self.base.passages_of(sorted(self.hidden_documents)))
        self._layers = (self.base, self.delta)
        self.manifest = self._manifest()

    def _manifest(self) -> dict[str, Any]:
        """The delta's manifest, with counts for both layers, the base's self-check, and the
        languages of both (documents a live write replaced counted in each)."""
        delta = self.delta.manifest
        counts = shown_counts(self.delta.store.home, self.delta.generation)
        languages = Counter(self.base.manifest.get("languages") or {})
        languages.update(delta.get("languages") or {})
        return {
            **delta,
            "counts": counts,
            "self_check": self.base.manifest.get("self_check"),
            "languages": dict(languages),
        }

    def files(self) -> dict[str, int]:
        """Each file both layers read, with its size."""
        return {
            f"{reader.store.path(reader.generation).name}/{name}": entry["size"]
            for reader in self._layers
            for name, entry in reader.manifest["files"].items()
        }

    def candidates(self, text: str, mode: Mode, depth: int, options: dict[str, Any]) -> Legs:
        if mode != "vector" and not options.get("syntax") and options.get("term_stats") is None:
            options = {**options, "term_stats": self._term_stats(text)}
        visible = self._visible_base(text, mode, depth, options)
        delta = self.delta.candidates(text, mode, depth, **options)
        return merge_leg([visible[0], delta[0]], depth), merge_leg([visible[1], delta[1]], depth)

    def _visible_base(
        self, text: str, mode: Mode, depth: int, options: dict[str, Any]
    ) -> tuple[list[Ranked], list[Ranked]]:
        """The base's top ``depth`` of each leg without hidden passages: asked for a little
        more than ``depth``, and for more only while hidden passages crowd a leg out."""
        most = depth + len(self.hidden)
        asked = min(most, 2 * depth)
        while True:
            legs = self.base.candidates(text, mode, asked, **options)
            visible = [[r for r in leg if r.passage_id not in self.hidden] for leg in legs]
            crowded = any(
                len(shown) < depth and len(leg) == asked
                for shown, leg in zip(visible, legs, strict=True)
            )
            if not crowded or asked >= most:
                return visible[0][:depth], visible[1][:depth]
            asked = min(most, 2 * asked)

    def hits(self, page: list[Fused], text: str, syntax: bool) -> list[Hit]:
        hits: list[Hit | None] = [None] * len(page)
        for layer, reader in enumerate(self._layers):
            mine = [
                (position, item._replace(passage_id=split_id(item.passage_id, LAYERS)[1]))
                for position, item in enumerate(page)
                if split_id(item.passage_id, LAYERS)[0] == layer
            ]
            for (position, _), hit in zip(
                mine, reader.hits([item for _, item in mine], text, syntax), strict=True
            ):
                hits[position] = hit
        return [hit for hit in hits if hit is not None]

    def document(self, doc_id: str) -> dict[str, Any] | None:
        found, layer = self.delta.document(doc_id), DELTA
        if found is None and doc_id not in self.hidden_documents:
            found, layer = self.base.document(doc_id), BASE
        if found is None:
            return None
        passages = [
            {**passage, "id": global_id(layer, passage["id"], LAYERS)}
            for passage in found["passages"]
        ]
        return {**found, "passages": passages}

    def doc_ids(self, passage_ids: list[int]) -> list[str]:
        layers = [split_id(passage_id, LAYERS) for passage_id in passage_ids]
        found: list[dict[int, str]] = []
        for layer, reader in enumerate(self._layers):
            ids = [local for at, local in layers if at == layer]
            found.append(dict(zip(ids, reader.doc_ids(ids), strict=True)))
        return [found[layer][local] for layer, local in layers]

    def term_stats(self, text: str) -> TermStats:
        return self._term_stats(text)

    def known_documents(self, doc_ids: set[str]) -> int:
        visible = doc_ids - self.hidden_documents
        return self.delta.known_documents(doc_ids) + self.base.known_documents(visible)

    def close(self) -> None:
        self.delta.close()  # the base stays open for the next delta over it

    def _term_stats(self, text: str) -> TermStats:
        return TermStats.total(reader.term_stats(text) for reader in self._layers)
