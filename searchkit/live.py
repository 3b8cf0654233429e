"""A ``SearchEngine`` that follows ``CURRENT``: servers swap to a new generation between
requests, keeping the loaded model."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Protocol

from .config import Settings
from .engine import SearchEngine
from .errors import SearchkitError
from .fusion import FusionOptions
from .records import Mode, SearchResult
from .store import Store

log = logging.getLogger("searchkit")


class Searcher(Protocol):
    """What the HTTP layer asks of an index: a local ``SearchEngine`` or a sharded one."""

    @property
    def generation(self) -> int: ...
    @property
    def fusion(self) -> FusionOptions: ...
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
    ) -> SearchResult: ...
    def document(self, doc_id: str) -> dict[str, Any] | None: ...
    def info(self) -> dict[str, Any]: ...


class EngineSource(Protocol):
    """Hands each request the searcher to answer it with, and the request's number."""

    def get(self) -> tuple[int, Searcher]: ...


class LiveEngine:
    """Hands out the engine for the generation ``CURRENT`` names, reopening when it changes.

    A request holds on to the engine it was given, so it answers from one generation even if
    a newer one is published meanwhile; the swap happens for the next request.
    """

    def __init__(self, index_dir: Path, settings: Settings) -> None:
        self._store = Store(index_dir)
        self._settings = settings
        self._lock = threading.Lock()
        self._engine = SearchEngine.open(index_dir, settings)
        self._refused: int | None = None
        self._served = 0

    def get(self) -> tuple[int, SearchEngine]:
        """The engine to answer a request with, and the request's sequence number here.

        Numbers and engines are handed out together under a lock, so in the order of the
        numbers, the generations never go backwards.
        """
        current = self._store.current()
        with self._lock:  # one thread opens a new generation; the others wait for it
            if current not in (self._engine.generation, self._refused):
                self._swap(current)
            self._served += 1
            return self._served, self._engine

    def _swap(self, generation: int | None) -> None:
        try:
            self._engine = SearchEngine.open(
                self._store.home, self._settings, self._engine.loaded_encoder
            )
        except SearchkitError as exc:
            # Keep answering from the generation we have rather than failing requests.
            self._refused = generation
            log.error("not serving generation %s: %s", generation, exc)
