"""FAISS: inner-product indexes over unit vectors, keyed by passage id.

Small indexes are exact (``IndexFlatIP``). Past a size threshold they are inverted files (IVF):
k-means cuts the vectors into about sqrt(n) lists and a query scans the lists nearest to it,
over vectors stored as 16-bit floats (half the memory of float32). An HNSW graph, the other
approximate kind, is there to choose: it keeps recall a little higher, but takes 17 to 20
times as long to build and answers slower (benchmarks/RESULTS.md measures both). Every kind
sits in an ``IndexIDMap2`` so ids are passage ids whichever kind is inside.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import faiss
import numpy as np

from ..choices import VectorIndexChoice, VectorIndexKind
from ..config import default
from ..records import Ranked, ranked_list

if TYPE_CHECKING:
    from numpy.typing import NDArray

# A filter allowing at most this many passages is scored exactly (``VectorIndex.search``): at
# 200,000 passages, 50,000 allowed cost 11-20 ms through every list of an inverted file and
# 8.2-8.6 ms through a graph's stored vectors, where decoding those vectors one by one took
# 196-240 and 63 ms (/tmp/rss/filtered.py, a one-off script, three runs).
EXACT_FILTER_LIMIT = 50_000
# k-means for an inverted file learns from this many vectors a list (faiss asks for 39 at the
# least): at a million passages, 1,024 lists trained in 3.2 s on 2 cores (/tmp/rss/ivf1m.py).
TRAINING_PER_LIST = 64
MIN_TRAINING_PER_LIST = 39
# A query scans at least this many lists (all of them in a smaller file): few lists are coarse
# cells that a query's neighbours straddle. On 545 real sentences (13 lists), 2 lists found
# 0.71 of the exact top 10, 7 found 0.96 (/tmp/rss/readme_ivf.py, a one-off script).
MIN_PROBES = 16


@dataclass(frozen=True)
class IndexPlan:
    """Which index to build and how: ``auto`` resolves by size in ``choose_kind``."""

    kind: VectorIndexChoice = default("vector_index")  # noqa: RUF009 (a str, read once)
    exact_limit: int = default("exact_limit")
    hnsw_m: int = default("hnsw_m")
    ef_construction: int = default("hnsw_ef_construction")

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
    (the same vectors give the same index)."""
    index: Any = faiss.index_factory(
        vectors.shape[1], f"IVF{lists},SQfp16", faiss.METRIC_INNER_PRODUCT
    )
    ivf: Any = faiss.downcast_index(index)  # a view: ``index`` owns the C++ object
    ivf.cp.min_points_per_centroid = 1  # under 39 vectors, one list: faiss would warn
    if len(vectors):
        sample = min(len(vectors), lists * TRAINING_PER_LIST)
        rows = np.sort(np.random.default_rng(0).choice(len(vectors), sample, replace=False))
        ivf.train(np.ascontiguousarray(vectors[rows], dtype=np.float32))
    return index


