"""searchkit: hybrid full-text and semantic search over your own documents.

    from searchkit import SearchEngine, build_index

    build_index(["docs/"], "index")
    hits = SearchEngine.open("index").query("S-400 sanctions").hits

Attributes load lazily so that ``import searchkit`` stays cheap (no tantivy, FAISS or torch).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .build.builder import build_index
    from .build.writer import IndexWriter
    from .config import Settings
    from .errors import SearchkitError
    from .search.engine import SearchEngine
    from .search.fusion import FusionOptions

_LAZY = {
    "SearchEngine": "searchkit.search.engine",
    "FusionOptions": "searchkit.search.fusion",
    "build_index": "searchkit.build.builder",
    "IndexWriter": "searchkit.build.writer",
    "Settings": "searchkit.config",
    "SearchkitError": "searchkit.errors",
}

__all__ = [
    "FusionOptions",
    "IndexWriter",
    "SearchEngine",
    "SearchkitError",
    "Settings",
    "__version__",
    "build_index",
]


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'searchkit' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module_name), name)
