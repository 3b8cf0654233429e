"""Distributed rebuild on Ray (the ``cluster`` extra).

1. The driver reads the sources, cuts passages exactly as a local build does, sends each
   document to a shard by ``shard_of(doc_id)``, and keeps the passages whose vectors the
   shard's live generation does not already hold (embedding reuse).
2. Ray Data embeds those passages with ``map_batches`` on an actor pool; each actor loads the
   model once.
3. One Ray task per shard (spread over the nodes) runs an ordinary ``build_index`` over its
   share of the documents, taking vectors from step 2 instead of encoding, and publishes the
   shard's generation.
4. The driver publishes a cluster manifest naming every shard's generation, atomically. Until
   then servers keep answering from the previous manifest, whose generations are kept.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..build.builder import build_index, document_base
from ..build.reuse import EmbeddingReuse
from ..build.sharded_writes import live_shown, route_pending
from ..config import Settings
from ..embed import Encoder, ModelFolder, load_encoder, passage_backend
from ..errors import SearchkitError, SourceError, UserInputError
from ..ingest.documents import iter_documents
from ..ingest.passages import embedded_passages
from ..storage.catalog import content_hash
from ..storage.sharded import ShardedStore, shard_of
from ..storage.store import Store
from .precomputed import PrecomputedEncoder
from .ray_runtime import connect, free_cpus, ray_module

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

PLACEMENT_TIMEOUT = 300  # seconds to wait for CPUs for the shard builds
ACTOR_START_TIMEOUT = 300  # seconds to wait for the embedding actors to start


@dataclass
class ClusterReport:
    """What a distributed rebuild did, and where."""

    version: int
    shards: int
    documents: int
    passages: int
    encoded: int
    reused: int
    embed_batches_per_node: dict[str, int]
    shard_nodes: list[str]
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def cluster_rebuild(
    sources: Iterable[Path | str],
    home: Path | str,
    settings: Settings,
    shards: int,
    *,
    actors: int | None = None,
    reuse: bool = True,
    on_stage: Callable[[str], None] | None = None,
) -> ClusterReport:
    """Build a sharded index of ``sources`` under ``home`` on the connected Ray cluster.

    ``actors`` caps the embedding actors (default and most: one per free CPU of the cluster);
    ``reuse=False`` encodes every passage again.
    """
    ray = ray_module()

    if shards < 1:
        raise UserInputError("--shards must be at least 1")
    paths = [Path(s).resolve() for s in sources]
    for missing in (p for p in paths if not p.exists()):
        raise SourceError(f"source not found: {missing}")
    cluster = ShardedStore(home)
    cluster.refuse_foreign_files()
    # Resolved here so every node encodes with the same backend whatever its own CPU.
    settings = settings.model_copy(update={"backend": passage_backend(settings)})
    stage = on_stage or (lambda _: None)
    seconds: dict[str, float] = {}
    route_pending(cluster.home, settings)  # no live write half routed into the rebuild
    with Store(cluster.home).build_lock():
        clock = time.perf_counter()
        stage("reading and cutting documents")
        encoder = load_encoder(settings)
        texts, reused, documents, passages = _plan(
            paths, cluster, settings, shards, encoder if reuse else None
        )
        seconds["plan"] = time.perf_counter() - clock

        clock = time.perf_counter()
        stage(f"embedding {len(texts)} passages on the cluster")
        pool = free_cpus(ray) if actors is None else min(actors, free_cpus(ray))
        vectors, batch_nodes = _embed(texts, settings, pool, encoder)
        seconds["embed"] = time.perf_counter() - clock

        clock = time.perf_counter()
        stage(f"building {shards} shards")
        entries, shard_nodes = _build_shards(paths, cluster, settings, shards, vectors, reuse=reuse)
        seconds["shards"] = time.perf_counter() - clock

        names = [str(p) for p in paths]
        version = cluster.publish(entries, _model_entry(encoder), names, live_shown(cluster))
    return ClusterReport(
        version,
        shards,
        documents,
        passages,
        len(texts),
        reused,
        dict(batch_nodes),
        shard_nodes,
        {name: round(value, 2) for name, value in seconds.items()},
    )


def rebuild_sharded(
    home: Path | str,
    settings: Settings,
    address: str,
    sources: Sequence[Path] | None = None,
    shards: int | None = None,
    *,
    actors: int | None = None,
    reuse: bool = True,
    on_stage: Callable[[str], None] | None = None,
) -> ClusterReport:
    """``cluster_rebuild`` on the cluster at ``address``; sources and shard count default to
    the live manifest's (what ``searchkit rebuild --ray-address`` and ``/admin/rebuild`` run)."""
    store = ShardedStore(home)
    live = store.current()
    manifest = store.manifest(live) if live is not None else None
    if not sources and manifest is not None:
        sources = [Path(s) for s in manifest["sources"]]
    if not sources:
        raise UserInputError(f"no sharded index at {store.home} to take sources from: name PATHS")
    shards = shards or (len(manifest["shards"]) if manifest else 2)
    store.refuse_foreign_files()  # before connecting: refusing a folder needs no cluster
    connect(address)
    return cluster_rebuild(
        sources, home, settings, shards, actors=actors, reuse=reuse, on_stage=on_stage
    )


