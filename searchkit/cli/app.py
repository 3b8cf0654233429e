"""The ``searchkit`` command: parse, call the library, print. Errors map to exit codes in
``cli.shell``."""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from .. import __version__
from ..config import Settings
from ..errors import PortInUseError, UserInputError
from ..search.fusion import FusionOptions
from ..search.highlight import segments
from ..search.relevance import WEAK
from . import evaluation, lifecycle, writes
from .console import human_bytes, plural, stderr, stdout
from .options import (
    CandidatesOption,
    FusionOption,
    HighlightOption,
    IndexOption,
    JsonOption,
    ModeOption,
    RayAddressOption,
    RrfKOption,
    VectorWeightOption,
    describe_fusion,
    make_settings,
    parse_filters,
)
from .shell import SearchkitGroup, run

if TYPE_CHECKING:
    from ..records import Hit, SearchResult
    from ..search.engine import SearchEngine

MARK_STYLES = {"lexical": "bold black on yellow", "semantic": "bold black on cyan"}


app = typer.Typer(
    cls=SearchkitGroup,
    help="Hybrid full-text and semantic search over your own documents.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _setup_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    logger = logging.getLogger("searchkit")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False


def _show_version(value: bool) -> None:
    if value:
        print(f"searchkit {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    _setup_logging()


# ----- query ---------------------------------------------------------------------------------
@app.command()
def query(
    text: Annotated[str, typer.Argument(help="What to search for, in plain words.")],
    k: Annotated[int, typer.Option("-k", "--k", help="Number of hits to return.")] = 10,
    offset: Annotated[int, typer.Option("--offset", help="Hits to skip (paging).")] = 0,
    mode: ModeOption = "hybrid",
    syntax: Annotated[
        bool,
        typer.Option("--syntax", help='Parse query syntax: "phrases", +must, -not, field:term.'),
    ] = False,
    per_doc: Annotated[
        int | None, typer.Option("--per-doc", help="At most N passages per document.")
    ] = None,
    min_relevance: Annotated[
        float | None,
        typer.Option(
            "--min-relevance",
            min=0.0,
            max=1.0,
            help="Drop hits whose relevance (estimated chance of answering the query, 0 to 1) "
            "is below this.",
        ),
    ] = None,
    explain: Annotated[
        bool | None,
        typer.Option(
            "--explain/--no-explain",
            help="Mark the sentences closest in meaning in hits without keyword matches (not "
            "with --no-highlight), and with --json add the fusion weights and what each leg "
            "added to each hit (default: on for human output, off with --json).",
            show_default=False,
        ),
    ] = None,
    highlight: HighlightOption = True,
    json_output: JsonOption = False,
    index: IndexOption = None,
    fusion: FusionOption = None,
    vector_weight: VectorWeightOption = None,
    rrf_k: RrfKOption = None,
    candidates: CandidatesOption = None,
    path_prefix: Annotated[
        str | None, typer.Option("--path-prefix", help="Only documents under this path.")
    ] = None,
    filters: Annotated[
        list[str] | None,
        typer.Option(
            "--filter",
            metavar="KEY=VALUE",
            help="Only documents whose metadata KEY equals VALUE; repeat for several.",
        ),
    ] = None,
) -> None:
    """Search the index (local or sharded). Builds ./index from the seed corpus on first use."""
    settings = make_settings(
        index, fusion=fusion, vector_weight=vector_weight, rrf_k=rrf_k, candidates=candidates
    )
    filter_values = parse_filters(filters or [])
    if index is None:
        _build_seeds_if_missing(settings)
    result = _open_engine(settings, mode).query(
        text,
        k=k,
        mode=mode,
        offset=offset,
        syntax=syntax,
        per_doc=per_doc,
        explain=not json_output if explain is None else explain,
        highlight=highlight,
        path_prefix=path_prefix,
        filters=filter_values,
        min_relevance=min_relevance,
    )
    if json_output:
        print(result.to_json().decode())
    else:
        _print_result(result)


def _open_engine(settings: Settings, mode: str) -> SearchEngine:
    """The index to query, local or sharded (a sharded one is searched shard by shard here)."""
    from ..search.engine import SearchEngine

    # A bm25 query never needs FAISS: not loading it keeps a one-off query's start short.
    return SearchEngine.open(settings.index_dir, settings, open_vectors=mode != "bm25")


def _build_seeds_if_missing(settings: Settings) -> None:
    """Index the seed corpus into a missing default index."""
    from ..storage.store import has_index  # not from build, which loads FAISS

    if has_index(settings.index_dir):
        return
    stderr.print(
        f"No index at {settings.index_dir}/ yet: indexing the seed corpus {settings.seeds_dir}/ "
        "(once)."
    )
    lifecycle.run_build([settings.seeds_dir], settings, quiet=True)


def _print_result(result: SearchResult) -> None:
    if not result.hits:
        stdout.print(f"No results for {result.query!r} ({result.mode}).")
        return
    for number, hit in enumerate(result.hits, start=result.offset + 1):
        stdout.print(_hit_heading(number, hit))
        stdout.print(_styled_text(hit), end="\n\n")
    stdout.print(
        f"[dim]{plural(len(result.hits), 'hit')} · {result.mode} · "
        f"generation {result.generation} · "
        f"{result.took_ms:.0f} ms[/dim]"
    )


def _hit_heading(number: int, hit: Hit) -> Text:
    heading = Text(f"{number}. ", style="bold")
    heading.append(hit.title or hit.doc_id, style="bold")
    where = f"page {hit.page}, " if hit.page is not None else ""
    heading.append(f"  {hit.doc_id} [{where}{hit.start}:{hit.end}]", style="dim")
    parts = [f"relevance {hit.relevance:.2f}" + (" (weak)" if hit.relevance < WEAK else "")]
    parts.append(f"score {hit.score:.4f}")
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


# ----- info ----------------------------------------------------------------------------------
@app.command()
def info(index: IndexOption = None, json_output: JsonOption = False) -> None:
    """Describe the live index: generation, counts, model, sources, size."""
    settings = make_settings(index)
    details = _open_engine(settings, "bm25").info()  # counts need no FAISS
    if json_output:
        print(json.dumps(details))
        return
    model = details["model"]
    stdout.print(f"index       {details['index']}")
    stdout.print(f"generation  {details['generation']} (built {details['created']})")
    live = details["live"]
    written = f" ({live['documents']:,} written live)" if live.get("documents") else ""
    stdout.print(f"documents   {details['documents']:,}{written}")
    stdout.print(f"passages    {details['passages']:,}")
    if "base" in live:
        stdout.print(f"delta over  generation {live['base']} (live writes up to {live['seq']})")
    stdout.print(f"model       {model['name']} ({model['dimension']} dims, {model['fingerprint']})")
    main, *others = details["languages"]
    also = f"; also {', '.join(others)}, detected in some documents" if others else ""
    stdout.print(f"language    {main} (how words in Latin script are stemmed{also})")
    stdout.print(f"size        {human_bytes(details['bytes'])}")
    if details["shards"] > 1:
        stdout.print(f"shards      {details['shards']}")
    stdout.print(f"fusion      {describe_fusion(FusionOptions(**details['fusion']))}")
    for source in details["sources"]:
        stdout.print(f"source      {source}")


app.command("index")(lifecycle.index_command)
app.command("rebuild")(lifecycle.rebuild_command)
app.command("verify")(lifecycle.verify_command)
app.command("generations")(lifecycle.generations_command)
app.command("rollback")(lifecycle.rollback_command)
app.command("watch")(lifecycle.watch_command)
app.command("add")(writes.add_command)
app.command("delete")(writes.delete_command)
app.command("eval")(evaluation.eval_command)
app.command("tune")(evaluation.tune_command)


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port.")] = 8000,
    index: IndexOption = None,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes.")] = 1,
    ray_address: RayAddressOption = None,
    replicas: Annotated[
        int, typer.Option("--replicas", min=1, help="With --ray-address: replicas per shard.")
    ] = 2,
) -> None:
    """Serve the HTTP API and the search page (uvicorn). Admin routes need SEARCHKIT_ADMIN_TOKEN.

    With --ray-address, serve a sharded index on Ray Serve: a deployment per shard and the API
    as a replicated ingress on the head node.
    """

    settings = make_settings(index)
    if not _is_loopback(host) and not settings.admin_token:
        raise UserInputError(
            f"refusing to bind {host} without an admin token: set SEARCHKIT_ADMIN_TOKEN first"
        )
    if ray_address is not None:
        _serve_cluster(ray_address, settings, host, port, replicas)
        return
    import uvicorn

    if index is None:
        _build_seeds_if_missing(settings)  # each worker then loads the model for itself
    _check_servable(settings, host, port)
    # Workers are fresh processes: they read their settings from the environment.
    os.environ["SEARCHKIT_INDEX_DIR"] = str(settings.index_dir.resolve())
    stderr.print(
        f"Serving {settings.index_dir}/ on http://{host}:{port}/ ({plural(workers, 'worker')})"
    )
    uvicorn.run(
        "searchkit.web.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,  # at "warning" it prints nothing, but still costs every request
    )


def _check_servable(settings: Settings, host: str, port: int) -> None:
    """What would stop the workers, found before anything says "Serving": an index that does
    not open, or a port already taken."""
    import socket

    from ..search.engine import SearchEngine

    SearchEngine.open(settings.index_dir, settings, open_vectors=False).close()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise PortInUseError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def _serve_cluster(address: str, settings: Settings, host: str, port: int, replicas: int) -> None:
    from ..sharded.ray_serve import serve_cluster, wait_until_stopped

    serve_cluster(address, settings.index_dir, settings, host=host, port=port, replicas=replicas)
    stderr.print(
        f"Serving the sharded index {settings.index_dir}/ on http://{host}:{port}/ "
        f"({replicas} replicas per shard); Ctrl-C takes it down"
    )
    wait_until_stopped()


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main() -> None:
    run(app)
