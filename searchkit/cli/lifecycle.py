"""Index lifecycle commands: index, rebuild, verify, generations, rollback, watch.

Registered on the app by ``cli.app``; errors are mapped to exit codes in ``cli.shell``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..config import Settings
from .console import plural, stderr, stdout, terminal_progress
from .options import (
    BackendOption,
    DeviceOption,
    IndexOption,
    JsonOption,
    LanguageOption,
    RayAddressOption,
    make_settings,
)

if TYPE_CHECKING:
    from ..records import BuildReport
    from ..sharded.ray_build import ClusterReport

PathsArgument = Annotated[
    list[Path], typer.Argument(help="Files or folders: .txt .md .html .pdf, .jsonl (BEIR corpus).")
]
QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress bars and no summary: only errors.")
]
ShrinkOption = Annotated[
    bool,
    typer.Option(
        "--allow-shrink", help="Allow publishing an empty or much smaller index than the live one."
    ),
]


def index_command(
    paths: PathsArgument,
    index: IndexOption = None,
    quiet: QuietOption = False,
    allow_shrink: ShrinkOption = False,
    json_output: JsonOption = False,
    backend: BackendOption = None,
    device: DeviceOption = None,
    language: LanguageOption = None,
) -> None:
    """Build a new index generation holding exactly PATHS, then make it live."""
    settings = make_settings(index, backend=backend, device=device, language=language)
    report = run_build(paths, settings, quiet=quiet or json_output, allow_shrink=allow_shrink)
    if json_output:
        print(json.dumps(report.to_dict()))


def rebuild_command(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Sources to index (default: those of the live generation)."),
    ] = None,
    index: IndexOption = None,
    full: Annotated[
        bool, typer.Option("--full", help="Encode every passage again; reuse nothing.")
    ] = False,
    quiet: QuietOption = False,
    allow_shrink: ShrinkOption = False,
    json_output: JsonOption = False,
    backend: BackendOption = None,
    device: DeviceOption = None,
    language: LanguageOption = None,
    ray_address: RayAddressOption = None,
    shards: Annotated[
        int | None,
        typer.Option(
            "--shards",
            min=1,
            help="With --ray-address: how many shards (default: as many as the live sharded "
            "index has, else 2).",
        ),
    ] = None,
    actors: Annotated[
        int | None,
        typer.Option(
            "--actors",
            min=1,
            help="With --ray-address: most embedding actors (default: one per free CPU).",
        ),
    ] = None,
) -> None:
    """Re-read the sources and publish a new generation, encoding only what changed.

    With --ray-address, the rebuild runs on a Ray cluster and writes a sharded index.
    """
    from ..build.builder import live_sources

    settings = make_settings(index, backend=backend, device=device, language=language)
    if ray_address is not None:
        sharded = _cluster_rebuild(
            paths, settings, ray_address, shards, actors, full=full, quiet=quiet or json_output
        )
        if json_output:
            print(json.dumps(sharded.to_dict()))
        return
    sources = paths or live_sources(settings.index_dir)
    report = run_build(
        sources,
        settings,
        quiet=quiet or json_output,
        reuse=not full,
        allow_shrink=allow_shrink,
    )
    if json_output:
        print(json.dumps(report.to_dict()))


def _cluster_rebuild(
    paths: list[Path] | None,
    settings: Settings,
    address: str,
    shards: int | None,
    actors: int | None,
    *,
    full: bool,
    quiet: bool,
) -> ClusterReport:
    """Rebuild the sharded index on the Ray cluster at ``address``."""
    from ..sharded.ray_build import rebuild_sharded

    started = time.perf_counter()
    report = rebuild_sharded(
        settings.index_dir,
        settings,
        address,
        paths,
        shards,
        actors=actors,
        reuse=not full,
        on_stage=None if quiet else lambda stage: stderr.print(f"{stage} ..."),
    )
    if not quiet:
        stderr.print(
            f"Indexed {plural(report.documents, 'document')} as "
            f"{plural(report.passages, 'passage')} into {report.shards} shards under "
            f"{settings.index_dir}/ (cluster manifest {report.version}) in "
            f"{time.perf_counter() - started:.1f} s"
        )
        stderr.print(f"  passages: {report.encoded} encoded, {report.reused} reused")
    return report


def run_build(
    paths: list[Path],
    settings: Settings,
    *,
    quiet: bool,
    reuse: bool = True,
    allow_shrink: bool = False,
) -> BuildReport:
    """Build with progress bars on stderr, then say what the build did."""
    from ..build.builder import SilentProgress, build_index

    started = time.perf_counter()
    progress: Any = SilentProgress() if quiet else terminal_progress()
    try:
        report = build_index(
            paths,
            settings.index_dir,
            settings,
            None,
            progress,
            reuse=reuse,
            allow_shrink=allow_shrink,
        )
    except BaseException:
        if not quiet:
            progress.close(completed=False)
        raise
    if not quiet:
        progress.close()
    if not quiet:
        _print_report(report, settings.index_dir, time.perf_counter() - started)
    return report


def _print_report(report: BuildReport, index_dir: Path, seconds: float) -> None:
    if not report.published:
        stderr.print(
            f"Nothing changed since generation {report.generation} of {index_dir}/: it stays "
            f"live, and no generation was published ({plural(report.documents, 'document')}, "
            f"checked in {seconds:.1f} s)."
        )
        return
    if report.model_changed:
        stderr.print("The embedding model changed since the last build: every passage was encoded.")
    stderr.print(
        f"Indexed {plural(report.documents, 'document')} as "
        f"{plural(report.passages, 'passage')} into {index_dir}/ "
        f"(generation {report.generation}) in {seconds:.1f} s"
    )
    stderr.print(
        f"  documents: {report.added} added, {report.changed} changed, {report.removed} removed"
        + (f", {len(report.skipped)} skipped" if report.skipped else "")
    )
    stderr.print(f"  passages: {report.encoded} encoded, {report.reused} reused")
    stages = ", ".join(f"{name} {value:.1f} s" for name, value in report.seconds.items())
    stderr.print(f"  stages: {stages}")


def verify_command(
    index: IndexOption = None,
    deep: Annotated[bool, typer.Option("--deep", help="Also check every file's sha256.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Check the live generation: files, sizes, counts, and with --deep every checksum."""
    from ..build.lifecycle import verify

    settings = make_settings(index)
    problems = verify(settings.index_dir, deep=deep)
    if json_output:
        print(json.dumps({"ok": not problems, "problems": [str(p) for p in problems]}))
    elif not problems:
        stdout.print(f"{settings.index_dir}: OK" + (" (checksums verified)" if deep else ""))
    if problems:
        if not json_output:
            for problem in problems:
                print(f"error: {problem}", file=sys.stderr)
        raise typer.Exit(1)


