"""``passages.sqlite``: the passage and document tables of one generation, so that the build
(``build.builder``) and the reader (``search.reader``) share one schema and neither holds SQL."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..records import Document, FilterValue, Passage

_SCHEMA = """
CREATE TABLE documents (
    id INTEGER PRIMARY KEY,
    doc_id TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL,
    title TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    metadata TEXT NOT NULL
);
CREATE TABLE passages (
    id INTEGER PRIMARY KEY,
    document INTEGER NOT NULL REFERENCES documents(id),
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    page INTEGER,
    text TEXT NOT NULL,
    text_hash TEXT NOT NULL,
    embed_hash TEXT NOT NULL
);
CREATE INDEX passages_document ON passages(document);
"""
_CHUNK = 500  # SQL variables per statement, well under SQLite's limit


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class PassageRow:
    """A stored passage joined with its document."""

    passage_id: int
    doc_id: str
    path: str
    title: str
    start: int
    end: int
    page: int | None
    text: str


class CatalogWriter:
    """Appends documents and their passages; passage ids are assigned 0, 1, 2, ..."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path)
        self._db.executescript(_SCHEMA)
        self.passages = 0
        self.documents = 0

    def add(
        self, document: Document, passages: Iterable[Passage], embed_hashes: list[str]
    ) -> list[int]:
        """Store ``document`` and its passages; returns the passage ids given to them."""
        self._db.execute(
            "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?)",
            (
                self.documents,
                document.doc_id,
                document.path,
                document.title,
                content_hash(document.text),
                json.dumps(document.metadata, sort_keys=True),
            ),
        )
        ids = []
        for passage, embed_hash in zip(passages, embed_hashes, strict=True):
            self._db.execute(
                "INSERT INTO passages VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    self.passages,
                    self.documents,
                    passage.start,
                    passage.end,
                    passage.page,
                    passage.text,
                    content_hash(passage.text),
                    embed_hash,
                ),
            )
            ids.append(self.passages)
            self.passages += 1
        self.documents += 1
        return ids

    def close(self) -> None:
        self._db.commit()
        self._db.close()


class Catalog:
    """Read-only access to a generation's passages and documents."""

    def __init__(self, path: Path) -> None:
        # Read-only URI: a reader must never create or modify a generation's files.
        self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)

    def counts(self) -> tuple[int, int]:
        """(documents, passages)."""
        documents = self._db.execute("SELECT count(*) FROM documents").fetchone()[0]
        passages = self._db.execute("SELECT count(*) FROM passages").fetchone()[0]
        return int(documents), int(passages)

    def passages(self, ids: list[int]) -> dict[int, PassageRow]:
        """The passages with ``ids``, joined with their documents."""
        columns = "p.id, d.doc_id, d.path, d.title, p.start, p.end, p.page, p.text"
        return {row[0]: PassageRow(*row) for row in self._passage_rows(columns, ids)}

    def documents_of(self, ids: list[int]) -> dict[int, str]:
        """The document id of each of the passages ``ids``."""
        return dict(self._passage_rows("p.id, d.doc_id", ids))

    def _passage_rows(self, columns: str, ids: list[int]) -> Iterator[tuple[Any, ...]]:
        """``columns`` of the passages ``ids`` (``p``) joined with their documents (``d``)."""
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            yield from self._db.execute(
                f"SELECT {columns} FROM passages p JOIN documents d ON d.id = p.document "
                f"WHERE p.id IN ({marks})",
                chunk,
            )

    def fingerprint(self) -> str:
        """sha256 over every document and passage row (ids, paths, titles, metadata, offsets,
        text hashes): equal fingerprints, equal catalogs."""
        digest = hashlib.sha256()
        queries = (
            "SELECT doc_id, path, title, content_hash, metadata FROM documents ORDER BY id",
            'SELECT document, start, "end", page, text_hash, embed_hash FROM passages ORDER BY id',
        )
        for query in queries:
            for row in self._db.execute(query):
                digest.update(repr(row).encode())
        return digest.hexdigest()

    def document_hashes(self) -> dict[str, str]:
        """Content hash of every document, by document id."""
        return dict(self._db.execute("SELECT doc_id, content_hash FROM documents"))

    def embedding_rows(self) -> dict[str, int]:
        """For each distinct embedded text (by hash), a passage id whose embedding row holds it."""
        return dict(
            self._db.execute("SELECT embed_hash, min(id) FROM passages GROUP BY embed_hash")
        )

    def known_documents(self, doc_ids: set[str]) -> int:
        """How many of ``doc_ids`` this generation holds."""
        known = 0
        for chunk in _chunks(sorted(doc_ids)):
            marks = ",".join("?" * len(chunk))
            query = f"SELECT count(*) FROM documents WHERE doc_id IN ({marks})"
            known += self._db.execute(query, chunk).fetchone()[0]
        return int(known)

    def passages_of(self, doc_ids: list[str]) -> list[int]:
        """The ids of the passages of the documents ``doc_ids`` (those this catalog holds)."""
        found: list[int] = []
        for chunk in _chunks(doc_ids):
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                "SELECT p.id FROM passages p JOIN documents d ON d.id = p.document "
                f"WHERE d.doc_id IN ({marks})",
                chunk,
            )
            found.extend(row[0] for row in rows)
        return found

    def matching_passages(
        self, path_prefix: str | None, equals: dict[str, FilterValue]
    ) -> list[int]:
        """Ids of passages whose document path starts with ``path_prefix`` and whose metadata
        has each key of ``equals`` with that value: a string compared with the stored value as
        text (what a command line gives), a number or boolean with the stored number or
        boolean."""
        clauses: list[str] = []
        args: list[Any] = []
        if path_prefix:
            clauses.append("substr(d.path, 1, ?) = ?")
            args += [len(path_prefix), path_prefix]
        for key, value in equals.items():
            path = f'$."{key}"'
            if isinstance(value, bool):
                clauses.append("json_type(d.metadata, ?) = ?")
                args += [path, "true" if value else "false"]
            elif isinstance(value, int | float):
                clauses.append(
                    "json_type(d.metadata, ?) IN ('integer', 'real') "
                    "AND json_extract(d.metadata, ?) = ?"
                )
                args += [path, path, value]
            else:  # as text: a stored boolean reads "true" or "false", as JSON writes it
                clauses.append(
                    "CASE json_type(d.metadata, ?) WHEN 'true' THEN 'true' WHEN 'false' "
                    "THEN 'false' ELSE CAST(json_extract(d.metadata, ?) AS TEXT) END = ?"
                )
                args += [path, path, value]
        where = " AND ".join(clauses) or "1"
        rows = self._db.execute(
            f"SELECT p.id FROM passages p JOIN documents d ON d.id = p.document WHERE {where}",
            args,
        )
        return [row[0] for row in rows]

    def document(self, doc_id: str) -> dict[str, Any] | None:
        """A document's metadata and passages, or None."""
        row = self._db.execute(
            "SELECT id, doc_id, path, title, metadata FROM documents WHERE doc_id = ?", (doc_id,)
        ).fetchone()
        if row is None:
            return None
        passages = self._db.execute(
            "SELECT id, start, end, page, text FROM passages WHERE document = ? ORDER BY id",
            (row[0],),
        )
        return {
            "doc_id": row[1],
            "path": row[2],
            "title": row[3],
            "metadata": json.loads(row[4]),
            "passages": [
                {"id": p[0], "start": p[1], "end": p[2], "page": p[3], "text": p[4]}
                for p in passages
            ],
        }

    def close(self) -> None:
        self._db.close()


def _chunks(ids: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]
