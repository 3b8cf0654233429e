"""Embedding reuse across builds: the live generation's vectors, looked up by embedded text.

A passage whose embedded text (title prefix + passage) hashes the same as one in the live
generation, encoded by the same model, takes that stored vector instead of being encoded again.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import IndexCorruptError
from ..storage.catalog import Catalog
from ..storage.generation import CATALOG, EMBEDDINGS
from ..storage.store import FORMAT_VERSION, Store

log = logging.getLogger("searchkit")

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from ..embed import Encoder


# Formats whose catalog and embeddings a build reads as its own (3 changed only the analysis).
SAME_EMBEDDINGS = {2, FORMAT_VERSION}


class EmbeddingReuse:
    """Stored embeddings of the live generation, when ``encoder`` would compute the same ones:
    the same weights, size and precision (an fp32 index is not topped up with int8 vectors)."""

    def __init__(self, store: Store, encoder: Encoder) -> None:
        self.documents: dict[str, str] = {}
        self.model_changed = False
        self.live: int | None = None  # the live generation, with its manifest and catalog
        self.manifest: dict[str, Any] = {}
        self.catalog_fingerprint = ""
        self._rows: dict[str, int] = {}
        self._matrix: NDArray[np.float32] | None = None
        live = store.current()
        if live is None:
            return
        try:
            manifest = store.manifest(live, any_format=True)
        except IndexCorruptError as exc:  # a damaged generation
            log.warning("not reusing embeddings of the live generation: %s", exc)
            return
        if manifest.get("format") not in SAME_EMBEDDINGS:
            log.warning(
                "not reusing embeddings of the live generation: its format %s is too old",
                manifest.get("format"),
            )
            return
        root = store.path(live)
        catalog = Catalog(root / CATALOG)
        try:
            self.documents = catalog.document_hashes()
            self.live, self.manifest = live, manifest
            self.catalog_fingerprint = catalog.fingerprint()
            model = manifest["model"]
            built = (model["fingerprint"], model["dimension"], model.get("variant", "fp32"))
            if built != (encoder.fingerprint, encoder.dimension, encoder.variant):
                self.model_changed = True
                return
            self._rows = catalog.embedding_rows()
        finally:
            catalog.close()
        self._matrix = _load_matrix(root / EMBEDDINGS, encoder.dimension)

    def lookup(self, embed_hash: str) -> NDArray[np.float32] | None:
        """The stored vector for this embedded text, or None."""
        row = self._rows.get(embed_hash)
        if row is None or self._matrix is None:
            return None
        vector: NDArray[np.float32] = self._matrix[row]
        return vector

    def stored(self) -> dict[str, NDArray[np.float32]]:
        """Every reusable vector, by embedded-text hash."""
        if self._matrix is None:
            return {}
        return {digest: self._matrix[row] for digest, row in self._rows.items()}


def _load_matrix(path: Path, dimension: int) -> NDArray[np.float32]:
    # Memory-mapped: only the rows that are reused are ever read.
    return np.memmap(path, dtype=np.float32, mode="r").reshape(-1, dimension)
