"""The named choices a user can make, each declared once: modes, fusion, backends, index kinds."""

from __future__ import annotations

from typing import Literal, get_args

Mode = Literal["hybrid", "bm25", "vector"]
FusionMethod = Literal["rrf", "minmax", "zscore"]
Aggregation = Literal["max", "decay"]
# Passage encoders, as RUNTIME-PRECISION; "auto" picks one for the machine (embed.factory).
Backend = Literal["torch-fp32", "torch-bf16", "onnx-fp32", "onnx-int8"]
BackendChoice = Literal["auto", "torch-fp32", "torch-bf16", "onnx-fp32", "onnx-int8"]
QueryBackend = Literal["torch-fp32", "onnx-fp32", "onnx-int8"]
VectorIndexKind = Literal["flat", "ivf", "hnsw"]
VectorIndexChoice = Literal["auto", "flat", "ivf", "hnsw"]
# Latin-script languages tantivy has a Snowball stemmer for; "auto" detects one per index.
Language = Literal[
    "danish", "dutch", "english", "finnish", "french", "german", "hungarian", "italian",
    "norwegian", "portuguese", "romanian", "spanish", "swedish", "turkish",
]  # fmt: skip
LanguageChoice = Literal[
    "auto", "danish", "dutch", "english", "finnish", "french", "german", "hungarian", "italian",
    "norwegian", "portuguese", "romanian", "spanish", "swedish", "turkish",
]  # fmt: skip

MODES: tuple[Mode, ...] = get_args(Mode)
LANGUAGES: tuple[Language, ...] = get_args(Language)
