"""``SharedQueryEncoder``: one query encoder for every thread of a server.

Concurrent queries share forward passes: while one pass runs, the queries that arrive wait
for it and then go through together in the next one, so a query waits at most for one pass
already under way (no timer: a query that finds the encoder idle starts at once). A query text
seen recently comes from a bounded cache, keyed by the model's fingerprint.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..config import default
from .model import Encoder

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

MAX_BATCH = 32  # queries in one forward pass
CACHE_SIZE: int = default("query_cache")  # query vectors kept (384 floats: 6 MB for MiniLM)


@dataclass
class _Request:
    text: str
    vector: NDArray[np.float32] | None = None
    error: BaseException | None = None
    done: bool = False


class SharedQueryEncoder:
    """An ``Encoder`` whose one-text calls (queries) are batched across threads and cached;
    calls with several texts (evaluation, explain's sentences) go straight through."""

    def __init__(
        self, inner: Encoder, *, max_batch: int = MAX_BATCH, cache_size: int = CACHE_SIZE
    ) -> None:
        self.inner = inner
        self._max_batch = max_batch
        self._cache_size = cache_size
        self._cache: OrderedDict[tuple[str, str], NDArray[np.float32]] = OrderedDict()
        self._queue: list[_Request] = []
        self._busy = False
        self._turn = threading.Condition()
        self.passes = 0  # forward passes run for queries (for tests and benchmarks)

    @classmethod
    def around(cls, encoder: Encoder, cache_size: int = CACHE_SIZE) -> SharedQueryEncoder:
        """``encoder`` shared, unless it is already."""
        if isinstance(encoder, SharedQueryEncoder):
            return encoder
        return cls(encoder, cache_size=cache_size)

    # The Encoder protocol, as the wrapped encoder answers it.
    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def fingerprint(self) -> str:
        return self.inner.fingerprint

    @property
    def variant(self) -> str:
        return self.inner.variant

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    @property
    def max_tokens(self) -> int:
        return self.inner.max_tokens

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def span_counter(self, text: str) -> Callable[[int, int], int]:
        return self.inner.span_counter(text)

    def encode(
        self, texts: Sequence[str], on_batch: Callable[[int], None] | None = None
    ) -> NDArray[np.float32]:
        if len(texts) != 1:
            return self.inner.encode(texts, on_batch)
        vector = self.encode_query(texts[0])
        return vector.reshape(1, -1)

    # Queries.
    def encode_query(self, text: str) -> NDArray[np.float32]:
        """The unit vector of one query: cached, or computed in the next shared pass."""
        key = (self.inner.fingerprint, text)
        with self._turn:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
            request = _Request(text)
            self._queue.append(request)
        while True:
            with self._turn:
                while not request.done and self._busy:
                    self._turn.wait()
                if request.done:
                    return _result(request)
                self._busy = True  # this thread runs the next pass, for everyone queued
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
            try:
                self._run(batch)
            finally:
                self._finish(batch)

    def _run(self, batch: list[_Request]) -> None:
        """One pass for ``batch``; if it fails, each text alone, so that only a text that
        fails itself gets an error."""
        self.passes += 1
        try:
            vectors = self.inner.encode([item.text for item in batch])
        except Exception as exc:
            if len(batch) == 1:
                batch[0].error = exc
                return
            for item in batch:
                _encode_alone(item, self.inner)
            return
        for item, vector in zip(batch, vectors, strict=True):
            vector.setflags(write=False)  # shared with the cache and other threads
            item.vector = vector

    def _finish(self, batch: list[_Request]) -> None:
        with self._turn:
            self._busy = False
            for item in batch:
                item.done = True
                if item.vector is not None:
                    self._remember((self.inner.fingerprint, item.text), item.vector)
                elif item.error is None:  # the pass was interrupted
                    item.error = RuntimeError("the query encoder was interrupted")
            self._turn.notify_all()

    def _remember(self, key: tuple[str, str], vector: NDArray[np.float32]) -> None:
        if self._cache_size == 0:
            return
        self._cache[key] = vector
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)


def _encode_alone(item: _Request, encoder: Encoder) -> None:
    """Encode ``item`` by itself, keeping its error, if any, for the thread that asked."""
    try:
        vector = encoder.encode([item.text])[0]
    except Exception as exc:
        item.error = exc
        return
    vector.setflags(write=False)
    item.vector = vector


def _result(request: _Request) -> NDArray[np.float32]:
    if request.error is not None:
        raise request.error
    assert request.vector is not None
    return request.vector
