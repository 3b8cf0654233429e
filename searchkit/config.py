"""Typed settings, read from ``SEARCHKIT_*`` environment variables.

Built by the CLI or an application factory, never at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from .choices import (
    Aggregation,
    BackendChoice,
    FusionMethod,
    LanguageChoice,
    QueryBackend,
    VectorIndexChoice,
)

DEFAULT_MODEL = "all-MiniLM-L6-v2"


def bundled_seeds_dir() -> Path:
    """The seed corpus shipped with the package (wheel) or beside it (source checkout)."""
    packaged = Path(__file__).resolve().parent / "_seeds"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "seeds"


def default_seeds_dir() -> Path:
    """``./seeds`` when the current directory has one, else the bundled seed corpus."""
    local = Path("seeds")
    return local if local.is_dir() else bundled_seeds_dir()


class Settings(BaseSettings):
    """Everything a user may configure; every field maps to ``SEARCHKIT_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="SEARCHKIT_", extra="ignore")

    index_dir: Path = Field(default=Path("index"), description="index home")
    seeds_dir: Path = Field(default_factory=default_seeds_dir, description="default corpus")
    model: str = Field(
        default=DEFAULT_MODEL,
        description="sentence-transformers model: the bundled default, a local path or a name",
    )
    device: str = Field(default="cpu", description="torch device for encoding (cpu, cuda)")
    backend: BackendChoice = Field(
        default="auto",
        description="passage encoder; auto: torch-bf16 on GPUs and CPUs with AMX, else onnx-int8",
    )
    query_backend: QueryBackend = Field(
        default="onnx-int8",
        description="query encoder (ONNX Runtime needs no torch; int8: faster than fp32, "
        "nDCG@10 on SciFact train within 0.001)",
    )
    model_cache: Path | None = Field(
        default=None, description="exported ONNX models (default ~/.cache/searchkit/models)"
    )
    encode_threads: int = Field(
        default=0,
        ge=0,
        description="ONNX cores, a batch each; 0: all cores for builds, 1 per query",
    )
    batch_size: int = Field(default=32, ge=1, le=4096)
    min_passage_words: int = Field(default=25, ge=0)
    language: LanguageChoice | None = Field(
        default=None,
        description="how the lexical index stems Latin script: auto (each document in the "
        "language detected in it), or one Snowball language for every document; unset: "
        "as the live index was built (a language set before is kept), else auto",
    )
    # Fusion defaults: z-scored scores and 300 passages per leg, chosen by `searchkit tune` on
    # half of SciFact train and confirmed on the other half (benchmarks/RESULTS.md); the legs'
    # weights are learned per index (search.adaptive) unless set here or by `tune`.
    candidates: int = Field(default=300, ge=1, le=10_000, description="top-N per leg")
    fusion: FusionMethod = "zscore"
    rrf_k: int = Field(default=60, ge=1)
    vector_weight: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="vector leg's share; unset: learned per index by its build-time self-check",
    )
    aggregate: Aggregation = Field(default="max", description="passages -> document")
    decay: float = Field(default=0.3, ge=0.0, le=1.0)
    # Vector index: exact search up to exact_limit passages, an inverted file beyond
    # (benchmarks/RESULTS.md has the recall, latency and build time at each size that chose
    # these). A query scans ivf_probe_share of its lists: on SciFact's real passage
    # embeddings (/tmp/rss/ivfreal.py, a one-off script), 1/8 of sqrt(n) lists found 0.955 of
    # the exact top 10 and 1/4 0.975; on the benchmark's synthetic 100,000, 0.941 and 0.974
    # (benchmarks/RESULTS.md has the latter).
    vector_index: VectorIndexChoice = "auto"
    exact_limit: int = Field(default=100_000, ge=0, description="auto: largest exact index")
    hnsw_m: int = Field(default=16, ge=4, le=128)
    hnsw_ef_construction: int = Field(default=80, ge=8)
    hnsw_ef_search: int = Field(default=1600, ge=8, description="at least the leg's top-N")
    ivf_probe_share: float = Field(
        default=0.25, gt=0.0, le=1.0, description="share of an inverted file's lists scanned"
    )
    keep_generations: int = Field(default=2, ge=1)
    # A sharded index scores BM25 with the whole corpus's term statistics (one extra round
    # trip per new query text); off, each shard uses its own (benchmarks/RESULTS.md compares).
    global_idf: bool = Field(default=True, description="sharded: corpus-wide BM25 IDF")
    max_k: int = Field(default=100, ge=1)
    max_window: int = Field(default=1000, ge=1, description="limit on offset + k")
    max_query_chars: int = Field(default=1000, ge=1)
    max_syntax_depth: int = Field(default=16, ge=1, description="parentheses in syntax mode")
    max_syntax_terms: int = Field(default=64, ge=1, description="terms in syntax mode")
    # Live documents (written through HTTP, Python or `searchkit add`)
    refresh_interval: float = Field(
        default=1.0, gt=0, description="seconds: a server makes new writes searchable within it"
    )
    compact_documents: int = Field(
        default=1000, ge=1, description="a refresh folds the delta in once it holds more"
    )
    query_cache: int = Field(
        default=4096, ge=0, description="query vectors a process keeps for repeated queries"
    )
    max_document_bytes: int = Field(
        default=1024 * 1024, ge=1, description="title and text of one written document"
    )
    max_batch_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1, description="one POST /documents body (JSON or NDJSON)"
    )
    # HTTP service
    max_body_bytes: int = Field(default=16 * 1024, ge=1, description="request body limit")
    admin_token: str | None = Field(
        default=None, description="bearer token for /admin routes and live writes"
    )
    cors_origins: list[str] = Field(default_factory=list, description="allowed CORS origins")


def default(setting: str) -> Any:
    """The default of a ``Settings`` field, for the lower layers' own parameters: each default
    is declared once, here."""
    return Settings.model_fields[setting].default
