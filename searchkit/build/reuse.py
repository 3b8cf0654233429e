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
from ..storage.live import live_record
from ..storage.store import FORMAT_VERSION, Store

log = logging.getLogger("searchkit")

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from ..embed import Encoder


# Formats whose catalog and embeddings a build reads as its own (3 and 4 changed the analysis).
SAME_EMBEDDINGS = {2, 3, FORMAT_VERSION}


class EmbeddingReuse:
    """Stored embeddings of the live generation, when ``encoder`` would compute the same ones:
    the same weights, size and precision (an fp32 index is not topped up with int8 vectors)."""

    def __init__(self, store: Store, encoder: Encoder) -> None:
        self.documents: dict[str, str] = {}
        self.model_changed = False
        self.generation: int | None = None  # the live generation, with its manifest and catalog
        self.manifest: dict[str, Any] = {}
        self.catalog_fingerprint = ""
        self._layers: list[tuple[dict[str, int], NDArray[np.float32]]] = []
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
        self.generation, self.manifest = live, manifest
        model = manifest["model"]
        # Not the ONNX export's number: exports run the same model at the same precision and
        # differ by rounding (cosine 0.9943 to torch fp32 for either), not worth re-encoding.
        built = (model["fingerprint"], model["dimension"], model.get("variant", "fp32"))
        self.model_changed = built != (encoder.fingerprint, encoder.dimension, encoder.variant)
        record = live_record(manifest)
        # A delta generation shows its base too: both are read, the delta first.
        layers = [live] + ([int(record["base"])] if "base" in record else [])
        hidden = set(record.get("hidden", ()))
        for number in reversed(layers):
            catalog = Catalog(store.path(number) / CATALOG)
            try:
                documents = catalog.document_hashes()
                if number == live:
                    self.catalog_fingerprint = catalog.fingerprint()
                else:
                    documents = {d: h for d, h in documents.items() if d not in hidden}
                self.documents.update(documents)
                if not self.model_changed:
                    matrix = _load_matrix(store.path(number) / EMBEDDINGS, encoder.dimension)
                    self._layers.insert(0, (catalog.embedding_rows(), matrix))
            finally:
                catalog.close()

    def lookup(self, embed_hash: str) -> NDArray[np.float32] | None:
        """The stored vector for this embedded text, or None."""
        for rows, matrix in self._layers:
            row = rows.get(embed_hash)
            if row is not None:
                vector: NDArray[np.float32] = matrix[row]
                return vector
        return None

    def stored(self) -> dict[str, NDArray[np.float32]]:
        """Every reusable vector, by embedded-text hash."""
        return {
            digest: matrix[row]
            for rows, matrix in reversed(self._layers)
            for digest, row in rows.items()
        }


def _load_matrix(path: Path, dimension: int) -> NDArray[np.float32]:
    if path.stat().st_size == 0:  # a delta of deletions alone
        return np.zeros((0, dimension), dtype=np.float32)
    # Memory-mapped: only the rows that are reused are ever read.
    return np.memmap(path, dtype=np.float32, mode="r").reshape(-1, dimension)
