"""The torch backend, in fp32 or bf16.

A model that is a transformer plus pooling (most sentence-transformers models, the bundled one
included) runs as a plain ``transformers`` model with searchkit's length buckets and pooling,
which skips sentence-transformers' per-batch overhead; any other module stack runs through
sentence-transformers itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ModelLoadError
from .model import ModelFolder, offline

if TYPE_CHECKING:
    from numpy.typing import NDArray


class SentenceTransformerEncoder(ModelFolder):
    """A sentence-transformers model on torch, loaded lazily from a local folder.

    ``precision="bf16"`` casts the weights to bf16: on CPUs with AMX (and on GPUs) builds run
    3x faster than in fp32 here (benchmarks/RESULTS.md), with vectors within 1e-3 cosine of
    fp32's (tests/test_encoders.py).
    """

    def __init__(
        self,
        spec: str,
        device: str = "cpu",
        batch_size: int = 32,
        precision: str = "fp32",
        threads: int | None = None,
    ) -> None:
        super().__init__(spec)
        if precision not in {"fp32", "bf16"}:
            raise ModelLoadError(f"the torch backend runs fp32 or bf16, not {precision!r}")
        self._device = device
        self._batch_size = batch_size
        self._precision = precision
        self._threads = threads

    @property
    def variant(self) -> str:
        return self._precision

    @cached_property
    def dimension(self) -> int:
        if self._plain_stack:
            return int(self.pooling["word_embedding_dimension"])
        model = self._sentence_transformer
        # Renamed in sentence-transformers 6; keep working with 5.x.
        get_dimension = (
            getattr(model, "get_embedding_dimension", None)
            or model.get_sentence_embedding_dimension
        )
        dimension = get_dimension()
        if dimension is None:
            raise ModelLoadError(f"model {self.name!r} does not report its embedding size")
        return int(dimension)

    def encode(
        self, texts: Sequence[str], on_batch: Callable[[int], None] | None = None
    ) -> NDArray[np.float32]:
        """Unit-length float32 embeddings, one row per text, in input order."""
        import torch

        cores = self._threads or torch.get_num_threads()
        if not self._plain_stack:
            with _torch_threads(cores):
                return self._encode_with_sentence_transformers(texts, on_batch)
        if self._device != "cpu" or cores == 1:
            with _torch_threads(cores):
                return self.encode_in_buckets(texts, self._forward, on_batch)
        # For a model this small, whole batches side by side, one core each, outrun every
        # matrix product split across the cores (README, "Design notes").
        with _torch_threads(1):
            return self.encode_in_buckets(texts, self._forward, on_batch, workers=cores)

    @cached_property
    def _plain_stack(self) -> bool:
        """Whether the model is a transformer plus pooling, which searchkit runs itself."""
        try:
            self.pooling  # noqa: B018 (reading it checks the module stack)
        except ModelLoadError:
            return False
        return True

    def _forward(self, ids: NDArray[np.int64], mask: NDArray[np.int64]) -> NDArray[np.float32]:
        import torch

        model = self._transformer
        with torch.inference_mode():
            out = model(
                input_ids=torch.from_numpy(ids).to(self._device),
                attention_mask=torch.from_numpy(mask).to(self._device),
            )
        hidden: NDArray[np.float32] = out.last_hidden_state.float().cpu().numpy()
        return hidden

    @cached_property
    def _transformer(self) -> Any:
        offline()
        import torch
        from transformers import AutoModel

        dtype = torch.bfloat16 if self._precision == "bf16" else torch.float32
        try:
            model = AutoModel.from_pretrained(str(self.folder), local_files_only=True, dtype=dtype)
        except Exception as exc:
            raise ModelLoadError(
                f"cannot load model {self.name!r} from {self.folder}: {exc}"
            ) from None
        return model.to(self._device).eval()

    def _encode_with_sentence_transformers(
        self, texts: Sequence[str], on_batch: Callable[[int], None] | None
    ) -> NDArray[np.float32]:
        model = self._sentence_transformer
        rows = np.zeros((len(texts), self.dimension), dtype=np.float32)
        # Encoding texts of similar length together wastes less padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        step = self._batch_size * 4
        for begin in range(0, len(order), step):
            chunk = order[begin : begin + step]
            vectors = model.encode(
                [texts[i] for i in chunk],
                batch_size=self._batch_size,
                convert_to_numpy=True,
                show_progress_bar=False,
            ).astype(np.float32)
            # Normalized here, in fp32: bf16 outputs are not quite unit length.
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
            rows[chunk] = vectors
            if on_batch is not None:
                on_batch(len(chunk))
        return rows

    @cached_property
    def _sentence_transformer(self) -> Any:
        offline()
        from sentence_transformers import SentenceTransformer

        try:
            model = SentenceTransformer(
                str(self.folder), device=self._device, local_files_only=True
            )
        except Exception as exc:
            raise ModelLoadError(
                f"cannot load model {self.name!r} from {self.folder}: {exc}"
            ) from None
        if self._precision == "bf16":
            import torch

            model.to(torch.bfloat16)
        return model


@contextmanager
def _torch_threads(count: int) -> Iterator[None]:
    """torch's intra-op thread count set to ``count`` for a while, then put back: the setting
    is process-wide, and other torch work in the process keeps its own."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