class VectorIndex:
    """A read-only FAISS index loaded from a file."""

    def __init__(
        self,
        path: Path,
        ef_search: int = default("hnsw_ef_search"),
        probe_share: float = default("ivf_probe_share"),
    ) -> None:
        # Any: faiss's stubs know the base Index only, not IDMap2's, HNSW's or IVF's members.
        index: Any = faiss.read_index(str(path))
        inner: Any = faiss.downcast_index(index.index)
        self._index, self._inner = index, inner
        self._ef_search = ef_search
        self._kind: VectorIndexKind = "flat"
        if isinstance(inner, faiss.IndexHNSW):
            self._kind = "hnsw"
        elif isinstance(inner, faiss.IndexIVF):
            self._kind = "ivf"
        self._lists = int(inner.nlist) if self._kind == "ivf" else 0
        self._probes = min(self._lists, max(MIN_PROBES, math.ceil(self._lists * probe_share)))

    @property
    def count(self) -> int:
        return int(self._index.ntotal)

    @property
    def dimension(self) -> int:
        return int(self._index.d)

    @property
    def kind(self) -> VectorIndexKind:
        return self._kind

    @property
    def probes(self) -> int:
        """How many lists of an inverted file a query scans at first (0: not one)."""
        return self._probes

    def search(
        self, query: NDArray[np.float32], limit: int, allowed: NDArray[np.int64] | None = None
    ) -> list[Ranked]:
        """Nearest passages by inner product, among ``allowed`` ids when given; ties go to the
        lower passage id. A filter allowing few passages is exact on every kind: a graph walk
        that must skip most nodes loses recall, and so do the few lists a query scans."""
        limit = min(limit, self.count if allowed is None else len(allowed))
        if limit <= 0:
            return []
        vector = query.reshape(1, -1).astype(np.float32)
        exact = allowed is not None and len(allowed) <= EXACT_FILTER_LIMIT
        with _one_thread():
            if allowed is not None and exact and self._kind == "hnsw":
                scores, ids = self._exact_in_storage(vector, limit, allowed)
            else:
                scores, ids = self._search_one(vector, limit, allowed, every_list=exact)
        found = ids >= 0
        scores, ids = scores[found], ids[found]
        order = np.lexsort((ids, -scores))  # by score, then by the lower id
        return ranked_list(ids[order].tolist(), scores[order].tolist())

    def _search_one(
        self,
        vector: NDArray[np.float32],
        limit: int,
        allowed: NDArray[np.int64] | None,
        every_list: bool,
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """FAISS's answer for one query vector (an inverted file scanning all its lists when
        ``every_list``)."""
        probes = self._lists if every_list else self._probes
        while True:
            params = self._params(limit, allowed, probes)
            scores, ids = self._index.search(vector, limit, params=params)
            if self._kind != "ivf" or probes >= self._lists or ids[0, -1] >= 0:
                return scores[0], ids[0]
            # The lists scanned held fewer passages than asked for: a leg cut short would
            # read as one that matched no more (``relevance``), so scan twice as many.
            probes = min(self._lists, 2 * probes)

    def _params(self, limit: int, allowed: NDArray[np.int64] | None, probes: int) -> Any:
        """Search parameters, built with keywords: faiss keeps a selector alive only when its
        constructor is given it."""
        given: dict[str, Any] = {} if allowed is None else {"sel": faiss.IDSelectorBatch(allowed)}
        if self._kind == "hnsw":
            # The graph walk keeps efSearch candidates: fewer than the leg asks for would cut
            # the list short.
            given["efSearch"] = max(self._ef_search, limit)
        elif self._kind == "ivf":
            given["nprobe"] = probes
        return _PARAMETERS[self._kind](**given)

    def _exact_in_storage(
        self, vector: NDArray[np.float32], limit: int, allowed: NDArray[np.int64]
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """The allowed passages scored exactly against the graph's stored (16-bit) vectors:
        a scan of the storage that skips the others (``EXACT_FILTER_LIMIT`` has its cost)."""
        storage = faiss.downcast_index(self._inner.storage)
        selector = faiss.IDSelectorBatch(self._positions[allowed])
        scores, rows = storage.search(vector, limit, params=_PARAMETERS["flat"](sel=selector))
        found = rows[0] >= 0
        ids = np.full(len(rows[0]), -1, dtype=np.int64)
        ids[found] = self._ids[rows[0][found]]
        return scores[0], ids

    @cached_property
    def _ids(self) -> NDArray[np.int64]:
        """The passage id at each row of the stored vectors."""
        return faiss.vector_to_array(self._index.id_map)

    @cached_property
    def _positions(self) -> NDArray[np.int64]:
        """Row in the stored vectors of each passage id."""
        ids = self._ids
        positions = np.full(int(ids.max()) + 1 if len(ids) else 0, -1, dtype=np.int64)
        positions[ids] = np.arange(len(ids))
        return positions


# faiss's stubs know neither these constructors' keywords nor the HNSW parameters.
_PARAMETERS: dict[VectorIndexKind, Any] = {
    "flat": faiss.SearchParameters,
    "ivf": faiss.SearchParametersIVF,
    "hnsw": faiss.SearchParametersHNSW,  # type: ignore[attr-defined]
}


@contextmanager
def _one_thread() -> Iterator[None]:
    """FAISS on the calling thread alone. OpenMP would start a team of threads that only wait
    for each other (one query is not split), and a server searching on several threads at
    once spends its cores spinning in them: measured, hybrid requests over HTTP went from 166
    to 252 a second. The setting is the calling thread's own (libgomp keeps it per thread),
    and is put back."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)
