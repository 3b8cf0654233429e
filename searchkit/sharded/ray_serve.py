"""Sharded, replicated serving on Ray Serve (the ``cluster`` extra).

One deployment per shard (``shard-0`` ...), each with ``replicas`` replicas, and the ordinary
FastAPI app as a replicated ingress whose engine is the ordinary ``SearchEngine`` over Serve
handles: it fans each query out to every shard, merges each leg's top candidates and fuses them
exactly as for a local index.

Every request is pinned to the cluster manifest that ``CLUSTER`` names when it arrives, and asks
each shard for the generation that manifest lists; a shard replica opens a new generation on
first use and keeps the previous one open. A rebuild that publishes a new manifest therefore
rolls out request by request, with no redeploy and no failed requests.
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path
from typing import Any

from ..choices import Mode
from ..config import Settings
from ..embed import Encoder
from ..records import Fused, Hit
from ..search.engine import SearchEngine, open_sharded
from ..search.live import LiveEngine
from ..search.local import LocalShard
from ..search.shards import Pending, ShardClient
from ..storage.sharded import ShardedStore
from .ray_runtime import connect, ray_module

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
        self._shard = LocalShard(ShardedStore(home).shard_home(shard), settings)

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

    def known_documents(self, generation: int, doc_ids: set[str]) -> int:
        return self._shard.known_documents(generation, doc_ids).result()

    def node(self) -> str:
        """The Ray node this replica runs on (tests check where replicas land)."""
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

    def known_documents(self, generation: int, doc_ids: set[str]) -> Pending[Any]:
        result: Pending[Any] = self._handle.known_documents.remote(generation, doc_ids)
        return result

    def close(self) -> None:
        """Nothing to release: the replicas keep their readers."""


def ray_engines(home: str, settings: Settings, shards: int) -> LiveEngine:
    """The ingress's engine source: a ``SearchEngine`` over the Serve handles of every shard,
    for the manifest ``CLUSTER`` names now (a failed reload keeps the previous one)."""

    def opener(encoder: Encoder | None) -> SearchEngine:
        serve = serve_module()
        clients: list[ShardClient] = [
            RayShard(serve.get_deployment_handle(f"shard-{shard}", app_name=APP_NAME))
            for shard in range(shards)
        ]
        return open_sharded(home, settings, encoder, clients)

    return LiveEngine(Path(home), settings, opener)


def _ingress_app(home: str, settings: Settings, shards: int, address: str | None) -> Any:
    from ..web.app import create_app

    settings = settings.model_copy(update={"index_dir": Path(home)})
    return create_app(settings, lambda: ray_engines(home, settings, shards), address)


def build_application(
    home: Path | str, settings: Settings, replicas: int, address: str | None = None
) -> Any:
    """The Serve application: a deployment per shard of the live manifest, and the ingress;
    with ``address``, its ``/admin/rebuild`` rebuilds the index on that cluster."""
    serve = serve_module()
    store = ShardedStore(home)
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
        return _ingress_app(location, settings, shards, address)

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
    application = build_application(home, settings, replicas, address)
    serve.run(application, name=APP_NAME, route_prefix="/")


def wait_until_stopped() -> None:
    """Block until Ctrl-C, then take the application down."""
    serve = serve_module()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        serve.delete(APP_NAME)
