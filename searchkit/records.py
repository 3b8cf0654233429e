"""Frozen records passed between the stages of the pipeline."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import cache, partial
from typing import Any, Literal, NamedTuple

from pydantic import TypeAdapter

from .choices import Mode

SpanKind = Literal["lexical", "semantic"]
FilterValue = str | int | float | bool  # a metadata value a filter asks for


@dataclass(frozen=True)
class Document:
    """One source document.

    ``body_start`` is where the text after the title line begins; ``pages`` holds the offset at
    which each page starts, for paged formats (PDF), and is empty otherwise.
    """

    doc_id: str
    text: str
    title: str = ""
    path: str = ""
    body_start: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)
    pages: tuple[int, ...] = ()


@dataclass(frozen=True)
class Passage:
    """A paragraph-sized slice of a document: ``document.text[start:end] == text``."""

    doc_id: str
    start: int
    end: int
    text: str
    page: int | None = None  # 1-based, for paged documents


# Candidates are named tuples, not frozen dataclasses: a hybrid query makes a thousand of them,
# and a tuple is built in half the time.
class Ranked(NamedTuple):
    """One leg's candidate: a passage id with its 1-based rank and raw score."""

    passage_id: int
    rank: int
    score: float


def ranked_list(ids: list[int], scores: list[float]) -> list[Ranked]:
    """A leg's candidates from its passage ids and scores, best first (ranks 1, 2, ...). The
    records are built in C from zipped fields: the named tuple's constructor is Python."""
    ranks = range(1, len(ids) + 1)
    return list(map(_new_ranked, zip(ids, ranks, scores, strict=True)))


_new_ranked = partial(tuple.__new__, Ranked)


class Fused(NamedTuple):
    """A fused candidate with the parts it came from (None where a leg missed it)."""

    passage_id: int
    score: float
    bm25: Ranked | None
    vector: Ranked | None
    parts: tuple[float, float] = (0.0, 0.0)  # what each leg added to ``score`` (hybrid)


@dataclass(frozen=True)
class Span:
    """A highlighted range of code points in a passage's text."""

    start: int
    end: int
    kind: SpanKind = "lexical"


@dataclass(frozen=True)
class LegScore:
    rank: int
    score: float


@dataclass(frozen=True)
class Hit:
    """One ranked passage as every interface returns it."""

    doc_id: str
    path: str
    title: str
    text: str
    start: int
    end: int
    page: int | None
    score: float
    bm25: LegScore | None
    vector: LegScore | None
    highlights: list[Span]
    html: str
    relevance: float = 0.0  # estimated probability that the hit answers the query
    explanation: dict[str, Any] | None = None  # with explain: what each leg added, and why

    def with_relevance(self, relevance: float) -> Hit:
        """This hit with ``relevance`` set. A field-for-field copy, as ``copy.copy`` makes:
        ``dataclasses.replace`` gathers the fields and runs ``__init__`` again, 3.6 us a hit
        against 0.5."""
        copied = object.__new__(type(self))
        copied.__dict__.update(self.__dict__, relevance=relevance)
        return copied


@dataclass(frozen=True)
class RankedDocuments:
    """A query's documents, best first, each scored by its best passages (for evaluation),
    with the relevance of each document's best passage."""

    ranked: list[tuple[str, float]]
    relevance: dict[str, float]


@dataclass(frozen=True)
class SearchResult:
    query: str
    mode: Mode
    generation: int
    k: int
    offset: int
    hits: list[Hit]
    took_ms: float
    explanation: dict[str, Any] | None = None  # with explain: the fusion used, and why

    def to_dict(self) -> dict[str, Any]:
        """The JSON body shared by ``searchkit query --json`` and the HTTP endpoint."""
        return asdict(self)

    def to_json(self) -> bytes:
        """``to_dict`` as UTF-8 JSON, written by pydantic's serializer: a request's answer
        costs a twentieth of ``json.dumps(to_dict())``, which copies every hit first."""
        return _result_adapter().dump_json(self)


@cache
def _result_adapter() -> TypeAdapter[SearchResult]:
    return TypeAdapter(SearchResult)


@dataclass(frozen=True)
class BuildReport:
    """What a build did: counts, the document diff against the live index, and timings."""

    generation: int
    documents: int
    passages: int
    added: int
    changed: int
    removed: int
    encoded: int
    reused: int
    model_changed: bool
    skipped: list[str]
    replaced_bytes: int
    seconds: dict[str, float]
    published: bool = True  # False: nothing changed, and ``generation`` stays live

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
