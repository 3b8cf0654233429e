"""FAISS: inner-product indexes over unit vectors, keyed by passage id."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import faiss
import numpy as np

from .records import Ranked

if TYPE_CHECKING:
    from numpy.typing import NDArray


def build_vector_index(vectors: NDArray[np.float32], ids: NDArray[np.int64]) -> bytes:
    """An exact inner-product index of ``vectors`` keyed by ``ids``, serialized to bytes.

    Bytes rather than ``faiss.write_index``: the caller publishes them atomically, because
    ``write_index`` truncates its target first and can destroy a good file on a full disk.
    """
    index = faiss.IndexIDMap2(faiss.IndexFlatIP(vectors.shape[1]))
    if len(ids):
        index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
    return bytes(faiss.serialize_index(index))


class VectorIndex:
    """A read-only FAISS index loaded from a file."""

    def __init__(self, path: Path) -> None:
        self._index = faiss.read_index(str(path))

    @property
    def count(self) -> int:
        return int(self._index.ntotal)

    @property
    def dimension(self) -> int:
        return int(self._index.d)

    def search(
        self, query: NDArray[np.float32], limit: int, allowed: NDArray[np.int64] | None = None
    ) -> list[Ranked]:
        """Nearest passages by inner product, among ``allowed`` ids when given; ties go to the
        lower passage id."""
        limit = min(limit, self.count if allowed is None else len(allowed))
        if limit <= 0:
            return []
        params = None
        if allowed is not None:
            params = faiss.SearchParameters()
            params.sel = faiss.IDSelectorBatch(allowed)
        vector = query.reshape(1, -1).astype(np.float32)
        scores, ids = self._index.search(vector, limit, params=params)
        pairs = sorted(
            ((float(s), int(i)) for s, i in zip(scores[0], ids[0], strict=True) if i >= 0),
            key=lambda pair: (-pair[0], pair[1]),
        )
        return [Ranked(pid, rank, score) for rank, (score, pid) in enumerate(pairs, start=1)]
