"""One generation on disk: the names of its parts, and the check that they hold the same passages.

A generation directory holds ``manifest.json`` (counts, model, file sizes and checksums), the
tantivy index ``lexical/``, the FAISS index ``vectors.faiss``, the passage and document tables
``passages.sqlite`` and the raw vectors ``embeddings.f32`` (read only by the next build, for reuse).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import IndexCorruptError

MANIFEST = "manifest.json"
LEXICAL = "lexical"
VECTORS = "vectors.faiss"
CATALOG = "passages.sqlite"
EMBEDDINGS = "embeddings.f32"


def generation_name(number: int) -> str:
    return f"g{number:06d}"


def passage_counts(root: Path) -> dict[str, int]:
    """How many passages each searchable part of the generation at ``root`` holds."""
    from .catalog import Catalog
    from .lexical import LexicalIndex
    from .vectors import VectorIndex  # FAISS: only builds and verify count all three parts

    catalog = Catalog(root / CATALOG)
    try:
        return {
            LEXICAL: LexicalIndex(root / LEXICAL).count,
            VECTORS: VectorIndex(root / VECTORS).count,
            CATALOG: catalog.counts()[1],
        }
    finally:
        catalog.close()


def check_counts(number: int, counts: dict[str, int], expected: int) -> None:
    """Refuse a generation whose parts disagree with its manifest's passage count."""
    for part, count in counts.items():
        if count != expected:
            raise corrupt(number, f"{part} holds {count} passages, not {expected}")


def corrupt(number: int, detail: str) -> IndexCorruptError:
    return IndexCorruptError(
        f"generation {generation_name(number)} is inconsistent: {detail}; rebuild the index"
    )
