"""FAISS: inner-product indexes over unit vectors, keyed by passage id.

Small indexes are exact (``IndexFlatIP``); past a size threshold they are HNSW graphs over
vectors stored as 16-bit floats (half the memory of float32; at a million passages the graph,
not the rounding, is what costs recall), whose recall against exact search is measured in
benchmarks/RESULTS.md. Both sit in an ``IndexIDMap2`` so ids are passage ids whichever kind is
inside.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import faiss
import numpy as np

from ..choices import VectorIndexChoice, VectorIndexKind
from ..records import Ranked

if TYPE_CHECKING:
    from numpy.typing import NDArray

# A filter allowing at most this many passages is scored exactly rather than through the
# graph: a graph walk that must skip most nodes loses recall, and this many dot products cost
# under a few milliseconds.
EXACT_FILTER_LIMIT = 50_000


@dataclass(frozen=True)
class IndexPlan:
    """Which index to build and how: ``auto`` resolves by size in ``choose_kind``."""

    kind: VectorIndexChoice = "auto"
    exact_limit: int = 100_000
    hnsw_m: int = 16
    ef_construction: int = 80

    def choose_kind(self, count: int) -> VectorIndexKind:
        if self.kind != "auto":
            return self.kind
        return "flat" if count <= self.exact_limit else "hnsw"


def describe(kind: VectorIndexKind, plan: IndexPlan) -> str:
    """The manifest's one-line description of a vector index."""
    if kind == "hnsw":
        return f"faiss IndexIDMap2(IndexHNSWSQ fp16 M={plan.hnsw_m}, inner product)"
    return "faiss IndexIDMap2(IndexFlatIP)"


def build_vector_index(
    vectors: NDArray[np.float32], ids: NDArray[np.int64], plan: IndexPlan | None = None
) -> bytes:
    """An inner-product index of ``vectors`` keyed by ``ids``, serialized to bytes.

    Bytes rather than ``faiss.write_index``: the caller publishes them atomically, because
    ``write_index`` truncates its target first and can destroy a good file on a full disk.
    """
    plan = plan or IndexPlan()
    dimension = vectors.shape[1]
    inner: Any
    if plan.choose_kind(len(ids)) == "hnsw":
        fp16: Any = faiss.ScalarQuantizer.QT_fp16  # the stubs type it as the class
        inner = faiss.IndexHNSWSQ(dimension, fp16, plan.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = plan.ef_construction
    else:
        inner = faiss.IndexFlatIP(dimension)
    index = faiss.IndexIDMap2(inner)
    if len(ids):
        index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
    return bytes(faiss.serialize_index(index))


class VectorIndex:
    """A read-only FAISS index loaded from a file."""

    def __init__(self, path: Path, ef_search: int = 1600) -> None:
        # Any: faiss's stubs know the base Index only, not IDMap2's or HNSW's members.
        index: Any = faiss.read_index(str(path))
        self._index = index
        self._inner: Any = faiss.downcast_index(index.index)
        self._ef_search = ef_search

    @property
    def count(self) -> int:
        return int(self._index.ntotal)

    @property
    def dimension(self) -> int:
        return int(self._index.d)

    @property
    def kind(self) -> VectorIndexKind:
        return "hnsw" if isinstance(self._inner, faiss.IndexHNSW) else "flat"

    def search(
        self, query: NDArray[np.float32], limit: int, allowed: NDArray[np.int64] | None = None
    ) -> list[Ranked]:
        """Nearest passages by inner product, among ``allowed`` ids when given; ties go to the
        lower passage id."""
        limit = min(limit, self.count if allowed is None else len(allowed))
        if limit <= 0:
            return []
        vector = query.reshape(1, -1).astype(np.float32)
        if self.kind == "hnsw" and allowed is not None and len(allowed) <= EXACT_FILTER_LIMIT:
            scores, ids = self._exact_among(vector[0], allowed, limit)
        else:
            scores, ids = self._search_one(vector, limit, allowed)
        found = ids >= 0
        scores, ids = scores[found], ids[found]
        order = np.lexsort((ids, -scores))  # by score, then by the lower id
        pairs = zip(ids[order].tolist(), scores[order].tolist(), strict=True)
        return [Ranked(pid, rank, score) for rank, (pid, score) in enumerate(pairs, start=1)]

    def _search_one(
        self, vector: NDArray[np.float32], limit: int, allowed: NDArray[np.int64] | None
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """FAISS's answer for one query vector, on this thread alone. OpenMP would start a
        team of threads that only wait for each other (one query is not split), and a server
        searching on several threads at once spends its cores spinning in them: measured,
        hybrid requests over HTTP went from 166 to 252 a second. The setting is the calling
        thread's own (libgomp keeps it per thread), and is put back."""
        before = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            scores, ids = self._index.search(vector, limit, params=self._params(limit, allowed))
        finally:
            faiss.omp_set_num_threads(before)
        return scores[0], ids[0]

    def _params(self, limit: int, allowed: NDArray[np.int64] | None) -> Any:
        params: Any
        if self.kind == "hnsw":
            params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]
            # The graph walk keeps efSearch candidates: fewer than the leg asks for would cut
            # the list short.
            params.efSearch = max(self._ef_search, limit)
        else:
            params = faiss.SearchParameters()
        if allowed is not None:
            params.sel = faiss.IDSelectorBatch(allowed)
        return params

    def _exact_among(
        self, query: NDArray[np.float32], allowed: NDArray[np.int64], limit: int
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Exact inner products with the allowed passages' stored vectors."""
        positions = self._positions[allowed]
        scores = faiss.downcast_index(self._inner.storage).reconstruct_batch(positions) @ query
        top = np.argsort(-scores, kind="stable")[:limit]
        return scores[top], allowed[top]

    @cached_property
    def _positions(self) -> NDArray[np.int64]:
        """Row in the stored vectors of each passage id."""
        ids = faiss.vector_to_array(self._index.id_map)
        positions = np.full(int(ids.max()) + 1 if len(ids) else 0, -1, dtype=np.int64)
        positions[ids] = np.arange(len(ids))
        return positions
