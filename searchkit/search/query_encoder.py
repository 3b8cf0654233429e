"""``IndexQueryEncoder``: an index's query encoder, loaded on first use, checked against the
model the index was built with, and shared by a server's threads (passes and a cache)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..choices import Mode
from ..config import Settings
from ..embed import Encoder, load_query_encoder
from ..embed.shared import SharedQueryEncoder
from .query_check import check_model

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray


class IndexQueryEncoder:
    """Turns query texts into vectors for one index (``built``: its manifest's model)."""

    def __init__(
        self, settings: Settings, built: dict[str, Any], home: Path, given: Encoder | None
    ) -> None:
        self._settings = settings
        self._built = built
        self._home = home
        self._encoder = given
        self._checked = False
        self._loading = threading.Lock()  # concurrent first queries load one model

    @property
    def encoder(self) -> Encoder:
        """The encoder, loaded on first use and checked against the index's model."""
        if self._encoder is None or not self._checked:
            with self._loading:
                if self._encoder is None or not self._checked:
                    self._load()
        assert self._encoder is not None
        return self._encoder

    def _load(self) -> None:
        encoder = self._encoder or load_query_encoder(
            self._settings.model_copy(update={"model": self._built["name"]})
        )
        check_model(encoder, self._built, self._home)
        # Threads of a server share passes and a cache of recent queries.
        self._encoder = SharedQueryEncoder.around(encoder, self._settings.query_cache)
        self._checked = True

    @property
    def loaded(self) -> Encoder | None:
        """The encoder if it was loaded already (to hand on to a newer engine)."""
        return self._encoder

    def vector(self, text: str, mode: Mode) -> NDArray[np.float32] | None:
        """The vector a query in ``mode`` searches ``text`` with (None for bm25)."""
        if mode == "bm25":
            return None
        vector: NDArray[np.float32] = self.encoder.encode([text])[0]
        return vector