def generations_command(index: IndexOption = None, json_output: JsonOption = False) -> None:
    """List the generations on disk with their provenance."""
    from ..build.lifecycle import generations

    listed = generations(make_settings(index).index_dir)
    if json_output:
        print(json.dumps(listed))
        return
    for entry in listed:
        marker = "*" if entry["live"] else " "
        if "error" in entry:
            stdout.print(f"{marker} {entry['generation']:>4}  unreadable: {entry['error']}")
            continue
        live = f", {entry['live_documents']:,} written live" if entry["live_documents"] else ""
        delta = f" (delta over {entry['delta_of']})" if entry["delta_of"] is not None else ""
        stdout.print(
            f"{marker} {entry['generation']:>4}{delta}  {entry['created']}  "
            f"{plural(entry['documents'], 'document')}{live}, "
            f"{plural(entry['passages'], 'passage')} "
            f"({entry['encoded']:,} encoded, {entry['reused']:,} reused)  {entry['model']}  "
            f"{', '.join(entry['sources'])}"
        )


def rollback_command(
    generation: Annotated[
        int | None, typer.Argument(help="Generation to make live (default: the previous one).")
    ] = None,
    index: IndexOption = None,
) -> None:
    """Make an older generation live again."""
    from ..build.lifecycle import rollback

    settings = make_settings(index)
    number = rollback(settings.index_dir, generation)
    stderr.print(f"Generation {number} of {settings.index_dir}/ is live.")


def watch_command(
    paths: PathsArgument, index: IndexOption = None, quiet: QuietOption = False
) -> None:
    """Keep the index in sync with PATHS: rebuild after each burst of changes."""
    from ..build.watch import watch_sources

    settings = make_settings(index)
    if not quiet:
        stderr.print(f"Watching {', '.join(str(p) for p in paths)} (Ctrl-C to stop).")

    def report(built: BuildReport) -> None:
        if not quiet:
            _print_report(built, settings.index_dir, sum(built.seconds.values()))

    watch_sources(paths, settings.index_dir, settings, report)
