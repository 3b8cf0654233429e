"""The shared query encoder: answers in order, shared passes, no wait when idle, one bad
query fails alone, and a bounded cache keyed by the model's fingerprint."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import numpy as np
import pytest
from numpy.typing import NDArray

from searchkit.embed.shared import SharedQueryEncoder

DIMENSION = 8


class SlowEncoder:
    """Each text's vector is its hash spread over a few floats; a pass takes ``delay``."""

    name = "slow"
    variant = "fp32"
    dimension = DIMENSION
    max_tokens = 128

    def __init__(self, delay: float = 0.0, fingerprint: str = "f1") -> None:
        self.delay = delay
        self.fingerprint = fingerprint
        self.batches: list[list[str]] = []

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def span_counter(self, text: str) -> Callable[[int, int], int]:
        return lambda start, end: len(text[start:end].split())

    def encode(
        self, texts: Sequence[str], on_batch: Callable[[int], None] | None = None
    ) -> NDArray[np.float32]:
        self.batches.append(list(texts))
        time.sleep(self.delay)
        if "bad" in texts:
            raise ValueError("cannot encode 'bad'")
        return np.stack([expected(text) for text in texts])


def expected(text: str) -> NDArray[np.float32]:
    return np.random.default_rng(abs(hash(text)) % 2**32).random(DIMENSION, dtype=np.float32)


def _ask_together(shared: SharedQueryEncoder, texts: list[str]) -> dict[str, object]:
    answers: dict[str, object] = {}

    def ask(text: str) -> None:
        try:
            answers[text] = shared.encode([text])[0]
        except ValueError as exc:
            answers[text] = exc

    threads = [threading.Thread(target=ask, args=(text,)) for text in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_concurrent_queries_share_passes_and_each_gets_its_own_vector() -> None:
    inner = SlowEncoder(delay=0.05)
    shared = SharedQueryEncoder(inner)
    texts = [f"query {i}" for i in range(12)]
    answers = _ask_together(shared, texts)
    for text in texts:
        assert np.array_equal(answers[text], expected(text))  # type: ignore[arg-type]
    assert shared.passes < len(texts)  # those that came during a pass went in the next one
    assert sorted(t for batch in inner.batches for t in batch) == sorted(texts)


def test_a_query_that_finds_the_encoder_idle_starts_at_once() -> None:
    inner = SlowEncoder(delay=0.0)
    shared = SharedQueryEncoder(inner)
    started = time.perf_counter()
    shared.encode(["alone"])
    assert time.perf_counter() - started < 0.05  # no timer collects batch-mates first
    assert inner.batches == [["alone"]]


def test_one_bad_query_fails_alone() -> None:
    shared = SharedQueryEncoder(SlowEncoder(delay=0.05))
    answers = _ask_together(shared, ["first", "bad", "third", "fourth"])
    assert isinstance(answers["bad"], ValueError)
    for text in ("first", "third", "fourth"):
        assert np.array_equal(answers[text], expected(text))  # type: ignore[arg-type]


def test_the_cache_is_bounded_and_keyed_by_the_model() -> None:
    inner = SlowEncoder()
    shared = SharedQueryEncoder(inner, cache_size=2)
    for text in ("a", "b", "a"):
        shared.encode([text])
    assert inner.batches == [["a"], ["b"]]  # the repeat came from the cache
    shared.encode(["c"])  # evicts the least recent, "b"
    shared.encode(["b"])
    assert inner.batches[-1] == ["b"]
    inner.fingerprint = "f2"  # other weights: nothing cached applies
    shared.encode(["a"])
    assert inner.batches[-1] == ["a"]
    with pytest.raises(ValueError, match="read-only"):
        shared.encode(["a"])[0][0] = 1.0  # shared with other threads: never written


def test_a_cache_of_size_zero_keeps_nothing() -> None:
    inner = SlowEncoder()
    shared = SharedQueryEncoder(inner, cache_size=0)
    shared.encode(["a"])
    shared.encode(["a"])
    assert inner.batches == [["a"], ["a"]]


def test_several_texts_go_straight_through() -> None:
    inner = SlowEncoder()
    shared = SharedQueryEncoder(inner)
    shared.encode(["x", "y"])
    shared.encode(["x", "y"])
    assert inner.batches == [["x", "y"], ["x", "y"]] and shared.passes == 0
