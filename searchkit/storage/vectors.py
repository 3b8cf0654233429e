"""FAISS: inner-product indexes over unit vectors, keyed by passage id.

Small indexes are exact (``IndexFlatIP``). Past a size threshold they are inverted files (IVF):
k-means cuts the vectors into about sqrt(n) lists and a query scans the lists nearest to it,
over vectors stored as 16-bit floats (half the memory of float32). An HNSW graph, the other
approximate kind, is there to choose: it keeps recall a little higher, but takes 15 to 20
times as long to build and answers slower (benchmarks/RESULTS.md measures both). Every kind
sits in an ``IndexIDMap2`` so ids are passage ids whichever kind is inside.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import faiss
import numpy as np

from ..choices import VectorIndexChoice, VectorIndexKind
from ..records import Ranked, ranked_list

if TYPE_CHECKING:
    from numpy.typing import NDArray

# A filter allowing at most this many passages is scored exactly rather than through an
# approximate index: a graph walk that must skip most nodes loses recall, as do the few lists
# an inverted file scans, and this many dot products cost under a few milliseconds.
EXACT_FILTER_LIMIT = 50_000
# k-means for an inverted file learns from this many vectors a list (faiss asks for 39 at the
# least): at a million passages, 1,000 lists train in about 3 s on 2 cores.
TRAINING_PER_LIST = 64
MIN_TRAINING_PER_LIST = 39
# A query scans at least this many lists (all of them in a smaller file): few lists are coarse
# cells that a query's neighbours straddle. On 545 real sentences (13 lists), 2 lists found
# 0.71 of the exact top 10, 7 found 0.96.
MIN_PROBES = 16


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
        return "flat" if count <= self.exact_limit else "ivf"


def ivf_lists(count: int) -> int:
    """How many lists an inverted file over ``count`` vectors has: about sqrt(count), so that
    a list holds about as many vectors as there are lists, and never so many that k-means
    would have fewer than ``MIN_TRAINING_PER_LIST`` vectors for each."""
    return max(1, min(round(math.sqrt(count)), count // MIN_TRAINING_PER_LIST))


def describe(kind: VectorIndexKind, plan: IndexPlan, count: int) -> str:
    """The manifest's one-line description of a vector index over ``count`` vectors."""
    if kind == "hnsw":
        return f"faiss IndexIDMap2(IndexHNSWSQ fp16 M={plan.hnsw_m}, inner product)"
    if kind == "ivf":
        lists = ivf_lists(count)
        return f"faiss IndexIDMap2(IndexIVFScalarQuantizer fp16, {lists} lists, inner product)"
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
    kind = plan.choose_kind(len(ids))
    if kind == "hnsw":
        fp16: Any = faiss.ScalarQuantizer.QT_fp16  # the stubs type it as the class
        inner = faiss.IndexHNSWSQ(dimension, fp16, plan.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = plan.ef_construction
    elif kind == "ivf":
        inner = _trained_ivf(vectors, ivf_lists(len(ids)))
    else:
        inner = faiss.IndexFlatIP(dimension)
    index = faiss.IndexIDMap2(inner)
    if len(ids):
        index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
    return bytes(faiss.serialize_index(index))


def _trained_ivf(vectors: NDArray[np.float32], lists: int) -> Any:
    """An empty inverted file whose lists k-means learned from a seeded sample of ``vectors``
    (the same vectors give the same index), with a map from position to stored vector, which
    filtered searches score exactly."""
    index: Any = faiss.index_factory(
        vectors.shape[1], f"IVF{lists},SQfp16", faiss.METRIC_INNER_PRODUCT
    )
    ivf: Any = faiss.downcast_index(index)  # a view: ``index`` owns the C++ object
    ivf.cp.min_points_per_centroid = 1  # under 39 vectors, one list: faiss would warn
    if len(vectors):
        sample = min(len(vectors), lists * TRAINING_PER_LIST)
        rows = np.sort(np.random.default_rng(0).choice(len(vectors), sample, replace=False))
        ivf.train(np.ascontiguousarray(vectors[rows], dtype=np.float32))
    ivf.make_direct_map()
    return index


class VectorIndex:
    """A read-only FAISS index loaded from a file."""

    def __init__(self, path: Path, ef_search: int = 1600, probe_share: float = 0.25) -> None:
        # Any: faiss's stubs know the base Index only, not IDMap2's, HNSW's or IVF's members.
        index: Any = faiss.read_index(str(path))
        self._index = index
        self._inner: Any = faiss.downcast_index(index.index)
        self._ef_search = ef_search
        lists = int(self._inner.nlist) if isinstance(self._inner, faiss.IndexIVF) else 0
        self._probes = min(lists, max(MIN_PROBES, math.ceil(lists * probe_share)))

    @property
    def count(self) -> int:
        return int(self._index.ntotal)

    @property
    def dimension(self) -> int:
        return int(self._index.d)

    @property
    def kind(self) -> VectorIndexKind:
        if isinstance(self._inner, faiss.IndexHNSW):
            return "hnsw"
        return "ivf" if isinstance(self._inner, faiss.IndexIVF) else "flat"

    def search(
        self, query: NDArray[np.float32], limit: int, allowed: NDArray[np.int64] | None = None
    ) -> list[Ranked]:
        """Nearest passages by inner product, among ``allowed`` ids when given; ties go to the
        lower passage id."""
        limit = min(limit, self.count if allowed is None else len(allowed))
        if limit <= 0:
            return []
        vector = query.reshape(1, -1).astype(np.float32)
        if self.kind != "flat" and allowed is not None and len(allowed) <= EXACT_FILTER_LIMIT:
            scores, ids = self._exact_among(vector[0], allowed, limit)
        else:
            scores, ids = self._search_one(vector, limit, allowed)
        found = ids >= 0
        scores, ids = scores[found], ids[found]
        order = np.lexsort((ids, -scores))  # by score, then by the lower id
        return ranked_list(ids[order].tolist(), scores[order].tolist())

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
            probes = self._probes
            while True:
                params = self._params(limit, allowed, probes)
                scores, ids = self._index.search(vector, limit, params=params)
                if self.kind != "ivf" or probes >= self._inner.nlist or ids[0, -1] >= 0:
                    break
                # The lists scanned held fewer passages than asked for: a leg cut short would
                # read as one that matched no more (``relevance``), so scan twice as many.
                probes = min(int(self._inner.nlist), 2 * probes)
        finally:
            faiss.omp_set_num_threads(before)
        return scores[0], ids[0]

    def _params(self, limit: int, allowed: NDArray[np.int64] | None, probes: int) -> Any:
        params: Any
        if self.kind == "hnsw":
            params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]
            # The graph walk keeps efSearch candidates: fewer than the leg asks for would cut
            # the list short.
            params.efSearch = max(self._ef_search, limit)
        elif self.kind == "ivf":
            params = faiss.SearchParametersIVF()
            params.nprobe = probes
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
        stored = self._inner if self.kind == "ivf" else faiss.downcast_index(self._inner.storage)
        scores = stored.reconstruct_batch(positions) @ query
        top = np.argsort(-scores, kind="stable")[:limit]
        return scores[top], allowed[top]

    @cached_property
    def _positions(self) -> NDArray[np.int64]:
        """Row in the stored vectors of each passage id."""
        ids = faiss.vector_to_array(self._index.id_map)
        positions = np.full(int(ids.max()) + 1 if len(ids) else 0, -1, dtype=np.int64)
        positions[ids] = np.arange(len(ids))
        return positions
