"""Live writes to a sharded home: one log for the cluster, each batch routed to the shards
that ``shard_of`` names, made visible on every shard at once by one new cluster manifest."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from ..config import Settings
from ..embed import Encoder, load_encoder
from ..records import Document
from ..storage.live import Batch, LiveStore, live_record
from ..storage.sharded import ShardedStore, shard_of
from ..storage.store import Store
from .builder import build_index, live_sources


def refresh_sharded(home: Path, settings: Settings, encoder: Encoder) -> int | None:
    """Route the cluster's new batches to their shards, build each touched shard's delta (or
    compact it), then publish one cluster manifest naming them all; returns its version, or
    None when every write is shown already.

    Under the cluster's build lock (the one a Ray rebuild holds). A crash before the cluster
    manifest is published shows nothing new: the next refresh routes the same batches again,
    and writing a document twice writes it once.
    """
    cluster = ShardedStore(home)
    log = LiveStore(cluster.home)
    with Store(cluster.home).build_lock():
        manifest = cluster.manifest(cluster.require_current())
        batches = log.batches(live_record(manifest).get("seq", 0))
        if not batches:
            return None
        shards = len(manifest["shards"])
        touched = _route(batches, cluster, shards)
        for shard in sorted(touched):
            _refresh_shard(cluster, shard, shards, settings, encoder)
        entries = [cluster.shard_entry(shard) for shard in range(shards)]
        version = cluster.publish(
            entries, manifest["model"], manifest["sources"], {"seq": batches[-1].seq}
        )
        log.forget_through(batches[-1].seq)  # the shards' logs hold them now
    return version


def route_pending(home: Path, settings: Settings) -> None:
    """Before a rebuild of the sharded home: every logged live write refreshed onto its shards.
    The shard builds fold the shards' logs, so a batch half routed by a refresh that crashed
    would otherwise show half."""
    cluster = ShardedStore(home)
    if cluster.current() is not None and LiveStore.exists(cluster.home):
        refresh_sharded(cluster.home, settings, load_encoder(settings))


def live_shown(cluster: ShardedStore) -> dict[str, Any] | None:
    """The live cluster manifest's "live" entry, for the next one to carry on."""
    version = cluster.current()
    return (live_record(cluster.manifest(version)) or None) if version is not None else None


def shown(home: Path) -> tuple[int, int]:
    """The last live write a search of the sharded home sees, and its cluster manifest."""
    cluster = ShardedStore(home)
    version = cluster.require_current()
    return int(live_record(cluster.manifest(version)).get("seq", 0)), version


def _route(batches: list[Batch], cluster: ShardedStore, shards: int) -> set[int]:
    """Each batch's part for each shard, appended to that shard's log, in order."""
    touched: set[int] = set()
    for batch in batches:
        parts: dict[int, tuple[list[dict[str, Any]], list[str]]] = {}
        for record in batch.upserts:
            parts.setdefault(shard_of(record["id"], shards), ([], []))[0].append(record)
        for doc_id in batch.deletes:
            parts.setdefault(shard_of(doc_id, shards), ([], []))[1].append(doc_id)
        for shard, (upserts, deletes) in parts.items():
            LiveStore(cluster.shard_home(shard)).append(upserts, deletes)
            touched.add(shard)
    return touched


def _refresh_shard(
    cluster: ShardedStore, shard: int, shards: int, settings: Settings, encoder: Encoder
) -> None:
    shard_home = cluster.shard_home(shard)
    options: dict[str, Any] = {
        "allow_shrink": True,
        "only": partial(_in_shard, shard, shards),
        "pinned": cluster.pinned(shard),  # what the live cluster manifest still names
    }
    build_index(live_sources(shard_home), shard_home, settings, encoder, delta=True, **options)
    store = Store(shard_home)
    hidden = live_record(store.manifest(store.require_current())).get("hidden", ())
    if len(hidden) > settings.compact_documents:
        build_index(live_sources(shard_home), shard_home, settings, encoder, **options)


def _in_shard(shard: int, shards: int, document: Document) -> bool:
    return shard_of(document.doc_id, shards) == shard
