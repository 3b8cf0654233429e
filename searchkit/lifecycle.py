"""Index lifecycle: verify a generation, list generations, roll back to an older one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .catalog import Catalog
from .errors import IndexCorruptError, UserInputError
from .lexical import LexicalIndex
from .store import Store, generation_name, sha256_file
from .vectors import VectorIndex


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a generation, and what to do about it."""

    file: str
    detail: str
    fix: str

    def __str__(self) -> str:
        return f"{self.file}: {self.detail} ({self.fix})"


REBUILD = "run 'searchkit rebuild --full', or 'searchkit rollback' to an older generation"


def verify(index_dir: Path, generation: int | None = None, deep: bool = False) -> list[Problem]:
    """Problems of a generation (the live one by default): files and sizes against the manifest,
    counts of tantivy, FAISS and the catalog, and with ``deep`` every file's sha256."""
    store = Store(index_dir)
    number = store.require_current() if generation is None else generation
    name = generation_name(number)
    try:
        manifest = store.manifest(number)
    except IndexCorruptError as exc:
        return [Problem(f"{name}/manifest.json", str(exc), REBUILD)]
    root = store.path(number)
    problems = _file_problems(root, name, manifest["files"], deep)
    if not problems:
        problems += _count_problems(root, name, manifest["counts"]["passages"])
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
    catalog = Catalog(root / "passages.sqlite")
    try:
        counts = {
            "lexical/": LexicalIndex(root / "lexical").count,
            "vectors.faiss": VectorIndex(root / "vectors.faiss").count,
            "passages.sqlite": catalog.counts()[1],
        }
    except Exception as exc:  # a damaged file can fail in any of three libraries
        return [Problem(name, f"cannot be opened ({type(exc).__name__}: {exc})", REBUILD)]
    finally:
        catalog.close()
    return [
        Problem(f"{name}/{part}", f"holds {count} passages, the manifest says {expected}", REBUILD)
        for part, count in counts.items()
        if count != expected
    ]


def generations(index_dir: Path) -> list[dict[str, Any]]:
    """Every generation on disk with its provenance, oldest first."""
    store = Store(index_dir)
    live = store.current()
    listed = []
    for number in store.numbers():
        try:
            manifest = store.manifest(number)
        except IndexCorruptError as exc:
            listed.append({"generation": number, "live": number == live, "error": str(exc)})
            continue
        listed.append(
            {
                "generation": number,
                "live": number == live,
                "created": manifest["created"],
                "sources": manifest["sources"],
                "documents": manifest["counts"]["documents"],
                "passages": manifest["counts"]["passages"],
                "encoded": manifest["counts"].get("encoded"),
                "reused": manifest["counts"].get("reused"),
                "model": manifest["model"]["name"],
                "fingerprint": manifest["model"]["fingerprint"],
                "passage_settings": manifest["passages"],
            }
        )
    return listed


def rollback(index_dir: Path, generation: int | None = None) -> int:
    """Make an older generation live again (the newest before the live one by default).

    The target is verified first; it is published under the build lock, like a build.
    """
    store = Store(index_dir)
    live = store.require_current()
    with store.build_lock():
        older = [n for n in store.numbers() if n < live]
        target = generation if generation is not None else (older[-1] if older else None)
        if target is None or target not in store.numbers():
            kept = ", ".join(str(n) for n in store.numbers())
            raise UserInputError(f"no generation {target} to roll back to (on disk: {kept})")
        problems = verify(index_dir, target)
        if problems:
            raise IndexCorruptError(f"generation {target} cannot go live: {problems[0]}")
        store.publish(target)
    return target
