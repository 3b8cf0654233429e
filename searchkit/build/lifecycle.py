"""Index lifecycle: verify a generation, list generations, roll back to an older one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import IndexCorruptError, UserInputError
from ..storage.generation import MANIFEST, generation_name, passage_counts
from ..storage.live import live_record
from ..storage.sharded import ShardedStore
from ..storage.store import Store, is_sharded, sha256_file


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a generation, and what to do about it."""

    file: str
    detail: str
    fix: str

    def __str__(self) -> str:
        return f"{self.file}: {self.detail} ({self.fix})"


REBUILD = "run 'searchkit rebuild --full', or 'searchkit rollback' to an older generation"
REBUILD_SHARDED = "run 'searchkit rebuild --full --ray-address ADDR', or 'searchkit rollback'"


def verify(index_dir: Path, generation: int | None = None, deep: bool = False) -> list[Problem]:
    """Problems of a generation (the live one by default): files and sizes against the manifest,
    counts of tantivy, FAISS and the catalog, and with ``deep`` every file's sha256. On a
    sharded home ``generation`` is a cluster manifest, and every shard it names is verified."""
    if is_sharded(index_dir):
        return _verify_sharded(ShardedStore(index_dir), generation, deep)
    store = Store(index_dir)
    number = store.require_current() if generation is None else generation
    name = generation_name(number)
    try:
        manifest = store.manifest(number)
    except IndexCorruptError as exc:
        return [Problem(f"{name}/{MANIFEST}", str(exc), REBUILD)]
    root = store.path(number)
    problems = _file_problems(root, name, manifest["files"], deep)
    if not problems:
        problems += _count_problems(root, name, manifest["counts"]["passages"])
    base = live_record(manifest).get("base")
    if base is not None:  # a delta generation is searched with its base
        problems += verify(index_dir, int(base), deep)
    return problems


def _verify_sharded(store: ShardedStore, version: int | None, deep: bool) -> list[Problem]:
    version = store.require_current() if version is None else version
    try:
        manifest = store.manifest(version)
    except IndexCorruptError as exc:
        return [Problem(f"cluster/c{version:06d}.json", str(exc), REBUILD_SHARDED)]
    problems = []
    for entry in manifest["shards"]:
        home = store.home / entry["path"]
        name = f"{entry['path']}/generations/{generation_name(entry['generation'])}"
        if entry["generation"] not in Store(home).numbers():
            problems.append(Problem(name, "missing", REBUILD_SHARDED))
            continue
        if (
            sha256_file(Store(home).path(entry["generation"]) / MANIFEST)
            != entry["manifest_sha256"]
        ):
            detail = "its manifest is not the one the cluster manifest names"
            problems.append(Problem(f"{name}/{MANIFEST}", detail, REBUILD_SHARDED))
        found = verify(home, entry["generation"], deep)
        problems += [Problem(f"{entry['path']}/{p.file}", p.detail, p.fix) for p in found]
    return problems


def _file_problems(
    root: Path, name: str, files: dict[str, dict[str, Any]], deep: bool
) -> list[Problem]:
    problems = []
    for rel, entry in files.items():
        path = root / rel
        if not path.is_file():
            problems.append(Problem(f"{name}/{rel}", "missing", REBUILD))
        elif path.stat().st_size != entry["size"]:
            detail = f"{path.stat().st_size} bytes, the manifest says {entry['size']}"
            problems.append(Problem(f"{name}/{rel}", detail, REBUILD))
        elif deep and sha256_file(path) != entry["sha256"]:
            problems.append(Problem(f"{name}/{rel}", "content differs from its checksum", REBUILD))
    return problems


def _count_problems(root: Path, name: str, expected: int) -> list[Problem]:
    try:
        counts = passage_counts(root)
    except Exception as exc:  # a damaged file can fail in any of three libraries
        return [Problem(name, f"cannot be opened ({type(exc).__name__}: {exc})", REBUILD)]
    return [
        Problem(f"{name}/{part}", f"holds {count} passages, the manifest says {expected}", REBUILD)
        for part, count in counts.items()
        if count != expected
    ]


