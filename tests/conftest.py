"""Shared fixtures: the real bundled model, a seeds index and a small fixture-corpus index.

The real model, tantivy and FAISS are used end to end; ``HashEncoder`` is a fake for the
pure-logic units that only need *some* deterministic vectors.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx
import numpy as np
import pytest

from searchkit import build_index
from searchkit.build.builder import load_encoder
from searchkit.config import Settings
from searchkit.embed import Encoder
from searchkit.ingest.passages import substring_counter
from searchkit.storage.sharded import ShardedStore, shard_of

# Exported ONNX models go to a cache of this test run, so every run exports (and so tests the
# export) once, and subprocesses see the same cache.
os.environ.setdefault("SEARCHKIT_MODEL_CACHE", tempfile.mkdtemp(prefix="searchkit-models-"))

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"

# Written so that one query has an exact-term hit and another only a paraphrase hit.
FIXTURE_DOCS = {
    "kitchen/bread.md": (
        "# Baking sourdough bread\n\n"
        "A sourdough starter is a culture of wild yeast and lactic acid bacteria kept alive by "
        "regular feeding with flour and water. Bakers use it instead of commercial yeast to "
        "leaven their loaves and give them a tangy flavour.\n\n"
        "Proof the shaped dough overnight in the refrigerator; the slow, cold fermentation "
        "develops flavour and makes the crust blister in a very hot oven."
    ),
    "garage/oil.txt": (
        "Keeping an engine healthy\n"
        "Replace the motor oil and the oil filter of your automobile every five thousand "
        "miles, or sooner when you tow heavy loads; old lubricant thickens, collects grit and "
        "wears the bearings of the engine."
    ),
    "garden/tomatoes.html": (
        "<html><head><title>Growing tomatoes</title><script>var x = 'hidden';</script></head>"
        "<body><h1>Growing tomatoes</h1><p>Tomato plants need at least six hours of direct sun, "
        "deep watering twice a week and a sturdy stake or cage as the fruit grows heavy. Pinch "
        "out the side shoots of cordon varieties.</p></body></html>"
    ),
    "space/mars.txt": (
        "Rovers on Mars\n"
        "The Perseverance rover landed in Jezero crater in February 2021 and collects rock "
        "cores that a later mission is meant to return to Earth for laboratory analysis."
    ),
}
EXACT_QUERY = "sourdough starter"  # words that appear verbatim in bread.md
PARAPHRASE_QUERY = "swap the grease in my car"  # oil.txt, in other words


# Fixtures that load the real model: a test that asks for one is marked ``slow``.
REAL_MODEL_FIXTURES = {"real_encoder", "seeds_index", "fixture_index"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if REAL_MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on at ``host`` right now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def wait_until_up(url: str, timeout: float = 120.0) -> None:
    """Wait until the searchkit service at ``url`` answers ``/healthz`` with 200."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{url} did not come up in {timeout:.0f} s"
        time.sleep(0.2)


class HashEncoder:
    """A fake encoder: unit-length bag-of-hashed-words vectors. For pure-logic tests only."""

    name = "hash-encoder"
    fingerprint = "fake0000"
    variant = "fp32"
    dimension = 64
    max_tokens = 254

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def span_counter(self, text: str) -> Callable[[int, int], int]:
        return substring_counter(text, self.count_tokens)

    def encode(
        self, texts: Sequence[str], on_batch: Callable[[int], None] | None = None
    ) -> np.ndarray:
        rows = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                rows[i, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dimension] += 1
            rows[i] /= max(float(np.linalg.norm(rows[i])), 1e-9)
        if on_batch is not None:
            on_batch(len(texts))
        return rows


def build_sharded(corpus: Path, home: Path, encoder: Encoder, shards: int = 2) -> ShardedStore:
    """``corpus`` as a sharded home of ``shards`` shards, built without Ray: each shard an
    ordinary build of the documents ``shard_of`` sends it, then one cluster manifest."""
    store = ShardedStore(home)
    for shard in range(shards):
        build_index(
            [corpus],
            store.shard_home(shard),
            encoder=encoder,
            allow_shrink=True,
            only=lambda document, shard=shard: shard_of(document.doc_id, shards) == shard,
        )
    model = {
        "name": encoder.name,
        "fingerprint": encoder.fingerprint,
        "dimension": encoder.dimension,
    }
    store.publish([store.shard_entry(s) for s in range(shards)], model, [str(corpus)])
    return store


def write_corpus(root: Path, docs: dict[str, str]) -> Path:
    for rel, text in docs.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def real_encoder() -> Encoder:
    return load_encoder(Settings())


@pytest.fixture(scope="session")
def seeds_index(tmp_path_factory: pytest.TempPathFactory, real_encoder: Encoder) -> Path:
    index = tmp_path_factory.mktemp("seeds") / "index"
    build_index([SEEDS], index, encoder=real_encoder)
    return index


@pytest.fixture(scope="session")
def fixture_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus") / "docs", FIXTURE_DOCS)


@pytest.fixture(scope="session")
def fixture_index(
    tmp_path_factory: pytest.TempPathFactory, fixture_corpus: Path, real_encoder: Encoder
) -> Path:
    index = tmp_path_factory.mktemp("fixture") / "index"
    build_index([fixture_corpus], index, encoder=real_encoder)
    return index


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A fresh, editable copy of the fixture corpus."""
    return write_corpus(tmp_path / "docs", FIXTURE_DOCS)


@pytest.fixture
def hash_encoder() -> HashEncoder:
    return HashEncoder()
