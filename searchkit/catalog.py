"""``passages.sqlite``: the passage and document tables of one generation.

DESIGN.md names the file but no module; it gets its own so that ``build`` and ``engine`` share
one schema and neither holds SQL.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .records import Document, Passage

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
    text TEXT NOT NULL,
    text_hash TEXT NOT NULL
);
CREATE INDEX passages_document ON passages(document);
"""


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
    text: str


class CatalogWriter:
    """Appends documents and their passages; passage ids are assigned 0, 1, 2, ..."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path)
        self._db.executescript(_SCHEMA)
        self.passages = 0
        self.documents = 0

    def add(self, document: Document, passages: Iterable[Passage]) -> list[int]:
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
        for passage in passages:
            self._db.execute(
                "INSERT INTO passages VALUES (?, ?, ?, ?, ?, ?)",
                (
                    self.passages,
                    self.documents,
                    passage.start,
                    passage.end,
                    passage.text,
                    content_hash(passage.text),
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
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._db.execute(
            "SELECT p.id, d.doc_id, d.path, d.title, p.start, p.end, p.text "
            f"FROM passages p JOIN documents d ON d.id = p.document WHERE p.id IN ({marks})",
            ids,
        )
        return {row[0]: PassageRow(*row) for row in rows}

    def passage_documents(self) -> list[str]:
        """The document id of every passage, indexed by passage id."""
        rows = self._db.execute(
            "SELECT d.doc_id FROM passages p JOIN documents d ON d.id = p.document ORDER BY p.id"
        )
        return [row[0] for row in rows]

    def known_documents(self, doc_ids: set[str]) -> int:
        """How many of ``doc_ids`` this generation holds."""
        known = 0
        ids = sorted(doc_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT count(*) FROM documents WHERE doc_id IN ({marks})"
            known += self._db.execute(query, chunk).fetchone()[0]
        return int(known)

    def document(self, doc_id: str) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT id, doc_id, path, title, metadata FROM documents WHERE doc_id = ?", (doc_id,)
        ).fetchone()
        if row is None:
            return None
        return {"doc_id": row[1], "path": row[2], "title": row[3], "metadata": json.loads(row[4])}

    def close(self) -> None:
        self._db.close()
