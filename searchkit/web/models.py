"""The HTTP API's request and response shapes (pydantic), shared by the routes and OpenAPI."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..choices import FusionMethod, Mode
from ..config import Settings
from ..records import FilterValue


class SearchQuery(BaseModel):
    """Parameters of ``GET /search`` (query string) and ``POST /search`` (JSON body)."""

    model_config = ConfigDict(extra="forbid")

    # The upper limits come from Settings: ``document_limits`` writes them into OpenAPI.
    q: str = Field(min_length=1, description="The query")
    k: int = Field(default=10, ge=1, description="Hits to return")
    offset: int = Field(default=0, ge=0, description="Hits to skip")
    mode: Mode = "hybrid"
    syntax: bool = Field(default=False, description="Parse phrases, +must, -not, field:term.")
    per_doc: int | None = Field(default=None, ge=1, description="At most N passages per document.")
    path_prefix: str | None = Field(default=None, description="Only documents under this path.")
    min_relevance: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Drop hits whose relevance (estimated chance of answering the query) is "
        "below this.",
    )
    explain: bool = Field(
        default=False,
        description="Add semantic highlights (not with highlight=false), the fusion weights "
        "and why, and each leg's part.",
    )
    highlight: bool = Field(
        default=True,
        description="Mark the matching words (false: no highlights, html is the escaped text; "
        "a bm25 query takes under half the time).",
    )


class SearchBody(SearchQuery):
    """``POST /search``: the query parameters plus filters and fusion settings."""

    filters: dict[str, FilterValue] = Field(
        default_factory=dict,
        description="Metadata equality filters, key: value. A string matches the value as text "
        '("2021" matches 2021); a number or boolean matches that number or boolean.',
    )
    fusion: FusionMethod | None = None
    vector_weight: float | None = Field(default=None, ge=0.0, le=1.0)
    rrf_k: int | None = Field(default=None, ge=1)
    candidates: int | None = Field(
        default=None, ge=1, le=Settings.model_fields["candidates"].metadata[-1].le
    )


class DocumentIn(BaseModel):
    """A document written with ``PUT /documents/{id}`` (in ``POST /documents``, with ``id``)."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, description="The document's text")
    title: str = Field(default="", description="Its title")
    metadata: dict[str, FilterValue] = Field(
        default_factory=dict, description="Flat values, for filters: strings, numbers, booleans"
    )


class WriteOut(BaseModel):
    seq: int = Field(description="The write's sequence number: it is durable")
    visible: bool = Field(description="Whether it is searchable already (?refresh=wait)")
    generation: int | None = Field(description="The generation that shows it, when visible")


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
    languages: list[str] = Field(description="languages Latin script is stemmed in, main first")
    bytes: int
    worker: int
    latency: LatencyOut


class JobOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    state: Literal["queued", "running", "succeeded", "failed"]


class ErrorOut(BaseModel):
    detail: Any = Field(description="What was wrong, for a person to read.")


def document_limits(schema: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Write the query limits of ``settings`` into an OpenAPI document (query parameters of
    ``GET /search`` and the ``SearchQuery``/``SearchBody`` schemas), so it never disagrees with
    what the service enforces (a 400 past these limits)."""
    limits = {
        "q": (
            {"maxLength": settings.max_query_chars},
            f"at most {settings.max_query_chars:,} characters",
        ),
        "k": ({"maximum": settings.max_k}, f"1 to {settings.max_k:,}"),
        "offset": ({}, f"offset + k <= {settings.max_window:,}"),
    }
    schemas = schema["components"]["schemas"]  # the GET parameters are not a component
    properties = [
        schemas[name]["properties"] for name in ("SearchQuery", "SearchBody") if name in schemas
    ]
    parameters = schema["paths"]["/search"]["get"]["parameters"]
    properties += [{p["name"]: p["schema"] for p in parameters}]
    for fields in properties:
        for name, (bounds, text) in limits.items():
            fields[name].update(bounds)
            fields[name]["description"] = f"{fields[name]['description']}: {text}."
    for parameter in parameters:
        if parameter["name"] in limits:
            parameter["description"] = parameter["schema"]["description"]
    return schema
