"""The HTTP API's request and response shapes (pydantic), shared by the routes and OpenAPI."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class SearchQuery(BaseModel):
    """Parameters of ``GET /search`` (query string) and ``POST /search`` (JSON body)."""

    model_config = ConfigDict(extra="forbid")

    q: str = Field(min_length=1, description="The query, 1 to 1,000 characters.")
    k: int = Field(default=10, ge=1, description="Hits to return, 1 to 100.")
    offset: int = Field(default=0, ge=0, description="Hits to skip; offset + k <= 1,000.")
    mode: Literal["hybrid", "bm25", "vector"] = "hybrid"
    syntax: bool = Field(default=False, description="Parse phrases, +must, -not, field:term.")
    per_doc: int | None = Field(default=None, ge=1, description="At most N passages per document.")
    path_prefix: str | None = Field(default=None, description="Only documents under this path.")
    explain: bool = Field(default=False, description="Add semantic highlights.")


class SearchBody(SearchQuery):
    """``POST /search``: the query parameters plus filters and fusion settings."""

    filters: dict[str, str] = Field(
        default_factory=dict, description="Metadata equality filters, key: value."
    )
    fusion: Literal["rrf", "minmax", "zscore"] | None = None
    vector_weight: float | None = Field(default=None, ge=0.0, le=1.0)
    rrf_k: int | None = Field(default=None, ge=1)
    candidates: int | None = Field(default=None, ge=1, le=10_000)


class PassageOut(BaseModel):
    id: int
    start: int
    end: int
    page: int | None
    text: str


class DocumentOut(BaseModel):
    doc_id: str
    path: str
    title: str
    metadata: dict[str, Any]
    passages: list[PassageOut]
    generation: int


class HealthOut(BaseModel):
    status: Literal["ok"]
    generation: int


class LatencyOut(BaseModel):
    count: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


class StatsOut(BaseModel):
    generation: int
    documents: int
    passages: int
    model: dict[str, Any]
    bytes: int
    worker: int
    latency: LatencyOut


class JobOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    state: Literal["queued", "running", "succeeded", "failed"]


class ErrorOut(BaseModel):
    detail: Any = Field(description="What was wrong, for a person to read.")
