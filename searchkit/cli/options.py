"""Options shared by several ``searchkit`` commands, and the settings they produce."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from ..choices import MODES, Aggregation, BackendChoice, FusionMethod, LanguageChoice, Mode
from ..config import Settings
from ..errors import UserInputError
from ..records import FilterValue
from ..search.fusion import FusionOptions

IndexOption = Annotated[
    Path | None,
    typer.Option(
        "--index",
        help="Index home directory (default: ./index, or $SEARCHKIT_INDEX_DIR).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON only, on stdout.")]
HighlightOption = Annotated[
    bool,
    typer.Option(
        "--highlight/--no-highlight",
        help="Mark the words matching the query (--no-highlight: none, and no semantic marks "
        "either; a bm25 query takes under half the time).",
    ),
]
FusionOption = Annotated[
    FusionMethod | None,
    typer.Option("--fusion", help="Fusion: rrf, or min-max / z-score normalized scores."),
]
VectorWeightOption = Annotated[
    float | None,
    typer.Option(
        "--vector-weight",
        min=0.0,
        max=1.0,
        help="The vector leg's share, 0 to 1 (default: learned by the index when built).",
    ),
]
RrfKOption = Annotated[int | None, typer.Option("--rrf-k", min=1, help="The RRF constant.")]
CandidatesOption = Annotated[
    int | None, typer.Option("--candidates", min=1, help="Passages taken from each leg.")
]
AggregateOption = Annotated[
    Aggregation | None,
    typer.Option("--aggregate", help="Passages to documents: best passage or decayed sum."),
]

BackendOption = Annotated[
    BackendChoice | None,
    typer.Option(
        "--backend",
        help="Passage encoder (default auto: torch-bf16 on a GPU or an AMX CPU, else onnx-int8).",
        show_default=False,
    ),
]
LanguageOption = Annotated[
    LanguageChoice | None,
    typer.Option(
        "--language",
        help="The language every document's Latin script is stemmed in, or auto: each "
        "document's own, detected (default: a language set before is kept, else auto). "
        "Cyrillic, Greek, Arabic and Tamil are stemmed as such.",
        show_default=False,
    ),
]
DeviceOption = Annotated[
    str | None,
    typer.Option(
        "--device", help="Where torch encodes: cpu (default), cuda, cuda:1.", show_default=False
    ),
]


def make_settings(index: Path | None, **overrides: object) -> Settings:
    """Settings from the environment, with the options given on the command line on top.

    Options given explicitly also win over fusion settings that ``tune`` stored with an index.
    """
    given = {name: value for name, value in overrides.items() if value is not None}
    if index is not None:
        given["index_dir"] = index
    try:
        settings = Settings(**given)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        name = "SEARCHKIT_" + str(error["loc"][0]).upper() if error["loc"] else "a setting"
        raise UserInputError(f"{name}: {error['msg']}") from None
    if settings.index_dir.exists() and not settings.index_dir.is_dir():
        raise UserInputError(
            f"--index {settings.index_dir} is a file; name a folder (a new one is created)"
        )
    return settings


def parse_filters(pairs: list[str]) -> dict[str, FilterValue]:
    """``KEY=VALUE`` options as a dict; anything else is a user error."""
    filters: dict[str, FilterValue] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserInputError(f"filter {pair!r} is not KEY=VALUE")
        filters[key.strip()] = value
    return filters


RayAddressOption = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        help="Run on the Ray cluster at this address (HOST:PORT of its head; needs the "
        "'cluster' extra). The index is then sharded, on storage every node reads.",
    ),
]

ModeOption = Annotated[
    Mode, typer.Option("--mode", "-m", help="Ranking: fused, keywords or meaning.")
]


def known_modes(values: list[str] | None) -> list[str] | None:
    """Refuse a repeated ``--mode`` value that is not a mode (typer cannot type a list of
    literals)."""
    for value in values or []:
        if value not in MODES:
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(MODES)}")
    return values


def describe_fusion(options: FusionOptions) -> str:
    """One line on how the legs are fused, for people."""
    how = f"rrf k={options.rrf_k}" if options.method == "rrf" else options.method
    return (
        f"{how}, vector weight {options.vector_weight:g}, {options.candidates} candidates/leg, "
        f"documents by {options.aggregate}"
    )
