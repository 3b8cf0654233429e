"""Choosing and loading an encoder: the passage backend for this machine, and the query encoder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..choices import Backend
from ..errors import ModelLoadError
from .model import Encoder, read_pooling, resolve_model

if TYPE_CHECKING:
    from ..config import Settings


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
    return "onnx-int8" if _is_plain_stack(settings.model) else "torch-fp32"


def _is_plain_stack(spec: str) -> bool:
    """Whether searchkit's own runners (and so ONNX) can run model ``spec``."""
    try:
        read_pooling(resolve_model(spec))
    except ModelLoadError:
        return False
    return True


def onnx_export() -> int:
    """The number of the way ONNX graphs are exported now (``onnx_backend.EXPORT``): what a
    cache of passages encoded through ONNX Runtime keys on."""
    from .onnx_backend import EXPORT

    return EXPORT


def load_encoder(
    settings: Settings, backend: Backend | None = None, threads: int | None = None
) -> Encoder:
    """An encoder for the configured model on ``backend`` (default: the passage backend);
    nothing heavy loads before its first encode."""
    backend = backend or passage_backend(settings)
    runtime, precision = backend.split("-")
    if runtime == "torch":
        from .torch_backend import SentenceTransformerEncoder

        return SentenceTransformerEncoder(
            settings.model, settings.device, settings.batch_size, precision, threads
        )
    from .onnx_backend import OnnxEncoder

    return OnnxEncoder(
        settings.model, precision, settings.model_cache, threads or settings.encode_threads or None
    )


def load_query_encoder(settings: Settings) -> Encoder:
    """The encoder for queries: ONNX Runtime by default, so a query never imports torch.

    One core (``encode_threads`` if set): cores run whole batches side by side, and a query,
    or one shared pass of a server's queries, is a single batch of a few dozen tokens, too
    little to share out; a server runs one worker process per core.
    """
    backend = settings.query_backend
    if backend.startswith("onnx") and not _is_plain_stack(settings.model):
        # e.g. a model with a Dense module: only sentence-transformers runs it. torch's thread
        # count is process-wide, so it is left alone here.
        return load_encoder(settings, "torch-fp32")
    return load_encoder(settings, backend, settings.encode_threads or 1)


def prepared_query_encoder(settings: Settings) -> Encoder:
    """The query encoder, its model exported now if its backend needs an export (ONNX): a
    build does it, so that the first query after it does not."""
    encoder = load_query_encoder(settings)
    prepare = getattr(encoder, "prepare", None)
    if prepare is not None:
        prepare()
    return encoder
