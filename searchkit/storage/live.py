"""Documents written to an index directly (HTTP, Python, ``searchkit add``): a write-ahead
log, fsynced before a write is acknowledged, and the documents it holds.

``live/log`` holds one line per acknowledged batch: ``<length>:<crc32>:<json>``. A batch is
written whole or, after a crash mid-write, not at all: a torn last line fails its length or
checksum and is dropped (it was never acknowledged). ``live/documents.sqlite`` is what the log
says so far, folded in by builds (under the index's build lock): every live document with the
sequence number of the batch that last wrote it, deletions included, so that rebuilds and
compactions keep them and a deleted file stays deleted.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from .catalog import Catalog
from .generation import CATALOG
from .store import Store, atomic_write, fsync_dir

LIVE_DIR = "live"
_LOG = "log"
_DOCUMENTS = "documents.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    metadata TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_seq ON documents(seq);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class LiveDocument:
    doc_id: str
    seq: int
    title: str = ""
    text: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    deleted: bool = False


@dataclass(frozen=True)
class Batch:
    """One acknowledged write: upserts and deletes that become visible together."""

    seq: int
    upserts: list[dict[str, Any]]
    deletes: list[str]


class LiveStore:
    """The live documents of the index home ``home`` (created on the first write)."""

    # The log's file lock serializes processes; this one, shared by every home in the process
    # (writes are rare and short), serializes threads.
    _thread_lock = threading.Lock()

    def __init__(self, home: Path) -> None:
        self.root = Path(home) / LIVE_DIR
        self._log = self.root / _LOG
        self._end = 0  # where the last batch read from the log ends
        self._seq = 0  # the last acknowledged sequence number seen
        self._head = b""  # the log's first line: forget_through writes a new, unique one

    @staticmethod
    def exists(home: Path) -> bool:
        return (Path(home) / LIVE_DIR / _LOG).exists()

    # ----- the log (any process) --------------------------------------------------------
    def append(self, upserts: list[dict[str, Any]], deletes: list[str]) -> int:
        """Log one batch and fsync it; returns its sequence number, the acknowledgement."""
        with self._thread_lock, self._file_lock():
            self._scan()  # other processes may have written since
            seq = self._seq + 1
            line = _line({"seq": seq, "upserts": upserts, "deletes": deletes})
            with self._log.open("r+b") as log:
                log.truncate(self._end)  # a torn line left by a crash goes first
                log.seek(self._end)
                log.write(line)
                log.flush()
                os.fsync(log.fileno())
            self._end += len(line)
            self._seq = seq
            return seq

    def logged(self) -> int:
        """The last acknowledged sequence number."""
        if not self._log.exists():
            return 0
        with self._thread_lock:
            self._scan()
            return self._seq

    def batches(self, after: int) -> list[Batch]:
        """The whole batches logged after sequence number ``after`` (read under the log's
        lock: a line being written is never taken before it is fsynced)."""
        if not self._log.exists():
            return []
        with self._thread_lock, self._file_lock(), self._log.open("rb") as log:
            return [batch for batch, _ in _lines(log) if batch.seq > after]

    def forget_through(self, seq: int) -> None:
        """Drop the batches up to ``seq`` from the log once they are held elsewhere (the
        documents, or a sharded home's shards). A first line marks the cut: it carries the
        sequence number the next write follows, and a random token, so that every process
        sees that the log was replaced (``_scan``)."""
        with self._thread_lock, self._file_lock():
            with self._log.open("rb") as log:
                kept = [line for batch, line in _lines(log) if batch.seq > seq]
            mark = _line({"seq": seq, "upserts": [], "deletes": [], "mark": os.urandom(8).hex()})
            atomic_write(self._log, mark + b"".join(kept))

    def _scan(self) -> None:
        """Read what was logged since the last scan: from the start if the log was replaced
        (its first line changed), all through one open file."""
        with self._log.open("rb") as log:
            head = log.readline()
            if head != self._head:
                self._head, self._end, self._seq = head, 0, 0
            log.seek(self._end)
            for batch, line in _lines(log):
                self._end += len(line)
                self._seq = max(self._seq, batch.seq)

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        from filelock import FileLock

        if not self._log.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            self._log.touch()
            fsync_dir(self.root)
            fsync_dir(self.root.parent)
        with FileLock(self.root / "WRITE.lock"):
            yield

    # ----- the documents (under the index's build lock) ---------------------------------------
    def fold(self) -> int:
        """Apply the logged batches the documents do not hold yet; returns the last one's
        sequence number."""
        with self._documents() as db:
            applied = _applied(db)
            for batch in self.batches(applied):
                for record in batch.upserts:
                    db.execute(
                        "INSERT OR REPLACE INTO documents VALUES (?, ?, 0, ?, ?, ?)",
                        (record["id"], batch.seq, record.get("title", ""), record["text"],
                         json.dumps(record.get("metadata", {}))),
                    )  # fmt: skip
                for doc_id in batch.deletes:
                    db.execute(
                        "INSERT OR REPLACE INTO documents VALUES (?, ?, 1, '', '', '{}')",
                        (doc_id, batch.seq),
                    )
                applied = batch.seq
            db.execute("INSERT OR REPLACE INTO state VALUES ('applied', ?)", (applied,))
            return applied

    def documents(self, after: int = 0) -> list[LiveDocument]:
        """Live documents (and deletions) last written after sequence number ``after``."""
        if not (self.root / _DOCUMENTS).exists():
            return []
        with self._documents() as db:
            rows = db.execute(
                "SELECT doc_id, seq, title, text, metadata, deleted FROM documents "
                "WHERE seq > ? ORDER BY doc_id",
                (after,),
            ).fetchall()
        return [
            LiveDocument(row[0], row[1], row[2], row[3], json.loads(row[4]), bool(row[5]))
            for row in rows
        ]

    def count(self) -> int:
        """How many live documents there are (deletions not counted)."""
        if not (self.root / _DOCUMENTS).exists():
            return 0
        with self._documents() as db:
            return int(db.execute("SELECT count(*) FROM documents WHERE deleted = 0").fetchone()[0])

    @contextmanager
    def _documents(self) -> Iterator[sqlite3.Connection]:
        self.root.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.root / _DOCUMENTS, isolation_level=None)
        try:
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        finally:
            db.close()


def live_record(manifest: dict[str, Any]) -> dict[str, Any]:
    """A generation's "live" entry: the last batch it shows and, for a delta generation, its
    base and the base documents it hides ({} for a generation that shows no live write)."""
    record: dict[str, Any] = manifest.get("live") or {}
    return record


def shown_counts(home: Path, number: int) -> dict[str, int]:
    """The documents and passages a search of generation ``number`` of ``home`` sees: for a
    delta generation its own and its base's, less the base's hidden ones."""
    store = Store(home)
    manifest = store.manifest(number)
    counts = {key: int(manifest["counts"][key]) for key in ("documents", "passages")}
    record = live_record(manifest)
    if "base" not in record:
        return counts
    base = int(record["base"])
    catalog = Catalog(store.path(base) / CATALOG)
    try:
        hidden_documents = catalog.known_documents(set(record["hidden"]))
        hidden_passages = len(catalog.passages_of(record["hidden"]))
    finally:
        catalog.close()
    base_counts = store.manifest(base)["counts"]
    return {
        "documents": base_counts["documents"] - hidden_documents + counts["documents"],
        "passages": base_counts["passages"] - hidden_passages + counts["passages"],
    }


def _applied(db: sqlite3.Connection) -> int:
    row = db.execute("SELECT value FROM state WHERE key = 'applied'").fetchone()
    return int(row[0]) if row else 0


def _line(record: dict[str, Any]) -> bytes:
    data = json.dumps(record).encode()
    return f"{len(data)}:{zlib.crc32(data):08x}:".encode() + data + b"\n"


def _lines(log: BinaryIO) -> Iterator[tuple[Batch, bytes]]:
    """The whole lines of ``log`` from where it stands, up to a torn last one (a crash in the
    middle of a write, never acknowledged)."""
    for line in log:
        batch = _parse(line)
        if batch is None:
            return
        yield batch, line


def _parse(line: bytes) -> Batch | None:
    """A logged batch, or None for a line that is not whole (length or checksum wrong)."""
    try:
        length, crc, data = line.rstrip(b"\n").split(b":", 2)
        if not line.endswith(b"\n") or len(data) != int(length):
            return None
        if zlib.crc32(data) != int(crc, 16):
            return None
        record = json.loads(data)
    except ValueError:
        return None
    return Batch(int(record["seq"]), list(record["upserts"]), list(record["deletes"]))
