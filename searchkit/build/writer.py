"""``IndexWriter``: documents written to an index directly, the one behaviour behind the HTTP
document routes, ``searchkit add`` / ``delete`` and the Python API.

A write is acknowledged once its batch is in the index's write-ahead log and fsynced
(``storage.live``): it survives ``kill -9`` and a power cut. It becomes searchable, all at
once, at the next refresh: a delta generation of the documents written since the live full
generation, published as every generation is (one atomic ``CURRENT``). ``flush`` refreshes
now; a server refreshes so that writes show within ``refresh_interval``. When a delta grows past
``compact_documents`` the refresh, once the delta is published, compacts: a full build of the
sources and every live document, reusing all stored vectors. Writes never wait for refreshes or
builds.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import unicodedata
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..config import Settings
from ..embed import Encoder, load_encoder
from ..errors import BuildLockedError, SearchkitError, UserInputError
from ..records import BuildReport
from ..storage.live import LiveStore, live_record
from ..storage.sharded import ShardedStore
from ..storage.store import Store, is_sharded
from .builder import build_index, live_sources
from .sharded_writes import refresh_sharded, shown

log = logging.getLogger("searchkit")

MAX_ID_CHARS = 512
COMPACTION_RETRY_SECONDS = 60.0
WAIT_SECONDS = 600.0  # wait_visible gives up after this long (a bulk load encodes first)
FIELDS = {"id", "title", "text", "metadata"}


class IndexWriter:
    """Writes documents to the index home ``index_dir``; safe to share between threads and
    processes (the log is locked per write)."""

    def __init__(
        self,
        index_dir: Path | str,
        settings: Settings | None = None,
        encoder: Encoder | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.home = Path(index_dir)
        self.encoder = encoder
        self._log = LiveStore(self.home)
        self._refreshing = threading.Lock()
        self._compact_after = 0.0  # after a failed compaction, refreshes wait to retry it
        self._home_checked = False  # once a write was logged here, the folder is the index's

    # ----- writes: acknowledged when logged --------------------------------------------------
    def upsert(self, documents: Iterable[Mapping[str, Any]]) -> int:
        """Add or replace documents (``id``, ``text``, optional ``title`` and flat
        ``metadata``) as one batch; returns its sequence number once it is durable."""
        batch = [checked_document(document, self.settings) for document in documents]
        if not batch:
            raise UserInputError("no documents to write")
        self._refuse_foreign_files()
        return self._log.append(batch, [])

    def delete(self, ids: Iterable[str]) -> int:
        """Delete documents by id as one batch (ids the index lacks are no error)."""
        batch = [checked_id(doc_id) for doc_id in ids]
        if not batch:
            raise UserInputError("no document ids to delete")
        self._refuse_foreign_files()
        return self._log.append([], batch)

    def _refuse_foreign_files(self) -> None:
        """The first write to a new index starts its log: not in a folder of other files.
        Checked once per writer, not on every write of a server's stream of them."""
        if not self._home_checked and not is_sharded(self.home):
            Store(self.home).refuse_foreign_files()
        self._home_checked = True

    def logged(self) -> int:
        """The sequence number of the last acknowledged write."""
        return self._log.logged()

    # ----- visibility ------------------------------------------------------------------------
    def visible(self) -> int:
        """The sequence number of the last write that searches see now."""
        return self.visible_generation()[0]

    def visible_generation(self) -> tuple[int, int]:
        """The last write that searches see now, and the generation (on a sharded home, the
        cluster manifest) that shows it."""
        if is_sharded(self.home):
            return shown(self.home)
        store = Store(self.home)
        current = store.current()
        if current is None:
            return 0, 0
        record = live_record(store.manifest(current, any_format=True))
        return int(record.get("seq", 0)), current

    def flush(self) -> BuildReport | None:
        """Make every acknowledged write searchable now (None: they all are already).
        Raises ``BuildLockedError`` while another process builds (``wait_visible`` waits)."""
        with self._refreshing:  # one refresh per process at a time; the build lock does the rest
            return self._refresh()

    def wait_visible(self, seq: int, timeout: float = WAIT_SECONDS) -> int | None:
        """Refresh until write ``seq`` is searchable, waiting out another thread's refresh or
        another process's build; the generation that shows it, or None after ``timeout``
        seconds (the write stays durable and shows at a later refresh)."""
        deadline = time.monotonic() + timeout
        while True:
            shown, generation = self.visible_generation()
            if shown >= seq:
                return generation
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if self._refreshing.acquire(timeout=min(0.1, remaining)):
                try:
                    self._refresh()
                except BuildLockedError:  # a refresh or a build elsewhere will show it
                    time.sleep(0.02)
                except SearchkitError as exc:
                    # A compaction after the delta failed (a source gone, say): the write is
                    # searchable in the delta, which is what the writer waits for.
                    shown, generation = self.visible_generation()
                    if shown < seq:
                        raise
                    log.warning("compaction failed; the delta serves: %s", exc)
                    return generation
                finally:
                    self._refreshing.release()

    def _refresh(self) -> BuildReport | None:
        """A refresh, under ``_refreshing``: a delta, a compaction past ``compact_documents``,
        or on a sharded home the shards' refreshes and one cluster manifest."""
        if self.visible() >= self.logged():
            return None
        if is_sharded(self.home):
            version = refresh_sharded(self.home, self.settings, self._encoder())
            return None if version is None else self._sharded_report(version)
        if Store(self.home).current() is None:  # the first documents of a new index
            return self._build(full=True)
        report = self._build(full=False)
        due = self._delta_documents() > self.settings.compact_documents
        if report.published and due and time.monotonic() >= self._compact_after:
            try:
                return self.compact()
            except BuildLockedError:  # a build elsewhere: the next refresh tries again
                return report
            except SearchkitError:  # a source gone, say: the delta serves; try again later
                self._compact_after = time.monotonic() + COMPACTION_RETRY_SECONDS
                raise
        return report

    def compact(self) -> BuildReport:
        """Fold the delta into a full generation: the sources and every live document. A
        sharded home is refused: each shard compacts when its refresh finds its delta large."""
        if is_sharded(self.home):
            raise UserInputError(
                f"{self.home} is a sharded index: its shards compact themselves when a refresh "
                "finds their delta large"
            )
        return self._build(full=True)

    def _encoder(self) -> Encoder:
        if self.encoder is None:  # loaded once: a refresh a second must not load a model
            self.encoder = load_encoder(self.settings)
        return self.encoder

    def _sharded_report(self, version: int) -> BuildReport:
        counts = ShardedStore(self.home).manifest(version)["counts"]
        return BuildReport(
            version, counts["documents"], counts["passages"], 0, 0, 0, 0, 0, False, [], 0, {}
        )

    def _build(self, *, full: bool) -> BuildReport:
        sources = live_sources(self.home) if Store(self.home).current() is not None else []
        return build_index(
            sources,
            self.home,
            self.settings,
            self._encoder(),
            # The shrink guard stays: deletions already count in the live view it compares with,
            # so only files gone missing (an emptied or unmounted source) trip it.
            delta=not full,
        )

    def _delta_documents(self) -> int:
        store = Store(self.home)
        manifest = store.manifest(store.require_current())
        return len(live_record(manifest).get("hidden", ()))  # written or deleted since the base


