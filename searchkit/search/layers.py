"""``LayeredShard``: a delta generation over its base, answering as one shard.

A delta generation (``build.livedocs``) holds the documents written live since its base, a
full generation, and names the base documents those writes replaced or deleted. A query reads
both layers: the base without the hidden passages, the delta whole, BM25 scored with the two
layers' term statistics together, each leg's candidates merged by score. Passage ids are the
layers' own, interleaved (``global_id`` with two "shards": base 0, delta 1).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..choices import Mode
from ..config import Settings
from ..records import Fused, Hit
from ..storage.lexical import TermStats
from ..storage.live import live_record
from ..storage.sharded import global_id, split_id
from ..storage.store import Store
from .reader import IndexReader, Legs
from .shards import Done, LocalShard, ShardClient, merge_leg

BASE, DELTA = 0, 1
LAYERS = 2
KEPT_BASES = 2  # base readers kept open across deltas: each delta would reopen its base


_BASES: OrderedDict[tuple[Path, int], IndexReader] = OrderedDict()
_BASES_LOCK = threading.Lock()


def open_local(
    home: Path, generation: int, settings: Settings, open_vectors: bool
) -> tuple[ShardClient, dict[str, Any], Callable[[], dict[str, int]]]:
    """Generation ``generation`` of the local index ``home`` as one shard, with its manifest
    and its files' sizes: a full generation as it is, a delta over its base."""
    if "base" in live_record(Store(home).manifest(generation)):
        layered = LayeredShard(home, settings, generation, open_vectors=open_vectors)
        return layered, layered.manifest(), layered.files
    shard = LocalShard(home, settings, open_vectors=open_vectors)
    manifest = shard.reader(generation).manifest  # opening checks the generation
    sizes = {name: entry["size"] for name, entry in manifest["files"].items()}
    return shard, manifest, lambda: sizes


class LayeredShard:
    """The delta generation ``delta`` of the index home ``home`` over its base."""

    def __init__(
        self, home: Path, settings: Settings, delta: int, *, open_vectors: bool = True
    ) -> None:
        store = Store(home)
        self.delta = IndexReader(store, delta, settings, open_vectors=open_vectors)
        record = live_record(self.delta.manifest)
        self.base = self._base_reader(store, int(record["base"]), settings, open_vectors)
        self.hidden_documents = frozenset(record["hidden"])
        self.hidden = frozenset(self.base.passages_of(sorted(self.hidden_documents)))
        self._layers = (self.base, self.delta)

    @classmethod
    def _base_reader(
        cls, store: Store, base: int, settings: Settings, open_vectors: bool
    ) -> IndexReader:
        """The base's reader, shared by the deltas over it (opening a large base takes long)."""
        key = (store.home.resolve(), base)
        with _BASES_LOCK:
            if key not in _BASES:
                _BASES[key] = IndexReader(store, base, settings, open_vectors=open_vectors)
            _BASES.move_to_end(key)
            while len(_BASES) > KEPT_BASES:
                _BASES.popitem(last=False)  # dropped, not closed: a request may read it
            return _BASES[key]

    def manifest(self) -> dict[str, Any]:
        """The delta's manifest, with counts for both layers and the base's self-check."""
        base, delta = self.base.manifest, self.delta.manifest
        hidden_documents = self.base.known_documents(set(self.hidden_documents))
        counts = {
            "documents": base["counts"]["documents"] - hidden_documents
            + delta["counts"]["documents"],
            "passages": base["counts"]["passages"] - len(self.hidden) + delta["counts"]["passages"],
        }  # fmt: skip
        return {**delta, "counts": counts, "self_check": base.get("self_check")}

    def files(self) -> dict[str, int]:
        """Each file both layers read, with its size."""
        return {
            f"{reader.store.path(reader.generation).name}/{name}": entry["size"]
            for reader in self._layers
            for name, entry in reader.manifest["files"].items()
        }

    # ----- the ShardClient protocol (``generation`` is always the delta's) --------------------
    def candidates(
        self, generation: int, text: str, mode: Mode, depth: int, options: dict[str, Any]
    ) -> Done[Legs]:
        if mode != "vector" and not options.get("syntax") and options.get("term_stats") is None:
            options = {**options, "term_stats": self._term_stats(text)}
        base = self.base.candidates(text, mode, depth + len(self.hidden), **options)
        delta = self.delta.candidates(text, mode, depth, **options)
        visible = [[r for r in leg if r.passage_id not in self.hidden] for leg in base]
        return Done(
            (
                merge_leg([visible[0][:depth], delta[0]], depth),
                merge_leg([visible[1][:depth], delta[1]], depth),
            )
        )

    def hits(self, generation: int, page: list[Fused], text: str, syntax: bool) -> Done[list[Hit]]:
        hits: list[Hit | None] = [None] * len(page)
        for layer, reader in enumerate(self._layers):
            mine = [
                (position, replace(item, passage_id=split_id(item.passage_id, LAYERS)[1]))
                for position, item in enumerate(page)
                if split_id(item.passage_id, LAYERS)[0] == layer
            ]
            for (position, _), hit in zip(
                mine, reader.hits([item for _, item in mine], text, syntax), strict=True
            ):
                hits[position] = hit
        return Done([hit for hit in hits if hit is not None])

    def document(self, generation: int, doc_id: str) -> Done[dict[str, Any] | None]:
        found, layer = self.delta.document(doc_id), DELTA
        if found is None and doc_id not in self.hidden_documents:
            found, layer = self.base.document(doc_id), BASE
        if found is None:
            return Done(None)
        passages = [
            {**passage, "id": global_id(layer, passage["id"], LAYERS)}
            for passage in found["passages"]
        ]
        return Done({**found, "passages": passages})

    def doc_ids(self, generation: int, passage_ids: list[int]) -> Done[list[str]]:
        layers = map(_split, passage_ids)
        return Done([self._layers[layer].document_of(local) for layer, local in layers])

    def term_stats(self, generation: int, text: str) -> Done[TermStats]:
        return Done(self._term_stats(text))

    def known_documents(self, generation: int, doc_ids: set[str]) -> Done[int]:
        visible = doc_ids - self.hidden_documents
        return Done(self.delta.known_documents(doc_ids) + self.base.known_documents(visible))

    def close(self) -> None:
        self.delta.close()  # the base stays open for the next delta over it

    def _term_stats(self, text: str) -> TermStats:
        return TermStats.total(reader.term_stats(text) for reader in self._layers)


def _split(passage_id: int) -> tuple[int, int]:
    return split_id(passage_id, LAYERS)