def _plan(
    paths: list[Path],
    cluster: ShardedStore,
    settings: Settings,
    shards: int,
    reuse_for: Encoder | None,
) -> tuple[dict[str, str], int, int, int]:
    """Passages to embed (content hash -> text), and counts: reused, documents, passages.
    Vectors are reused from each shard's live generation when ``reuse_for`` is given."""
    encoder = reuse_for or load_encoder(settings)
    reuse = [
        EmbeddingReuse(Store(cluster.shard_home(s)), encoder) if reuse_for else None
        for s in range(shards)
    ]
    missing: dict[str, str] = {}
    reused = documents = passages = 0
    base = document_base(Store(cluster.shard_home(0)), paths)  # as each shard's build names ids
    for document in iter_documents(paths, base=base):
        documents += 1
        shard = shard_of(document.doc_id, shards)
        for text in embedded_passages(document, settings.min_passage_words, encoder)[1]:
            passages += 1
            digest = content_hash(text)
            stored = reuse[shard]
            if stored is not None and stored.lookup(digest) is not None:
                reused += 1
            else:
                missing[digest] = text
    return missing, reused, documents, passages


def _embed(
    texts: dict[str, str], settings: Settings, actors: int, encoder: Encoder
) -> tuple[dict[str, NDArray[np.float32]], Counter[str]]:
    """Vectors of ``texts`` (by hash) from a Ray Data actor pool, and batches per node.

    Each Ray Data row is one whole forward pass as a local build would batch these texts
    (``ModelFolder.batches``), so that every passage gets the vector one machine would give it.
    """
    vectors: dict[str, NDArray[np.float32]] = {}
    nodes: Counter[str] = Counter()
    if not texts:
        return vectors, nodes
    # Ray Data would log its progress every few seconds; the CLI prints its own stages. Its
    # logging is configured when it is imported, so it is quietened after that.
    data = importlib.import_module("ray.data")
    context = data.DataContext.get_current()
    context.enable_progress_bars = False
    # Every actor is up before the first batch goes out, so that all of them share the work.
    context.wait_for_min_actors_s = ACTOR_START_TIMEOUT
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    hashes, bodies = list(texts), list(texts.values())
    items = [
        {"hashes": [hashes[i] for i in group], "texts": [bodies[i] for i in group]}
        for group in _forward_passes(_folder(encoder), bodies, actors)
    ]
    dataset = data.from_items(items).map_batches(
        PassageEmbedder,
        fn_constructor_kwargs={"settings": settings},
        compute=data.ActorPoolStrategy(size=actors),
        batch_size=1,
        num_cpus=1,  # Ray Data spreads the pool's actors over the nodes by default
    )
    try:
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            for digest, vector in zip(batch["hash"], batch["vector"], strict=True):
                vectors[str(digest)] = vector
            nodes[str(batch["node"][0])] += 1
    except ray_module().exceptions.GetTimeoutError:
        raise SearchkitError(
            f"the Ray cluster did not start {actors} embedding actors within "
            f"{ACTOR_START_TIMEOUT} s; pass fewer --actors or free some CPUs"
        ) from None
    return vectors, nodes


