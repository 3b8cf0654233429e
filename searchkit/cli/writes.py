"""``searchkit add`` and ``searchkit delete``: live documents from the command line, the same
writes as ``PUT``/``DELETE /documents`` (``build.writer``), searchable when the command ends."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import UserInputError
from .console import plural, stdout
from .options import IndexOption, JsonOption, make_settings


def add_command(
    file: Annotated[
        str,
        typer.Argument(
            help="JSON Lines, one document per line: id, text, and optional title and flat "
            "metadata (BEIR's _id works too); '-' reads standard input.",
            metavar="FILE",
        ),
    ],
    index: IndexOption = None,
    json_output: JsonOption = False,
) -> None:
    """Add or replace documents in the index as one batch, searchable when this returns."""
    documents = _read_lines(file)
    _write(index, json_output, "added", len(documents), lambda writer: writer.upsert(documents))


def delete_command(
    ids: Annotated[list[str], typer.Argument(help="Ids of the documents to delete.")],
    index: IndexOption = None,
    json_output: JsonOption = False,
) -> None:
    """Delete documents from the index by id, as one batch (unknown ids are no error)."""
    _write(index, json_output, "deleted", len(ids), lambda writer: writer.delete(ids))


def _said(verb: str, count: int) -> str:
    """What a batch did, in words: a delete names ids, which need not be in the index."""
    if verb == "deleted":
        return f"{plural(count, 'document id')} deleted where present"
    return f"{plural(count, 'document')} {verb}"


def _write(index: Path | None, json_output: bool, verb: str, count: int, write: Any) -> None:
    from ..build.writer import IndexWriter

    settings = make_settings(index)
    started = time.perf_counter()
    writer = IndexWriter(settings.index_dir, settings)
    seq = write(writer)
    generation = writer.wait_visible(seq)  # waits out a server's refresh or a rebuild
    if json_output:
        print(json.dumps({"seq": seq, "documents": count, "generation": generation}))
        return
    where = (
        f"searchable in generation {generation} of {settings.index_dir}/"
        if generation is not None
        else "durable, and searchable once the build now running ends"
    )
    seconds = time.perf_counter() - started
    stdout.print(f"{_said(verb, count)} (write {seq}); {where} ({seconds:.1f} s).")


def _read_lines(file: str) -> list[dict[str, Any]]:
    """The documents of a JSON Lines file (or stdin); any invalid line refuses them all."""
    if file != "-" and not Path(file).is_file():
        raise UserInputError(f"no such file: {file}")
    try:
        raw = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
        lines = raw.decode("utf-8-sig").split("\n")  # a BOM is no part of the first line
    except UnicodeDecodeError as exc:
        source = "standard input" if file == "-" else file
        raise UserInputError(
            f"{source} is not UTF-8 (byte {exc.start}); nothing was written"
        ) from None
    documents = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise UserInputError(
                f"{file}: line {number} is not valid JSON ({exc}); nothing was written"
            ) from None
        if not isinstance(record, dict):
            raise UserInputError(f"{file}: line {number} is not a JSON object; nothing was written")
        documents.append(record)
    if not documents:
        raise UserInputError(f"{file} holds no documents")
    return documents
