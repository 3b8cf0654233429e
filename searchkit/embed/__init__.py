"""Embedding stage: texts -> unit vectors on torch or ONNX Runtime (nothing heavy on import)."""

from .factory import (
    load_encoder,
    load_query_encoder,
    onnx_export,
    passage_backend,
    prepared_query_encoder,
)
from .model import Encoder, ModelFolder

__all__ = [
    "Encoder",
    "ModelFolder",
    "load_encoder",
    "load_query_encoder",
    "onnx_export",
    "passage_backend",
    "prepared_query_encoder",
]