def _forward_passes(encoder: ModelFolder, texts: list[str], actors: int) -> list[list[int]]:
    """The groups a local build would encode ``texts`` in, so that a passage gets the vector
    one machine gives it. Too few groups to keep every actor busy (a small input) are split
    further: every node then works, at the cost of int8 vectors slightly unlike a local
    build's."""
    groups = encoder.batches(texts)
    if len(groups) >= 2 * actors:
        return groups
    flat = [i for group in groups for i in group]
    return [flat[part :: 2 * actors] for part in range(2 * actors) if flat[part :: 2 * actors]]


def _folder(encoder: Encoder) -> ModelFolder:
    if not isinstance(encoder, ModelFolder):  # both backends are; a stand-in is a bug here
        raise TypeError(f"{type(encoder).__name__} cannot plan forward passes")
    return encoder


class PassageEmbedder:
    """A Ray Data actor: loads the model once, then embeds batch after batch."""

    def __init__(self, settings: Settings) -> None:
        ray = ray_module()

        threads = max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1)))
        self._encoder = load_encoder(settings, threads=threads)
        self._node = ray.get_runtime_context().get_node_id()

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        texts = [str(text) for group in batch["texts"] for text in group]
        vectors = self._encoder.encode(texts)
        return {
            "hash": np.array([str(digest) for group in batch["hashes"] for digest in group]),
            "vector": vectors,
            "node": np.array([self._node] * len(vectors)),
        }


def _build_shards(
    paths: list[Path],
    cluster: ShardedStore,
    settings: Settings,
    shards: int,
    vectors: dict[str, NDArray[np.float32]],
    *,
    reuse: bool,
) -> tuple[list[dict[str, Any]], list[str]]:
    """One ``build_index`` task per shard, placed on different nodes while there are enough."""
    ray = ray_module()
    strategies = importlib.import_module("ray.util.scheduling_strategies")

    alive = sum(1 for node in ray.nodes() if node["Alive"])
    group = ray.util.placement_group(
        [{"CPU": 1}] * shards, strategy="STRICT_SPREAD" if shards <= alive else "SPREAD"
    )
    try:
        ray.get(group.ready(), timeout=PLACEMENT_TIMEOUT)
    except ray.exceptions.GetTimeoutError:
        ray.util.remove_placement_group(group)
        raise SearchkitError(
            f"the Ray cluster cannot place {shards} shard builds of 1 CPU each "
            f"within {PLACEMENT_TIMEOUT} s; free some CPUs or use fewer shards"
        ) from None
    try:
        shared = ray.put(vectors)
        build_shard = ray.remote(_run_shard_build)
        calls = [
            build_shard.options(
                num_cpus=1,
                scheduling_strategy=strategies.PlacementGroupSchedulingStrategy(
                    group, placement_group_bundle_index=shard
                ),
            ).remote(paths, str(cluster.home), settings, (shard, shards), shared, reuse)
            for shard in range(shards)
        ]
        nodes = ray.get(calls)
    finally:
        ray.util.remove_placement_group(group)
    return [cluster.shard_entry(shard) for shard in range(shards)], nodes


def _run_shard_build(  # noqa: PLR0917 (called positionally by Ray)
    paths: Sequence[Path],
    home: str,
    settings: Settings,
    placement: tuple[int, int],
    vectors: dict[str, NDArray[np.float32]],
    reuse: bool,
) -> str:
    """Build shard ``placement[0]`` of ``placement[1]`` from vectors computed elsewhere."""
    ray = ray_module()
    shard, shards = placement

    cluster = ShardedStore(home)
    build_index(
        paths,
        cluster.shard_home(shard),
        settings,
        PrecomputedEncoder(load_encoder(settings), vectors),
        reuse=reuse,
        allow_shrink=True,  # a shard may legitimately shrink when documents move or go
        only=lambda document: shard_of(document.doc_id, shards) == shard,
        pinned=cluster.pinned(shard),
    )
    return str(ray.get_runtime_context().get_node_id())


def _model_entry(encoder: Encoder) -> dict[str, Any]:
    return {
        "name": encoder.name,
        "fingerprint": encoder.fingerprint,
        "dimension": encoder.dimension,
        "variant": encoder.variant,
    }
