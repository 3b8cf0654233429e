"""Sources on disk -> ``Document`` records.

Reads plain text, Markdown, HTML, PDF and BEIR ``corpus.jsonl`` files from files or folder trees.
Binary, empty and oversized files are skipped with one warning each; undecodable bytes are
replaced and counted; symbolic links are never followed out of the root they were found under.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import SourceError
from ..records import Document

log = logging.getLogger("searchkit")

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".text"}
HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
JSONL_SUFFIXES = {".jsonl"}
PDF_SUFFIXES = {".pdf"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | JSONL_SUFFIXES | PDF_SUFFIXES
MAX_FILE_BYTES = 64 * 1024 * 1024
_TITLE_MAX_CHARS = 200
_TITLE_MAX_WORDS = 24
_BLOCK_TAGS = (
    "p,div,li,h1,h2,h3,h4,h5,h6,pre,blockquote,td,th,tr,section,article,br,hr,table,ul,ol,dl,"
    "dt,dd,header,footer,main,nav,aside,figure,figcaption,form,address,details,summary"
)
_INVISIBLE_TAGS = "head,script,style,noscript,template,svg,iframe,object"


@dataclass
class IngestStats:
    """What ingestion saw beyond the documents it yielded."""

    skipped: list[str] = field(default_factory=list)
    replaced_chars: int = 0
    recoded: dict[str, str] = field(default_factory=dict)  # path -> the encoding detected

    def skip(self, path: str, why: str) -> None:
        self.skipped.append(path)
        log.warning("skipped %s: %s", path, why)


def iter_documents(
    sources: Iterable[Path],
    stats: IngestStats | None = None,
    base: Path | None = None,
) -> Iterator[Document]:
    """Every document under ``sources`` (files or folders), in a stable order; file ids are
    paths relative to ``base`` (default: ``id_base(sources)``)."""
    stats = stats if stats is not None else IngestStats()
    roots = [Path(s).resolve() for s in sources]
    if not roots:
        raise SourceError("no sources given: name at least one file or folder")
    for root in roots:
        if not root.exists():
            raise SourceError(f"source not found: {root}")
    base = id_base(roots) if base is None else Path(base).resolve()
    seen: dict[str, Path] = {}
    for root in roots:
        for path in _walk(root, stats):
            doc_path = Path(os.path.relpath(path, base)).as_posix()
            for document in _read_file(path, doc_path, stats):
                if document.doc_id in seen:
                    raise _clash(document.doc_id, seen[document.doc_id], path)
                seen[document.doc_id] = path
                yield document


def id_base(sources: Iterable[Path], previous: Path | None = None) -> Path:
    """The folder that file ids are relative to: the folder indexed, the folder of the file
    indexed, or the deepest folder holding all of several. A ``previous`` base that holds every
    source is kept, so that naming part of what was indexed (``rebuild docs/web`` after
    ``index docs``) keeps the ids of the documents that stay."""
    folders = [Path(s).resolve() if Path(s).is_dir() else Path(s).resolve().parent for s in sources]
    if previous is not None and all(f.is_relative_to(previous) for f in folders):
        return previous
    return Path(os.path.commonpath(folders))


def _clash(doc_id: str, first: Path, second: Path) -> SourceError:
    where = f"{first}" if first == second else f"{first} and {second}"
    return SourceError(
        f"two documents have the id {doc_id!r} ({where}); a file's id is its path below the "
        "folder indexed (below the deepest folder holding them all when several are given), "
        "a BEIR record's id its _id: rename one, or index them into separate indexes"
    )


def _walk(root: Path, stats: IngestStats) -> Iterator[Path]:
    """Supported files under ``root``, sorted."""
    if root.is_file():
        yield root
        return
    real_root = root.resolve()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if name.startswith(".") or path.suffix.lower() not in SUPPORTED_SUFFIXES:
                continue
            rel = path.relative_to(root).as_posix()
            if path.is_symlink() and not path.resolve().is_relative_to(real_root):
                stats.skip(rel, "symbolic link pointing outside the source folder")
                continue
            yield path


def _read_file(path: Path, doc_path: str, stats: IngestStats) -> Iterator[Document]:
    try:  # a file can vanish or lose its permissions between the walk and the read
        if path.stat().st_size > MAX_FILE_BYTES:
            stats.skip(doc_path, f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
            return
        raw = path.read_bytes()
        facts = _file_facts(path)
    except OSError as exc:
        stats.skip(doc_path, f"cannot read ({exc.strerror or exc})")
        return
    suffix = path.suffix.lower()
    if suffix in PDF_SUFFIXES:
        document = _pdf_document(raw, doc_path, stats)
        if document is not None:
            yield replace(document, metadata=facts)
        return
    if b"\x00" in raw[:8192]:
        stats.skip(doc_path, "binary file")
        return
    text = _decode(raw, doc_path, stats)
    if not text.strip():
        stats.skip(doc_path, "empty file")
        return
    if suffix in JSONL_SUFFIXES:
        yield from _beir_documents(text, doc_path, stats)
    elif suffix in HTML_SUFFIXES:
        document = _html_document(text, doc_path)
        if document.text:
            yield replace(document, metadata=facts)
        else:
            stats.skip(doc_path, "no visible text")
    else:
        document = _text_document(text, doc_path, markdown=suffix in {".md", ".markdown"})
        yield replace(document, metadata=facts)


def _file_facts(path: Path) -> dict[str, Any]:
    """Metadata every file-based document carries (usable as filters)."""
    stat = path.stat()
    modified = datetime.fromtimestamp(stat.st_mtime, UTC).isoformat(timespec="seconds")
    return {"size": stat.st_size, "mtime": modified, "type": _file_type(path)}


def _file_type(path: Path) -> str:
    """The ``type`` filter value: one name per format (``.htm`` and ``.xhtml`` are html)."""
    suffix = path.suffix.lower()
    return "html" if suffix in HTML_SUFFIXES else suffix.lstrip(".")


def _pdf_document(raw: bytes, doc_path: str, stats: IngestStats) -> Document | None:
    """Text per page through pypdf; the offset where each page starts is kept."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(raw))
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
        title = str(reader.metadata.title or "").strip() if reader.metadata else ""
    except (PyPdfError, ValueError, KeyError, TypeError) as exc:
        stats.skip(doc_path, f"unreadable PDF ({exc})")
        return None
    starts, parts, offset = [], [], 0
    for page_text in pages:
        starts.append(offset)
        parts.append(page_text)
        offset += len(page_text) + 2  # the blank line that joins pages
    text = "\n\n".join(parts)
    if not text.strip():
        stats.skip(doc_path, "PDF without extractable text")
        return None
    title = title or _pdf_title(text, doc_path)
    return Document(doc_id=doc_path, path=doc_path, text=text, title=title, pages=tuple(starts))