def generations(index_dir: Path) -> list[dict[str, Any]]:
    """Every generation on disk with its provenance, oldest first (on a sharded home: every
    cluster manifest, with its counts summed over the shards)."""
    if is_sharded(index_dir):
        return _cluster_versions(ShardedStore(index_dir))
    store = Store(index_dir)
    live = store.current()
    if live is None and not store.numbers():
        store.require_current()  # nothing at all: say so, as info and verify do
    listed = []
    for number in store.numbers():
        try:
            manifest = store.manifest(number)
        except IndexCorruptError as exc:
            listed.append({"generation": number, "live": number == live, "error": str(exc)})
            continue
        listed.append(_described(number, number == live, manifest, manifest["counts"]))
    return listed


def _cluster_versions(store: ShardedStore) -> list[dict[str, Any]]:
    live = store.current()
    listed = []
    for version in store.versions():
        try:
            manifest = store.manifest(version)
            shards = [
                Store(store.home / e["path"]).manifest(e["generation"]) for e in manifest["shards"]
            ]
        except IndexCorruptError as exc:
            listed.append({"generation": version, "live": version == live, "error": str(exc)})
            continue
        counts = {
            key: sum(shard["counts"].get(key) or 0 for shard in shards)
            for key in ("documents", "passages", "encoded", "reused")
        }
        entry = _described(version, version == live, {**shards[0], **manifest}, counts)
        listed.append({**entry, "shards": [e["generation"] for e in manifest["shards"]]})
    return listed


def _described(
    number: int, live: bool, manifest: dict[str, Any], counts: dict[str, Any]
) -> dict[str, Any]:
    return {
        "generation": number,
        "live": live,
        "created": manifest["created"],
        "sources": manifest["sources"],
        "documents": counts["documents"],
        "passages": counts["passages"],
        "encoded": counts.get("encoded"),
        "reused": counts.get("reused"),
        "model": manifest["model"]["name"],
        "fingerprint": manifest["model"]["fingerprint"],
        "passage_settings": manifest["passages"],
        # Documents written live (HTTP, Python, `searchkit add`) and, for a delta generation,
        # the full generation it is searched over (its counts are the delta's own).
        "live_documents": live_record(manifest).get("documents", 0),
        "delta_of": live_record(manifest).get("base"),
    }


def rollback(index_dir: Path, generation: int | None = None) -> int:
    """Make an older generation live again (the newest before the live one by default).

    The target is verified first; it is published under the build lock, like a build.
    """
    if is_sharded(index_dir):
        return _rollback_sharded(ShardedStore(index_dir), generation)
    store = Store(index_dir)
    live = store.require_current()
    with store.build_lock():
        older = [n for n in store.numbers() if n < live]
        target = generation if generation is not None else (older[-1] if older else None)
        if target is None or target not in store.numbers():
            kept = ", ".join(str(n) for n in store.numbers())
            raise UserInputError(_no_target("generation", target, kept))
        problems = verify(index_dir, target)
        if problems:
            raise IndexCorruptError(f"generation {target} cannot go live: {problems[0]}")
        store.publish(target)
    return target


def _rollback_sharded(store: ShardedStore, version: int | None) -> int:
    """Point ``CLUSTER`` at an older cluster manifest whose shard generations are intact."""
    live = store.require_current()
    with Store(store.home).build_lock():  # the lock a distributed rebuild holds
        kept = store.versions()
        older = [n for n in kept if n < live]
        target = version if version is not None else (older[-1] if older else None)
        if target is None or target not in kept:
            listed = ", ".join(str(n) for n in kept)
            raise UserInputError(
                f"no cluster manifest {target} to roll back to (on disk: {listed})"
            )
        problems = verify(store.home, target)
        if problems:
            raise IndexCorruptError(f"cluster manifest {target} cannot go live: {problems[0]}")
        store.point_to(target)
    return target


def _no_target(kind: str, target: int | None, on_disk: str) -> str:
    if target is None:
        return f"there is no older {kind} to roll back to (on disk: {on_disk or 'none'})"
    return f"there is no {kind} {target} to roll back to (on disk: {on_disk or 'none'})"