def checked_document(document: Mapping[str, Any], limits: Settings) -> dict[str, Any]:
    """A document to write, refused with a message naming what is wrong."""
    if not isinstance(document, Mapping):
        raise UserInputError("a document is a JSON object with id, text, title and metadata")
    unknown = set(document) - FIELDS - {"_id"}
    if unknown:
        raise UserInputError(
            f"unknown document field {sorted(unknown)[0]!r} (allowed: {', '.join(sorted(FIELDS))})"
        )
    doc_id = checked_id(document.get("id", document.get("_id")))
    text, title = document.get("text"), document.get("title", "")
    if not isinstance(text, str) or not text.strip():
        raise UserInputError(f"document {doc_id!r} has no text")
    if not isinstance(title, str):
        raise UserInputError(f"document {doc_id!r}: the title must be a string")
    size = len(text.encode()) + len(title.encode())
    if size > limits.max_document_bytes:
        raise UserInputError(
            f"document {doc_id!r} is {size} bytes; the limit is {limits.max_document_bytes}"
        )
    return {"id": doc_id, "title": title, "text": text, "metadata": _metadata(doc_id, document)}


def checked_id(doc_id: object) -> str:
    if not isinstance(doc_id, str) or not doc_id.strip():
        raise UserInputError("a document needs an id: a non-empty string")
    if len(doc_id) > MAX_ID_CHARS:
        raise UserInputError(f"document id longer than {MAX_ID_CHARS} characters")
    if any(unicodedata.category(char).startswith("C") for char in doc_id):
        raise UserInputError(f"document id {doc_id!r} holds control characters")
    return doc_id


def _metadata(doc_id: str, document: Mapping[str, Any]) -> dict[str, Any]:
    metadata = document.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        raise UserInputError(f"document {doc_id!r}: metadata must be an object")
    for key, value in metadata.items():
        flat = isinstance(value, str | bool | int) or (
            isinstance(value, float) and math.isfinite(value)
        )
        if not flat:
            raise UserInputError(
                f"document {doc_id!r}: metadata {key!r} must be a string, number or boolean"
            )
    return dict(metadata)
