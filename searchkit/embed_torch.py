"""The sentence-transformers backend, on torch: fp32, or bf16 matrix products under autocast."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from .embed import ModelFolder
from .errors import ModelLoadError

if TYPE_CHECKING:
    from numpy.typing import NDArray


class SentenceTransformerEncoder(ModelFolder):
    """A sentence-transformers model loaded lazily from a local folder.

    ``precision="bf16"`` keeps fp32 weights and runs matrix products in bf16 (torch autocast):
    on CPUs with AMX that is about three times faster, and the vectors stay within 1e-4 cosine.
    """

    def __init__(
        self, spec: str, device: str = "cpu", batch_size: int = 32, precision: str = "fp32"
    ) -> None:
        super().__init__(spec)
        if precision not in {"fp32", "bf16"}:
            raise ModelLoadError(f"the torch backend runs fp32 or bf16, not {precision!r}")
        self._device = device
        self._batch_size = batch_size
        self._precision = precision

    @property
    def variant(self) -> str:
        return self._precision

    @property
    def dimension(self) -> int:
        model = self._model
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
        model = self._model
        rows = np.zeros((len(texts), self.dimension), dtype=np.float32)
        # Encoding texts of similar length together wastes less padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        step = self._batch_size * 4
        for begin in range(0, len(order), step):
            chunk = order[begin : begin + step]
            with self._autocast():
                vectors = model.encode(
                    [texts[i] for i in chunk],
                    batch_size=self._batch_size,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
            # Normalised here, in fp32: bf16 outputs are not quite unit length.
            vectors = vectors.astype(np.float32)
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
            rows[chunk] = vectors
            if on_batch is not None:
                on_batch(len(chunk))
        return rows

    @contextlib.contextmanager
    def _autocast(self) -> Iterator[None]:
        if self._precision == "fp32":
            yield
            return
        import torch

        with torch.autocast(self._device.split(":")[0], dtype=torch.bfloat16):
            yield

    @cached_property
    def _model(self) -> Any:
        # Set before the import: huggingface_hub reads it once. Models come from disk only.
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        transformers_logging.set_verbosity_error()  # type: ignore[no-untyped-call]

        try:
            return SentenceTransformer(str(self.folder), device=self._device, local_files_only=True)
        except Exception as exc:
            raise ModelLoadError(
                f"cannot load model {self.name!r} from {self.folder}: {exc}"
            ) from None
