"""The ``searchkit`` command: parse, call the library, print. Errors map to exit codes here."""

from __future__ import annotations

import json
import logging
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text
from typer.core import TyperGroup

from .config import Settings
from .errors import SearchkitError
from .highlight import segments

if TYPE_CHECKING:
    from .embed import Encoder
    from .engine import SearchEngine
    from .records import BuildReport, Hit, SearchResult

EXIT_USER_ERROR = 2
EXIT_ENVIRONMENT_ERROR = 1
MARK_STYLES = {"lexical": "bold black on yellow", "semantic": "bold black on cyan"}

stdout = Console(highlight=False, soft_wrap=False)
stderr = Console(stderr=True, highlight=False)


class _SearchkitGroup(TyperGroup):
    """Maps every error searchkit raises to one line on stderr and an exit code."""

    def invoke(self, ctx: Any) -> Any:  # typer.Context is not the vendored click one
        try:
            return super().invoke(ctx)
        except SearchkitError as exc:
            _fail(str(exc), EXIT_USER_ERROR if exc.status < 500 else EXIT_ENVIRONMENT_ERROR)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except Exception as exc:  # a bug: still one line, never a traceback
            _fail(f"internal error ({type(exc).__name__}: {exc})", EXIT_ENVIRONMENT_ERROR)


def _fail(message: str, code: int) -> NoReturn:
    first_line = message.strip().splitlines()[0] if message.strip() else "failed"
    print(f"error: {first_line}", file=sys.stderr)
    raise typer.Exit(code)


