"""The on-disk contract: generations, manifest, ``CURRENT``, the build lock, atomic publish.

    index/
      CURRENT                  name of the live generation (replaced atomically)
      LOCK, LOCK.holder        build lock (an OS lock) and who holds it
      generations/g000012/     one complete, immutable index; manifest.json describes it

Readers open only the generation ``CURRENT`` names. Builds write a ``.partial`` directory,
rename it to its final name, and publish last by replacing ``CURRENT``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import (
    BuildLockedError,
    IndexCorruptError,
    IndexNotFoundError,
    NeedsClusterError,
    StorageError,
    UserInputError,
)
from .generation import MANIFEST, generation_name

SHARDED_POINTER = "CLUSTER"  # a sharded home's pointer (storage.sharded) instead of CURRENT

FORMAT_VERSION = 4  # 3: text analyzed by script (CJK, Cyrillic stems); 4: a language per index
TUNING = "fusion.json"
_GENERATION = re.compile(r"^g(\d{6,})$")
_PARTIAL_SUFFIX = ".partial"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, rename it over ``path``."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with temp.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        temp.replace(path)
        fsync_dir(path.parent)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise StorageError(f"cannot write {path.name}: {exc.strerror or exc}") from None


def fsync_tree(root: Path) -> None:
    """fsync every file and directory under ``root``, so a rename after it publishes whole data."""
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            fd = os.open(Path(dirpath) / name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(dirpath))


def sha256_file(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def file_inventory(root: Path) -> dict[str, dict[str, Any]]:
    """Size and sha256 of every file under ``root`` except the manifest, by relative path."""
    inventory = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel != MANIFEST:
            inventory[rel] = {"size": path.stat().st_size, "sha256": sha256_file(path)}
    return inventory


def read_pointer(path: Path, pattern: re.Pattern[str], names: str) -> int | None:
    """The number a pointer file (``CURRENT``, ``CLUSTER``) names, or None when it is absent."""
    try:
        name = path.read_text().strip()
    except FileNotFoundError:
        return None
    match = pattern.match(name)
    if match is None:
        raise IndexCorruptError(f"{path} names no {names} ({name!r})")
    return int(match.group(1))


# What searchkit itself keeps in an index home: the generations and their pointers and locks,
# live writes, rebuild jobs, tuning, a sharded home's parts, the evaluation and benchmark
# caches of the default home, and the note the repository's index/ folder carries.
OWN_ENTRIES = frozenset({
    "CURRENT", "LOCK", "LOCK.holder", "generations", "live", "jobs", TUNING, SHARDED_POINTER,
    "shards", "cluster", "eval-cache", "bench-data", "README.md",
    "lost+found",  # not searchkit's, but in the root of every ext4 volume an index may have
})  # fmt: skip


def has_index(home: Path | str) -> bool:
    """Whether ``home`` serves an index: a published generation, or a sharded index's manifest."""
    home = Path(home)
    return (home / SHARDED_POINTER).is_file() or Store(home).current() is not None


def is_sharded(home: Path | str) -> bool:
    return (Path(home) / SHARDED_POINTER).is_file()


