"""Holds DESIGN.md's dependency rules: stages never import each other; only build and engine
compose them; the interfaces call the library; nothing below the interfaces prints or exits."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "searchkit"

LEAVES = {"errors", "records", "config"}
STAGES = {
    "documents",
    "passages",
    "lexical",
    "embed",
    "embed_batches",
    "embed_torch",
    "embed_onnx",
    "vectors",
    "fusion",
    "highlight",
    "store",
    "catalog",
}
EMBEDDING = {"embed", "embed_batches", "embed_torch", "embed_onnx"}
COMPOSERS = {
    "build",
    "engine",
    "hits",
    "reuse",
    "lifecycle",
    "watch",
    "live",
    "jobs",
    "shards",
    "fanout",
    "cluster",
    "precomputed",
    "query_check",
}
EVALUATION = {"evaluate", "tune"}
INTERFACES = {
    "cli",
    "cli_eval",
    "cli_index",
    "cli_options",
    "console",
    "web",
    "web_models",
    "web_limits",
    "cluster_serve",
}
# Which searchkit modules each kind may import.
ALLOWED = {
    **{name: set() for name in LEAVES},
    **dict.fromkeys(STAGES, LEAVES),
    # One stage in four modules: the protocol, its batching and its two backends.
    **dict.fromkeys(EMBEDDING, LEAVES | EMBEDDING),
    **dict.fromkeys(COMPOSERS, LEAVES | STAGES | COMPOSERS),
    **dict.fromkeys(EVALUATION, LEAVES | COMPOSERS | EVALUATION | {"embed", "fusion"}),
    **dict.fromkeys(
        INTERFACES, LEAVES | COMPOSERS | EVALUATION | INTERFACES | {"highlight", "embed", "fusion"}
    ),
}
# Third-party packages that only the named modules may import.
OWNERS = {
    "tantivy": {"lexical"},
    "faiss": {"vectors"},
    "sentence_transformers": {"embed_torch"},
    "transformers": {"embed_torch", "embed_onnx"},
    "torch": {"embed_torch", "embed_onnx"},
    "onnxruntime": {"embed_onnx"},
    "tokenizers": {"embed"},
    "selectolax": {"documents"},
    "pydantic_settings": {"config"},
    "pypdf": {"documents"},
    "watchfiles": {"watch"},
    "typer": {"cli", "cli_eval", "cli_index", "cli_options"},
    "rich": INTERFACES,
    "fastapi": {"web"},
    "uvicorn": {"cli"},
    "ir_measures": {"evaluate"},
    "ray": {"cluster", "cluster_serve"},
}


def _modules() -> dict[str, ast.Module]:
    return {
        path.stem: ast.parse(path.read_text())
        for path in PACKAGE.glob("*.py")
        if path.stem not in {"__init__", "__main__"}
    }


def _imports(tree: ast.Module) -> tuple[set[str], set[str]]:
    """(searchkit modules, top-level third-party packages) imported anywhere in ``tree``."""
    internal, external = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                if node.module:
                    internal.add(node.module.split(".")[0])
                else:
                    internal.update(alias.name for alias in node.names)
            elif node.module:
                external.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            external.update(alias.name.split(".")[0] for alias in node.names)
    return internal, external


def test_every_module_has_a_place() -> None:
    assert set(_modules()) <= set(ALLOWED), "add new modules to the layer map"


@pytest.mark.parametrize("name", sorted(_modules()))
def test_dependency_direction(name: str) -> None:
    internal, external = _imports(_modules()[name])
    assert internal <= ALLOWED[name], f"{name} imports {internal - ALLOWED[name]}"
    for package, owner in OWNERS.items():
        assert package not in external or name in owner, f"only {owner} may import {package}"


@pytest.mark.parametrize("name", sorted(set(_modules()) - INTERFACES))
def test_library_modules_never_print_or_exit(name: str) -> None:
    for node in ast.walk(_modules()[name]):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in {"print", "exit", "quit"}, f"{name} calls {node.func.id}"
        if isinstance(node, ast.Attribute) and node.attr == "exit":
            assert not (isinstance(node.value, ast.Name) and node.value.id == "sys")


def test_import_searchkit_is_light() -> None:
    code = (
        "import sys, searchkit\n"
        "heavy = {'torch', 'sentence_transformers', 'fastapi', 'tantivy', 'faiss'}\n"
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_modules_stay_small() -> None:
    for path in PACKAGE.glob("*.py"):
        assert len(path.read_text().splitlines()) <= 350, f"{path.name} is due for a split"
