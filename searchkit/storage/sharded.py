"""A sharded index on disk: documents spread over N ordinary index homes, and one id space.

Layout of a sharded home (on a cluster: storage every node reads, at the same path)::

    HOME/CLUSTER                  the live cluster manifest's number, replaced atomically
    HOME/cluster/c000003.json     cluster manifests: model, and per shard its generation,
                                  counts and manifest checksum
    HOME/shards/s000/ ...         shard 0: a plain searchkit index home (generations, CURRENT)

``search.shards`` searches such an index as one; ``sharded.ray_build`` builds it on Ray.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path
from typing import Any

from ..errors import IndexCorruptError, IndexNotFoundError
from .generation import MANIFEST
from .live import live_record, shown_counts
from .store import SHARDED_POINTER, Store, atomic_write, is_sharded, read_pointer, sha256_file

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


class ShardedStore:
    """A sharded home: the shard homes and the versioned cluster manifests."""

    def __init__(self, home: Path | str) -> None:
        self.home = Path(home)

    def shard_home(self, shard: int) -> Path:
        return self.home / "shards" / f"s{shard:03d}"

    def refuse_foreign_files(self) -> None:
        """A first sharded build, like a first local one, never writes among someone's files
        (``Store.refuse_foreign_files``); a sharded home is this store's own."""
        if not is_sharded(self.home):
            Store(self.home).refuse_foreign_files()

    def current(self) -> int | None:
        return read_pointer(self.home / SHARDED_POINTER, _MANIFEST_NAME, "cluster manifest")

    def require_current(self) -> int:
        version = self.current()
        if version is None:
            raise IndexNotFoundError(
                f"no sharded index at {self.home}: build one with "
                f"'searchkit rebuild PATH --index {self.home} --ray-address ADDR --shards N'"
            )
        return version

    def versions(self) -> list[int]:
        """Numbers of every cluster manifest on disk, ascending."""
        folder = self.home / "cluster"
        found = (_MANIFEST_NAME.match(p.stem) for p in folder.glob("c*.json"))
        return sorted(int(m.group(1)) for m in found if m)

    def manifest(self, version: int) -> dict[str, Any]:
        path = self.home / "cluster" / f"c{version:06d}.json"
        try:
            manifest: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise IndexCorruptError(f"cannot read cluster manifest {path}: {exc}") from None
        return manifest

    def publish(
        self,
        shards: list[dict[str, Any]],
        model: dict[str, Any],
        sources: list[str],
        live: dict[str, Any] | None = None,
    ) -> int:
        """Write the next cluster manifest, then point ``CLUSTER`` at it (atomic rename).
        ``live`` records the last live write it shows (``build.writer``)."""
        version = max(self.versions(), default=0) + 1  # past a rolled-back newer one too
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
            "live": live,
        }
        folder = self.home / "cluster"
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(folder / f"c{version:06d}.json", json.dumps(manifest, indent=2).encode())
        self.point_to(version)
        return version

    def point_to(self, version: int) -> None:
        """Make cluster manifest ``version`` the live one (atomic rename)."""
        atomic_write(self.home / SHARDED_POINTER, f"c{version:06d}\n".encode())

    def shard_entry(self, shard: int) -> dict[str, Any]:
        """What the cluster manifest records of a shard's live generation."""
        store = Store(self.shard_home(shard))
        generation = store.require_current()
        manifest = store.manifest(generation)
        return {
            "shard": shard,
            "path": self.shard_home(shard).relative_to(self.home).as_posix(),
            "generation": generation,
            "counts": {**manifest["counts"], **shown_counts(self.shard_home(shard), generation)},
            "bytes": sum(entry["size"] for entry in manifest["files"].values()),
            "manifest_sha256": sha256_file(store.path(generation) / MANIFEST),
            "self_check": manifest.get("self_check"),
            "language": manifest.get("language"),
            "languages": manifest.get("languages"),
        }

    def pinned(self, shard: int) -> set[int]:
        """Generations of ``shard`` the live cluster manifest names, and their bases if they
        are deltas (never to be pruned)."""
        version = self.current()
        if version is None:
            return set()
        shards = self.manifest(version)["shards"]
        named = {entry["generation"] for entry in shards if entry["shard"] == shard}
        store = Store(self.shard_home(shard))
        bases = {live_record(store.manifest(g, any_format=True)).get("base") for g in named}
        return named | {int(base) for base in bases if base is not None}  # a delta's base too

    def files(self, manifest: dict[str, Any]) -> dict[str, int]:
        """Bytes per file name, summed over the shard generations ``manifest`` names."""
        sizes: dict[str, int] = {}
        for entry in manifest["shards"]:
            store = Store(self.home / entry["path"])
            for name, file in store.manifest(entry["generation"])["files"].items():
                sizes[name] = sizes.get(name, 0) + file["size"]
        return sizes


def live_version(home: Path | str) -> int | None:
    """What a home serves now: the cluster manifest ``CLUSTER`` names for a sharded home, the
    generation ``CURRENT`` names for a local one (None when nothing is published)."""
    store: ShardedStore | Store = ShardedStore(home) if is_sharded(home) else Store(Path(home))
    return store.current()
