"""A sharded index: documents spread over N ordinary indexes, searched as one.

Layout of a cluster home (storage every node reads, at the same path)::

    HOME/CLUSTER                  the live cluster manifest's number, replaced atomically
    HOME/cluster/c000003.json     cluster manifests: model, and per shard its generation,
                                  counts and manifest checksum
    HOME/shards/s000/ ...         shard 0: a plain searchkit index home (generations, CURRENT)

A query is validated once, sent to every shard for each leg's top candidates, the legs are
merged by score and fused exactly as in local mode, and the page's hits come from the shards
that hold them. This module holds that logic with no Ray in it: ``ShardClient`` is either a
Ray Serve handle (``cluster_serve``) or an in-process engine (``LocalShard``, for tests).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from .config import Settings
from .engine import SearchEngine
from .errors import IndexCorruptError, IndexNotFoundError, UserInputError
from .fusion import FusionOptions, cap_per_group, fuse_legs, resolve_fusion
from .hits import explain as explain_hits
from .query_check import validate_query
from .records import Fused, Hit, Mode, Ranked, SearchResult
from .store import Store, atomic_write, sha256_file

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from .embed import Encoder

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
POINTER = "CLUSTER"
_MANIFEST_NAME = re.compile(r"^c(\d{6})$")


def shard_of(doc_id: str, shards: int) -> int:
    """The shard a document lives in: a stable hash of its id (the same on every machine and
    Python process, unlike ``hash``)."""
    digest = hashlib.blake2b(doc_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards


def global_id(shard: int, local_id: int, shards: int) -> int:
    """One id space over all shards, so fusion and tie-breaking see distinct passages."""
    return local_id * shards + shard


def split_id(passage_id: int, shards: int) -> tuple[int, int]:
    """``global_id``'s inverse: (shard, the passage's id inside that shard)."""
    return passage_id % shards, passage_id // shards


def merge_leg(per_shard: Sequence[Sequence[Ranked]], depth: int) -> list[Ranked]:
    """Each shard's top candidates of one leg as one global top ``depth``, by raw score.

    Exact for the vector leg (inner products do not depend on the shard). BM25 scores use each
    shard's own term statistics; benchmarks/RESULTS.md measures what that changes.
    """
    shards = len(per_shard)
    pooled = [
        (ranked.score, global_id(shard, ranked.passage_id, shards))
        for shard, leg in enumerate(per_shard)
        for ranked in leg
    ]
    pooled.sort(key=lambda item: (-item[0], item[1]))
    return [Ranked(pid, rank, score) for rank, (score, pid) in enumerate(pooled[:depth], 1)]


class ClusterStore:
    """A cluster home: the shard homes and the versioned cluster manifests."""

    def __init__(self, home: Path | str) -> None:
        self.home = Path(home)

    def shard_home(self, shard: int) -> Path:
        return self.home / "shards" / f"s{shard:03d}"

    def current(self) -> int | None:
        try:
            name = (self.home / POINTER).read_text().strip()
        except FileNotFoundError:
            return None
        match = _MANIFEST_NAME.match(name)
        if match is None:
            raise IndexCorruptError(f"{self.home / POINTER} names no cluster manifest ({name!r})")
        return int(match.group(1))

    def require_current(self) -> int:
        version = self.current()
        if version is None:
            raise IndexNotFoundError(
                f"no sharded index at {self.home}: build one with "
                f"'searchkit rebuild PATH --index {self.home} --ray-address ADDR --shards N'"
            )
        return version

    def manifest(self, version: int) -> dict[str, Any]:
        path = self.home / "cluster" / f"c{version:06d}.json"
        try:
            manifest: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise IndexCorruptError(f"cannot read cluster manifest {path}: {exc}") from None
        return manifest

    def publish(
        self, shards: list[dict[str, Any]], model: dict[str, Any], sources: list[str]
    ) -> int:
        """Write the next cluster manifest, then point ``CLUSTER`` at it (atomic rename)."""
        version = (self.current() or 0) + 1
        manifest = {
            "version": version,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "model": model,
            "sources": sources,
            "shards": shards,
            "counts": {
                key: sum(shard["counts"][key] for shard in shards)
                for key in ("documents", "passages")
            },
        }
        folder = self.home / "cluster"
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(folder / f"c{version:06d}.json", json.dumps(manifest, indent=2).encode())
        atomic_write(self.home / POINTER, f"c{version:06d}\n".encode())
        return version

    def shard_entry(self, shard: int) -> dict[str, Any]:
        """What the cluster manifest records of a shard's live generation."""
        store = Store(self.shard_home(shard))
        generation = store.require_current()
        manifest = store.manifest(generation)
        return {
            "shard": shard,
            "path": self.shard_home(shard).relative_to(self.home).as_posix(),
            "generation": generation,
            "counts": manifest["counts"],
            "bytes": sum(entry["size"] for entry in manifest["files"].values()),
            "manifest_sha256": sha256_file(store.path(generation) / "manifest.json"),
        }

    def pinned(self, shard: int) -> set[int]:
        """Generations of ``shard`` the live cluster manifest names (never to be pruned)."""
        version = self.current()
        if version is None:
            return set()
        shards = self.manifest(version)["shards"]
        return {entry["generation"] for entry in shards if entry["shard"] == shard}


def is_cluster(home: Path | str) -> bool:
    return (Path(home) / POINTER).is_file()


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


class LocalShard:
    """A shard searched in this process (tests, and a cluster home opened without Ray)."""

    def __init__(self, home: Path, settings: Settings) -> None:
        self._store = Store(home)
        self._settings = settings
        self._engines: dict[int, SearchEngine] = {}

    def engine(self, generation: int) -> SearchEngine:
        """The engine for ``generation``; the two most recent stay open during a rollout."""
        if generation not in self._engines:
            self._engines[generation] = SearchEngine(self._store, generation, self._settings, None)
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
        options = {
            "syntax": syntax,
            "query_vector": vector,
            "path_prefix": path_prefix,
            "filters": filters,
        }
        calls = [
            client.candidates(self._generations[shard], text, mode, depth, options)
            for shard, client in enumerate(self._clients)
        ]
        legs = [call.result() for call in calls]
        bm25 = merge_leg([leg[0] for leg in legs], depth)
        vectors = merge_leg([leg[1] for leg in legs], depth)
        fused = fuse_legs(mode, bm25, vectors, fusion)
        if per_doc is not None:
            fused = cap_per_group(fused, self._document_of(fused), per_doc)
        page = fused[offset : offset + k]
        hits = self._hits(page, text, syntax)
        if explain and vector is not None:
            hits = explain_hits(hits, page, vector, self._encoder())
        took = (time.perf_counter() - started) * 1000
        return SearchResult(text, mode, self.generation, k, offset, hits, round(took, 2))

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
        pages = self._hits(fused, "", False)
        owners = {item.passage_id: hit.doc_id for item, hit in zip(fused, pages, strict=True)}
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
        return self._clients[shard].document(self._generations[shard], doc_id).result()

    def info(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "documents": self.manifest["counts"]["documents"],
            "passages": self.manifest["counts"]["passages"],
            "model": self.manifest["model"],
            "bytes": sum(entry["bytes"] for entry in self.manifest["shards"]),
            "shards": self.shards,
        }
