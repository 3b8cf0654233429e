"""``LiveEngine``: the engine for what an index home serves now. Servers swap to a new
generation (or cluster manifest) between requests, keeping the loaded model."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from ..config import Settings
from ..embed import Encoder
from ..errors import SearchkitError
from ..storage.sharded import live_version
from .engine import SearchEngine

log = logging.getLogger("searchkit")
Opener = Callable[[Encoder | None], SearchEngine]


class EngineSource(Protocol):
    """Hands each request the engine to answer it with, and the request's number."""

    def get(self) -> tuple[int, SearchEngine]: ...
    def in_hand(self) -> tuple[int, SearchEngine] | None: ...


class LiveEngine:
    """Hands out the engine for the version the home's pointer names, reopening when it changes.

    A request holds on to the engine it was given, so it answers from one version even if a
    newer one is published meanwhile; the swap happens for the next request. A version that
    fails to open is logged and skipped: the previous one keeps serving.
    """

    def __init__(self, index_dir: Path, settings: Settings, opener: Opener | None = None) -> None:
        self._home = Path(index_dir)
        self._open: Opener = opener or (
            lambda encoder: SearchEngine.open(self._home, settings, encoder)
        )
        self._lock = threading.Lock()
        self._engine = self._open(None)
        self._refused: int | None = None
        self._served = 0

    def get(self) -> tuple[int, SearchEngine]:
        """The engine to answer a request with, and the request's sequence number here.

        Numbers and engines are handed out together under a lock, so in the order of the
        numbers, the versions never go backwards.
        """
        current = live_version(self._home)
        with self._lock:  # one thread opens a new version; the others wait for it
            if self._due(current):
                self._swap(current)
            return self._hand_out()

    def in_hand(self) -> tuple[int, SearchEngine] | None:
        """What ``get`` gives, when that neither opens a version nor waits for another
        thread (None otherwise): for an event loop. It reads the pointer file, as ``get``
        does, a few microseconds."""
        current = live_version(self._home)
        if not self._lock.acquire(blocking=False):
            return None
        try:
            return None if self._due(current) else self._hand_out()
        finally:
            self._lock.release()

    def _due(self, version: int | None) -> bool:
        """Whether ``version`` is live and neither served nor refused yet."""
        return version not in (self._engine.generation, self._refused)

    def _hand_out(self) -> tuple[int, SearchEngine]:
        self._served += 1
        return self._served, self._engine

    def _swap(self, version: int | None) -> None:
        try:
            self._engine = self._open(self._engine.query_encoder.loaded)
        except SearchkitError as exc:
            # Keep answering from the version we have rather than failing requests.
            self._refused = version
            log.error("not serving version %s of %s: %s", version, self._home, exc)