class Store:
    """One index home directory."""

    def __init__(self, home: Path) -> None:
        self.home = Path(home)
        self.generations = self.home / "generations"

    def refuse_foreign_files(self) -> None:
        """Refuse a home that holds no index yet but files searchkit did not put there (an
        --index pointed at a documents folder, say): a first build writes into a new or empty
        folder, or one searchkit made, never among someone's own files. A sharded home is
        refused too: its shards are built on its cluster, never a generation beside them."""
        if is_sharded(self.home):
            raise NeedsClusterError(
                f"{self.home} is a sharded index: rebuild it on its cluster with "
                f"'searchkit rebuild --index {self.home} --ray-address ADDRESS'"
            )
        if not self.home.is_dir() or self.current() is not None or self.numbers():
            return
        foreign = sorted(
            entry.name
            for entry in self.home.iterdir()
            if entry.name not in OWN_ENTRIES and not entry.name.startswith(".")
        )
        if foreign:
            more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
            raise UserInputError(
                f"{self.home} is not a searchkit index and holds other files "
                f"({', '.join(foreign[:3])}{more}): give the index an empty or new folder"
            )

    # ----- reading -----------------------------------------------------------------------
    def current(self) -> int | None:
        """The live generation's number, or None when nothing was published yet."""
        return read_pointer(self.home / "CURRENT", _GENERATION, "generation")

    def require_current(self) -> int:
        number = self.current()
        if number is None:
            raise IndexNotFoundError(
                f"no index at {self.home}: build one with "
                f"'searchkit index PATH --index {self.home}'"
            )
        return number

    def path(self, number: int) -> Path:
        return self.generations / generation_name(number)

    def manifest(self, number: int, any_format: bool = False) -> dict[str, Any]:
        """A generation's manifest; one of another format version is refused unless
        ``any_format`` (enough to read its sources, say)."""
        path = self.path(number) / MANIFEST
        try:
            manifest: dict[str, Any] = json.loads(path.read_text())
        except FileNotFoundError:
            raise IndexCorruptError(
                f"generation {generation_name(number)} has no manifest; rebuild the index"
            ) from None
        except ValueError:
            raise IndexCorruptError(f"{path} is not valid JSON; rebuild the index") from None
        if manifest.get("format") != FORMAT_VERSION and not any_format:
            raise IndexCorruptError(
                f"generation {generation_name(number)} has format {manifest.get('format')}, "
                f"this searchkit reads format {FORMAT_VERSION}; run 'searchkit rebuild --index "
                f"{self.home}' to build it again"
            )
        return manifest

    def check_sizes(
        self, number: int, manifest: dict[str, Any], skip: Collection[str] = ()
    ) -> None:
        """Cheap open-time check: every file the manifest lists exists with its recorded size
        (but those under the parts named in ``skip``, which the caller does not open)."""
        root = self.path(number)
        for rel, entry in manifest["files"].items():
            if rel.split("/")[0] in skip:
                continue
            path = root / rel
            if not path.is_file():
                raise IndexCorruptError(f"{generation_name(number)}/{rel} is missing; rebuild")
            if path.stat().st_size != entry["size"]:
                raise IndexCorruptError(
                    f"{generation_name(number)}/{rel} has {path.stat().st_size} bytes, "
                    f"the manifest says {entry['size']}; rebuild the index"
                )

    def numbers(self) -> list[int]:
        """Numbers of all complete generation directories, ascending."""
        if not self.generations.is_dir():
            return []
        found = (_GENERATION.match(p.name) for p in self.generations.iterdir() if p.is_dir())
        return sorted(int(m.group(1)) for m in found if m)

    def read_tuning(self) -> dict[str, Any] | None:
        """The fusion settings ``searchkit tune`` stored for this index, if any."""
        try:
            tuning: dict[str, Any] = json.loads((self.home / TUNING).read_text())
        except FileNotFoundError:
            return None
        except ValueError:
            raise IndexCorruptError(
                f"{self.home / TUNING} is not valid JSON; delete it or run 'searchkit tune' again"
            ) from None
        return tuning

    def write_tuning(self, tuning: dict[str, Any]) -> None:
        """Replace the stored fusion settings atomically; queries opened after it use them."""
        self.home.mkdir(parents=True, exist_ok=True)
        atomic_write(self.home / TUNING, json.dumps(tuning, indent=2).encode())

    # ----- writing (only under the build lock) ---------------------------------------------
    @contextmanager
    def build_lock(self) -> Iterator[None]:
        """Hold the index's build lock, or fail at once naming who holds it."""
        from filelock import FileLock, Timeout  # here: queries never lock, and it imports asyncio

        self.home.mkdir(parents=True, exist_ok=True)
        lock = FileLock(self.home / "LOCK", timeout=0)
        holder = self.home / "LOCK.holder"
        try:
            lock.acquire()
        except Timeout:
            raise BuildLockedError(
                f"another build is running on {self.home} ({self._holder()}); wait for it to finish"
            ) from None
        try:
            holder.write_text(f"pid {os.getpid()} on {socket.gethostname()} since {time.ctime()}\n")
            yield
        finally:
            holder.unlink(missing_ok=True)
            lock.release()

    def forget_failed_first_build(self) -> None:
        """Under the build lock, after the first build of this home failed: remove the empty
        generations folder and the lock file (a build that starts next creates them again)."""
        with contextlib.suppress(OSError):
            self.generations.rmdir()  # only when empty
        (self.home / "LOCK").unlink(missing_ok=True)

    def lock_holder(self) -> str | None:
        """Who holds the build lock right now, or None when it is free."""
        if not (self.home / "LOCK").exists():
            return None
        from filelock import FileLock, Timeout

        lock = FileLock(self.home / "LOCK", timeout=0)
        try:
            lock.acquire()
        except Timeout:
            return self._holder()
        lock.release()
        return None

    def _holder(self) -> str:
        """Who the build lock's holder said it is."""
        holder = self.home / "LOCK.holder"
        return holder.read_text().strip() if holder.exists() else "another process"

    def start_generation(self) -> tuple[int, Path]:
        """A fresh ``.partial`` directory for the next generation number."""
        self.generations.mkdir(parents=True, exist_ok=True)
        self.remove_partials()
        number = max([*self.numbers(), self.current() or 0]) + 1
        partial = self.generations / (generation_name(number) + _PARTIAL_SUFFIX)
        partial.mkdir()
        return number, partial

    def finish_generation(self, number: int, partial: Path) -> Path:
        """fsync the partial directory and give it its final name (not yet live)."""
        fsync_tree(partial)
        final = self.path(number)
        partial.replace(final)
        fsync_dir(self.generations)
        return final

    def publish(self, number: int) -> None:
        """Make generation ``number`` live: the single atomic step of every build."""
        atomic_write(self.home / "CURRENT", (generation_name(number) + "\n").encode())

    def remove_partials(self) -> None:
        """Remove what dead builds left behind (call only under the build lock)."""
        if self.generations.is_dir():
            for path in self.generations.iterdir():
                if path.name.endswith(_PARTIAL_SUFFIX):
                    shutil.rmtree(path, ignore_errors=True)

    def prune(self, keep: int, pinned: Collection[int] = ()) -> list[int]:
        """Delete all but the newest ``keep`` generations; never the live or a pinned one."""
        live = self.current()
        removed = []
        for number in self.numbers()[:-keep] if keep > 0 else []:
            if number != live and number not in pinned:
                shutil.rmtree(self.path(number), ignore_errors=True)
                removed.append(number)
        return removed