def _pdf_title(text: str, doc_path: str) -> str:
    """A PDF without a title in its metadata: its first line when short enough to be one
    (a final period is a typesetting habit there, not the end of prose), else its file name."""
    first = text.strip().split("\n", 1)[0].strip().rstrip(".").strip()
    if 0 < len(first) <= _TITLE_MAX_CHARS and len(first.split()) <= _TITLE_MAX_WORDS:
        return first
    return PurePosixPath(doc_path).stem


def _decode(raw: bytes, doc_path: str, stats: IngestStats) -> str:
    """UTF-8, or else the encoding ``charset-normalizer`` detects (with a warning naming it),
    or else UTF-8 with the undecodable bytes replaced."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    encoding = _detect_encoding(raw)
    if encoding is not None:
        stats.recoded[doc_path] = encoding
        log.warning("%s is not UTF-8: read as %s (detected)", doc_path, encoding)
        return raw.decode(encoding)
    text = raw.decode("utf-8-sig", errors="replace")
    replaced = text.count("\ufffd") - raw.count("\ufffd".encode())
    stats.replaced_chars += replaced
    log.warning("%s: %d undecodable byte sequences replaced", doc_path, replaced)
    return text


def _detect_encoding(raw: bytes) -> str | None:
    """The most plausible legacy encoding of ``raw``. Short texts often fit several equally
    well; windows-1252 then wins, as browsers read undeclared Western text (WHATWG)."""
    from charset_normalizer import from_bytes

    candidates = list(from_bytes(raw))
    if not candidates:
        return None
    best = min((c.chaos, -c.coherence) for c in candidates)
    tied = [c.encoding for c in candidates if (c.chaos, -c.coherence) == best]
    return "cp1252" if "cp1252" in tied else tied[0]


def _text_document(text: str, doc_path: str, *, markdown: bool) -> Document:
    text = text.replace("\r\n", "\n")
    title, body_start = _title_line(text, markdown=markdown)
    return Document(doc_id=doc_path, path=doc_path, text=text, title=title, body_start=body_start)


def _title_line(text: str, *, markdown: bool) -> tuple[str, int]:
    """A short first line without final punctuation, followed by more text, is the title."""
    leading = len(text) - len(text.lstrip())
    end = text.find("\n", leading)
    if end < 0:
        return "", 0
    line = text[leading:end].strip()
    if markdown:
        line = line.lstrip("#").strip()
    looks_like_title = (
        0 < len(line) <= _TITLE_MAX_CHARS
        and len(line.split()) <= _TITLE_MAX_WORDS
        and line[-1] not in ".!?;,"
        and text[end:].strip() != ""
    )
    return (line, end + 1) if looks_like_title else ("", 0)


def _html_document(html: str, doc_path: str) -> Document:
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(html)
    title_node = tree.css_first("title") or tree.css_first("h1,h2,h3")
    title = " ".join(title_node.text().split()) if title_node is not None else ""
    for node in tree.css(_INVISIBLE_TAGS):
        node.decompose()
    for node in tree.css(_BLOCK_TAGS):
        node.insert_before("\n\n")
        node.insert_after("\n\n")
    root = tree.body or tree.root
    raw_text = root.text(separator="") if root is not None else ""
    blocks = (" ".join(block.split()) for block in re.split(r"\n\s*\n", raw_text))
    text = "\n\n".join(b for b in blocks if b)
    return Document(doc_id=doc_path, path=doc_path, text=text, title=title)


def _beir_documents(text: str, doc_path: str, stats: IngestStats) -> Iterator[Document]:
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            stats.skip(f"{doc_path}:{line_no}", f"invalid JSON at line {line_no} ({exc.msg})")
            continue
        if not isinstance(record, dict) or "_id" not in record:
            stats.skip(f"{doc_path}:{line_no}", "not a BEIR record with an _id")
            continue
        doc_id = str(record["_id"])
        body = str(record.get("text") or "")
        if not body.strip():
            stats.skip(f"{doc_path}:{line_no}", f"document {doc_id} has no text")
            continue
        metadata = record.get("metadata")
        yield Document(
            doc_id=doc_id,
            path=doc_path,
            text=body,
            title=str(record.get("title") or ""),
            metadata=metadata if isinstance(metadata, dict) else {},
        )
