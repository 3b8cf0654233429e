"""Sharded, replicated serving on Ray Serve (the ``cluster`` extra).

One deployment per shard (``shard-0`` ...), each with ``replicas`` replicas, and the ordinary
FastAPI app as a replicated ingress whose searcher is a ``ClusterEngine``: it fans each query
out to every shard, merges each leg's top candidates and fuses them as local mode does.

Every request is pinned to the cluster manifest that ``CLUSTER`` names when it arrives, and asks
each shard for the generation that manifest lists; a shard replica opens a new generation on
first use and keeps the previous one open. A rebuild that publishes a new manifest therefore
rolls out request by request, with no redeploy and no failed requests.
"""

from __future__ import annotations

import importlib
import threading
import time
from pathlib import Path
from typing import Any

from .cluster import connect, ray_module
from .config import Settings
from .embed import Encoder, load_query_encoder
from .fanout import ClusterEngine, LocalShard, Pending
from .records import Fused, Hit, Mode
from .shards import ClusterStore

APP_NAME = "searchkit"
# Replicas mostly wait on tantivy, FAISS and the network: a fraction of a CPU each lets every
# replica of a small cluster be placed, and rescheduled when a node goes away.
REPLICA_CPUS = 0.25


def serve_module() -> Any:
    """``ray.serve``, which ``import ray`` alone does not load."""
    ray_module()  # the friendly error when the extra is missing
    return importlib.import_module("ray.serve")


class ShardReplica:
    """A Serve replica of one shard: a ``LocalShard`` whose answers travel back through Ray."""

    def __init__(self, home: str, shard: int, settings: Settings) -> None:
        self._shard = LocalShard(ClusterStore(home).shard_home(shard), settings)

    def candidates(
        self, generation: int, text: str, mode: Mode, depth: int, options: dict[str, Any]
    ) -> Any:
        return self._shard.candidates(generation, text, mode, depth, options).result()

    def hits(self, generation: int, page: list[Fused], text: str, syntax: bool) -> list[Hit]:
        return self._shard.hits(generation, page, text, syntax).result()

    def document(self, generation: int, doc_id: str) -> dict[str, Any] | None:
        return self._shard.document(generation, doc_id).result()

    def doc_ids(self, generation: int, passage_ids: list[int]) -> list[str]:
        return self._shard.doc_ids(generation, passage_ids).result()

    def term_stats(self, generation: int, text: str) -> Any:
        return self._shard.term_stats(generation, text).result()

    def node(self) -> str:
        """The Ray node this replica runs on (for tests and ``searchkit serve`` output)."""
        return str(ray_module().get_runtime_context().get_node_id())


class RayShard:
    """A ``ShardClient`` over a Serve deployment handle: calls return ``DeploymentResponse``s,
    so the coordinator waits for all shards at once."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    def candidates(
        self, generation: int, text: str, mode: Mode, depth: int, options: dict[str, Any]
    ) -> Pending[Any]:
        result: Pending[Any] = self._handle.candidates.remote(
            generation, text, mode, depth, options
        )
        return result

    def hits(self, generation: int, page: list[Fused], text: str, syntax: bool) -> Pending[Any]:
        result: Pending[Any] = self._handle.hits.remote(generation, page, text, syntax)
        return result

    def document(self, generation: int, doc_id: str) -> Pending[Any]:
        result: Pending[Any] = self._handle.document.remote(generation, doc_id)
        return result

    def doc_ids(self, generation: int, passage_ids: list[int]) -> Pending[Any]:
        result: Pending[Any] = self._handle.doc_ids.remote(generation, passage_ids)
        return result

    def term_stats(self, generation: int, text: str) -> Pending[Any]:
        result: Pending[Any] = self._handle.term_stats.remote(generation, text)
        return result


class ClusterLive:
    """The ingress's engine source: a ``ClusterEngine`` for the manifest ``CLUSTER`` names now."""

    def __init__(self, home: str, settings: Settings, shards: int) -> None:
        self._store = ClusterStore(home)
        self._settings = settings
        self._shards = shards
        self._lock = threading.Lock()
        self._engine: ClusterEngine | None = None
        self._encoder: Encoder | None = None
        self._served = 0

    def get(self) -> tuple[int, ClusterEngine]:
        version = self._store.require_current()
        with self._lock:
            if self._engine is None or self._engine.generation != version:
                self._engine = ClusterEngine(
                    self._store.manifest(version), self._clients(), self._settings, self._encode
                )
            self._served += 1
            return self._served, self._engine

    def _clients(self) -> list[RayShard]:
        serve = serve_module()
        return [
            RayShard(serve.get_deployment_handle(f"shard-{shard}", app_name=APP_NAME))
            for shard in range(self._shards)
        ]

    def _encode(self) -> Encoder:
        """The query encoder, loaded once per ingress replica, for the index's model."""
        if self._encoder is None:
            model = self._store.manifest(self._store.require_current())["model"]["name"]
            self._encoder = load_query_encoder(self._settings.model_copy(update={"model": model}))
        return self._encoder


def _ingress_app(home: str, settings: Settings, shards: int) -> Any:
    from .web import create_app

    return create_app(settings, lambda: ClusterLive(home, settings, shards))


def build_application(home: Path | str, settings: Settings, replicas: int) -> Any:
    """The Serve application: a deployment per shard of the live manifest, and the ingress."""
    serve = serve_module()
    store = ClusterStore(home)
    shards = len(store.manifest(store.require_current())["shards"])
    location = str(Path(home).resolve())
    actor = {"num_cpus": REPLICA_CPUS}
    shard_apps = [
        serve.deployment(ShardReplica)
        .options(name=f"shard-{shard}", num_replicas=replicas, ray_actor_options=actor)
        .bind(location, shard, settings)
        for shard in range(shards)
    ]

    def builder() -> Any:
        return _ingress_app(location, settings, shards)

    ingress = serve.deployment(serve.ingress(builder)(_Ingress)).options(
        name="ingress", num_replicas=replicas, ray_actor_options=actor
    )
    return ingress.bind(*shard_apps)


class _Ingress:
    """Holds the shard deployments so Serve deploys them with the app; the FastAPI app finds
    them by name."""

    def __init__(self, *shards: Any) -> None:
        self._shards = shards


def serve_cluster(
    address: str, home: Path | str, settings: Settings, *, host: str, port: int, replicas: int
) -> None:
    """Deploy the sharded service on the cluster at ``address`` (HTTP on the head node)."""
    connect(address)
    serve = serve_module()
    serve.start(proxy_location="HeadOnly", http_options={"host": host, "port": port})
    serve.run(build_application(home, settings, replicas), name=APP_NAME, route_prefix="/")


def wait_until_stopped() -> None:
    """Block until Ctrl-C, then take the application down."""
    serve = serve_module()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        serve.delete(APP_NAME)
