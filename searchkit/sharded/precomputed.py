"""Vectors computed elsewhere: the encoder a shard build uses to take the vectors that the Ray
Data stage computed, and a sharded index's stored vectors (to build one local index of the very
same vectors, to compare sharded answers with)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..build.reuse import EmbeddingReuse
from ..embed import Encoder
from ..errors import SearchkitError
from ..storage.catalog import content_hash
from ..storage.sharded import ShardedStore
from ..storage.store import Store

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray


class PrecomputedEncoder:
    """An encoder whose vectors were computed elsewhere (the Ray Data stage), by content hash;
    everything else (name, fingerprint, token counts) comes from the real model folder."""

    def __init__(self, inner: Encoder, vectors: dict[str, NDArray[np.float32]]) -> None:
        self._inner = inner
        self._vectors = vectors

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    @property
    def new_text_encoder(self) -> Encoder:
        """The model itself, for text no embedding stage saw (a build's self-check)."""
        return self._inner

    def encode(
        self, texts: Sequence[str], on_batch: Callable[[int], None] | None = None
    ) -> NDArray[np.float32]:
        import numpy as np

        try:
            rows = [self._vectors[content_hash(text)] for text in texts]
        except KeyError:
            raise SearchkitError(
                "a shard found a passage the embedding stage did not see; "
                "were the sources changed during the rebuild? Run it again."
            ) from None
        if on_batch is not None:
            on_batch(len(rows))
        if not rows:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack(rows).astype(np.float32)


def stored_vectors(home: Path | str, encoder: Encoder) -> dict[str, NDArray[np.float32]]:
    """The live sharded index's vectors by embedded-text hash: with ``PrecomputedEncoder``, a
    single local index of the very same vectors (to compare sharded answers with)."""
    cluster = ShardedStore(home)
    vectors: dict[str, NDArray[np.float32]] = {}
    for entry in cluster.manifest(cluster.require_current())["shards"]:
        store = Store(cluster.shard_home(entry["shard"]))
        vectors.update(EmbeddingReuse(store, encoder).stored())
    return vectors
