"""Batching for the encoders: texts grouped by length, padded, and run on worker threads."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

# Padded tokens per forward pass: batches long enough to keep both cores busy, short enough
# that one long text does not pad many short ones.
BATCH_TOKENS = 4096
MAX_BATCH = 128


def length_buckets(
    lengths: Sequence[int],
    batch_tokens: int,
    max_batch: int,
    tiebreak: Sequence[str] | None = None,
) -> Iterator[list[int]]:
    """Indexes grouped by similar length, each group within ``batch_tokens`` once padded.

    With ``tiebreak`` (the texts), the groups depend on the set of texts, not their order: a
    build split over machines forms the same batches as one machine, and int8 encodings, whose
    activation scales are per batch, come out the same.
    """
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], tiebreak[i] if tiebreak else ""))
    batch: list[int] = []
    for index in order:
        padded = lengths[index] * (len(batch) + 1)  # sorted, so this one is the longest
        if batch and (padded > batch_tokens or len(batch) == max_batch):
            yield batch
            batch = []
        batch.append(index)
    if batch:
        yield batch


def pad_rows(rows: list[list[int]], width: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    import numpy as np

    ids = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for r, row in enumerate(rows):
        ids[r, : len(row)] = row
        mask[r, : len(row)] = 1
    return ids, mask


def run_batches(
    function: Callable[[list[int]], NDArray[np.float32]], batches: list[list[int]], workers: int
) -> Iterator[NDArray[np.float32]]:
    """``function`` over ``batches`` in order, on ``workers`` threads when more than one."""
    if workers <= 1:
        yield from map(function, batches)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers, thread_name_prefix="searchkit-encode") as pool:
        yield from pool.map(function, batches)
