"""Keep an index in sync with folders: rebuild, debounced, one rebuild at a time."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from watchfiles import watch

from ..config import Settings
from ..embed import load_encoder
from ..errors import SearchkitError
from ..ingest.documents import SUPPORTED_SUFFIXES
from ..records import BuildReport
from .builder import build_index

log = logging.getLogger("searchkit")
DEBOUNCE_MS = 1500


def watch_sources(
    paths: list[Path],
    index_dir: Path,
    settings: Settings,
    on_report: Callable[[BuildReport], None],
    *,
    stop: threading.Event | None = None,
    debounce_ms: int = DEBOUNCE_MS,
) -> None:
    """Build now, then rebuild after each burst of changes under ``paths`` until ``stop``.

    Builds run one after another in this thread, so there is never more than one at a time; a
    build that fails (say, another process holds the lock) is logged and retried on the next
    change. The model is loaded once for all of them.
    """
    encoder = load_encoder(settings)

    def rebuild() -> None:
        try:
            on_report(build_index(paths, index_dir, settings, encoder))
        except SearchkitError as exc:
            log.warning("rebuild failed: %s", exc)

    rebuild()
    for changes in watch(*paths, debounce=debounce_ms, stop_event=stop, raise_interrupt=False):
        if any(Path(changed).suffix.lower() in SUPPORTED_SUFFIXES for _, changed in changes):
            rebuild()