app = typer.Typer(
    cls=_SearchkitGroup,
    help="Hybrid full-text and semantic search over your own documents.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class ModeChoice(StrEnum):
    hybrid = "hybrid"
    bm25 = "bm25"
    vector = "vector"


IndexOption = Annotated[
    Path | None,
    typer.Option(
        "--index",
        help="Index home directory (default: ./index, or $SEARCHKIT_INDEX_DIR).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON only, on stdout.")]


def _settings(index: Path | None) -> Settings:
    settings = Settings()
    return settings if index is None else settings.model_copy(update={"index_dir": index})


def _setup_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    logger = logging.getLogger("searchkit")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False


@app.callback()
def _main() -> None:
    _setup_logging()


# ----- query ---------------------------------------------------------------------------------
@app.command()
def query(  # noqa: PLR0917 (typer maps parameters to options)
    text: Annotated[str, typer.Argument(help="What to search for, in plain words.")],
    k: Annotated[int, typer.Option("-k", "--k", help="Number of hits to return.")] = 10,
    offset: Annotated[int, typer.Option("--offset", help="Hits to skip (paging).")] = 0,
    mode: Annotated[
        ModeChoice, typer.Option("--mode", "-m", help="Ranking: fused, keywords or meaning.")
    ] = ModeChoice.hybrid,
    syntax: Annotated[
        bool,
        typer.Option("--syntax", help='Parse query syntax: "phrases", +must, -not, field:term.'),
    ] = False,
    per_doc: Annotated[
        int | None, typer.Option("--per-doc", help="At most N passages per document.")
    ] = None,
    json_output: JsonOption = False,
    index: IndexOption = None,
) -> None:
    """Search the index. Builds ./index from the seed corpus on first use."""
    from .engine import SearchEngine

    settings = _settings(index)
    encoder = _build_seeds_if_missing(settings) if index is None else None
    engine = SearchEngine.open(settings.index_dir, settings, encoder)
    result = engine.query(text, k=k, mode=mode.value, offset=offset, syntax=syntax, per_doc=per_doc)
    if json_output:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
    else:
        _print_result(result)


def _build_seeds_if_missing(settings: Settings) -> Encoder | None:
    """Index the seed corpus into a missing default index; returns the encoder it loaded."""
    from .build import has_index, load_encoder

    if has_index(settings.index_dir):
        return None
    stderr.print(
        f"No index at {settings.index_dir}/ yet: indexing the seed corpus {settings.seeds_dir}/ "
        "(once)."
    )
    encoder = load_encoder(settings)
    _run_build([settings.seeds_dir], settings, quiet=False, encoder=encoder)
    return encoder


def _print_result(result: SearchResult) -> None:
    if not result.hits:
        stdout.print(f"No results for {result.query!r} ({result.mode}).")
        return
    for number, hit in enumerate(result.hits, start=result.offset + 1):
        stdout.print(_hit_heading(number, hit))
        stdout.print(_styled_text(hit), end="\n\n")
    stdout.print(
        f"[dim]{len(result.hits)} hits · {result.mode} · generation {result.generation} · "
        f"{result.took_ms:.0f} ms[/dim]"
    )


def _hit_heading(number: int, hit: Hit) -> Text:
    heading = Text(f"{number}. ", style="bold")
    heading.append(hit.title or hit.doc_id, style="bold")
    heading.append(f"  {hit.doc_id} [{hit.start}:{hit.end}]", style="dim")
    parts = [f"score {hit.score:.4f}"]
    if hit.bm25 is not None:
        parts.append(f"bm25 #{hit.bm25.rank} {hit.bm25.score:.2f}")
    if hit.vector is not None:
        parts.append(f"vector #{hit.vector.rank} {hit.vector.score:.3f}")
    heading.append("  (" + " · ".join(parts) + ")", style="cyan")
    return heading


def _styled_text(hit: Hit) -> Text:
    styled = Text()
    for piece, kind in segments(hit.text, hit.highlights):
        styled.append(piece, style=MARK_STYLES[kind] if kind else "")
    return styled


# ----- index ---------------------------------------------------------------------------------
@app.command("index")
def index_command(
    paths: Annotated[
        list[Path], typer.Argument(help="Files or folders: .txt .md .html .jsonl (BEIR corpus).")
    ],
    index: IndexOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Build a new index generation holding exactly PATHS, then make it live."""
    settings = _settings(index)
    report = _run_build(paths, settings, quiet=quiet or json_output)
    if json_output:
        print(json.dumps(report.to_dict()))


def _run_build(
    paths: list[Path], settings: Settings, quiet: bool, encoder: Encoder | None = None
) -> BuildReport:
    from .build import SilentProgress, build_index

    started = time.perf_counter()
    progress: Any = SilentProgress() if quiet else _RichProgress()
    try:
        report = build_index(paths, settings.index_dir, settings, encoder, progress)
    except BaseException:
        if isinstance(progress, _RichProgress):
            progress.close(completed=False)
        raise
    if isinstance(progress, _RichProgress):
        progress.close()
    stderr.print(
        f"Indexed {_plural(report.documents, 'document')} as "
        f"{_plural(report.passages, 'passage')} into "
        f"{settings.index_dir}/ (generation {report.generation}) in "
        f"{time.perf_counter() - started:.1f} s"
        + (f"; skipped {len(report.skipped)} files" if report.skipped else "")
    )
    return report


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


class _RateColumn(ProgressColumn):
    """Items per second, for stages that know their total."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f}/s" if speed else "", style="progress.data.speed")


class _RichProgress:
    """Progress bars on stderr for the stages of a build: rate and ETA where a total is known."""

    def __init__(self) -> None:
        self._bars = Progress(
            SpinnerColumn(finished_text="✓"),
            TextColumn("{task.description:<20}"),
            BarColumn(),
            MofNCompleteColumn(),
            _RateColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=stderr,
        )
        self._bars.start()
        self._task: TaskID | None = None

    def stage(self, name: str, total: int | None = None) -> None:
        self._finish_stage()
        self._task = self._bars.add_task(name, total=total)

    def advance(self, amount: int = 1) -> None:
        if self._task is not None:
            self._bars.advance(self._task, amount)

    def _finish_stage(self) -> None:
        if self._task is not None:
            done = self._bars.tasks[-1].completed
            self._bars.update(self._task, total=max(done, 1), completed=max(done, 1))

    def close(self, completed: bool = True) -> None:
        if completed:
            self._finish_stage()
        self._bars.stop()


# ----- info ----------------------------------------------------------------------------------
@app.command()
def info(index: IndexOption = None, json_output: JsonOption = False) -> None:
    """Describe the live index: generation, counts, model, sources, size."""
    from .engine import SearchEngine

    settings = _settings(index)
    engine: SearchEngine = SearchEngine.open(settings.index_dir, settings)
    details = engine.info()
    if json_output:
        print(json.dumps(details))
        return
    model = details["model"]
    stdout.print(f"index       {details['index']}")
    stdout.print(f"generation  {details['generation']} (built {details['created']})")
    stdout.print(f"documents   {details['documents']}")
    stdout.print(f"passages    {details['passages']}")
    stdout.print(f"model       {model['name']} ({model['dimension']} dims, {model['fingerprint']})")
    stdout.print(f"size        {details['bytes'] / 1e6:.1f} MB")
    for source in details["sources"]:
        stdout.print(f"source      {source}")


def main() -> None:
    app()
