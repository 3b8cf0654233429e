"""Holds ARCHITECTURE.md's rules, read from its ``layers``, ``owners`` and ``shells`` blocks:
imports point down the layers, siblings stay apart, no import cycle, third-party packages stay
with their owners, only the shells print or exit, and every module is on the map.

An AST walk rather than import-linter: the rules live once, in the page a reader reads, and one
walk also checks third-party owners and printing, which would need a contract per package there.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "searchkit"
ARCHITECTURE = ROOT / "ARCHITECTURE.md"
OUTSIDE_LAYERS = {"searchkit", "searchkit.__main__"}


def _block(kind: str) -> list[str]:
    match = re.search(rf"```{kind}\n(.*?)```", ARCHITECTURE.read_text(), re.S)
    assert match, f"ARCHITECTURE.md has no {kind} block"
    return [line.strip() for line in match.group(1).splitlines() if line.strip()]


@cache
def _layers() -> dict[str, int]:
    """Package -> its layer; layer 0 is the top, siblings share a layer."""
    return {
        package.strip(): layer
        for layer, line in enumerate(_block("layers"))
        for package in line.split("|")
    }


@cache
def _owners() -> dict[str, set[str]]:
    owners = {}
    for line in _block("owners"):
        package, _, names = line.partition(":")
        owners[package.strip()] = set(names.split())
    return owners


def _name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _modules() -> dict[str, ast.Module]:
    return {_name(path): ast.parse(path.read_text()) for path in PACKAGE.rglob("*.py")}


def _imports(name: str) -> tuple[set[str], set[str]]:
    """(searchkit modules, top-level third-party packages) imported anywhere in ``name``,
    function-level imports included."""
    is_package = (PACKAGE.parent / name.replace(".", "/") / "__init__.py").is_file()
    base = name.split(".") if is_package else name.split(".")[:-1]
    internal, external = set(), set()
    for node in ast.walk(_modules()[name]):
        if isinstance(node, ast.ImportFrom) and node.level:
            anchor = ".".join(base[: len(base) - node.level + 1])
            if node.module:
                internal.add(f"{anchor}.{node.module}")
            else:
                internal.update(f"{anchor}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            target = internal if node.module.startswith("searchkit") else external
            target.add(node.module if target is internal else node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            external.update(alias.name.split(".")[0] for alias in node.names)
    return {m for m in internal if m in _modules()}, external - {"searchkit"}


def _package(module: str) -> str:
    """The layer unit a module belongs to: its sub-package, or itself for a leaf module."""
    return module.split(".")[1] if module.count(".") else module


def _owned_by(module: str, owners: set[str]) -> bool:
    short = module.removeprefix("searchkit.")
    return any(short == owner or short.startswith(owner + ".") for owner in owners)


LAYERED = sorted(set(_modules()) - OUTSIDE_LAYERS)


def test_every_module_is_on_the_map() -> None:
    for name in LAYERED:
        assert _package(name) in _layers(), f"{name}: add its package to ARCHITECTURE.md's layers"
        short = name.removeprefix("searchkit.").rsplit(".", 1)[-1]
        assert f"`{short}`" in ARCHITECTURE.read_text(), f"{name}: add it to the module map"


@pytest.mark.parametrize("name", LAYERED)
def test_imports_point_down_the_layers(name: str) -> None:
    layer = _layers()[_package(name)]
    for target in _imports(name)[0]:
        if _package(target) == _package(name) or target in OUTSIDE_LAYERS:
            continue
        assert _layers()[_package(target)] > layer, (
            f"{name} imports {target}, which is not in a lower layer"
        )


@pytest.mark.parametrize("name", sorted(_modules()))
def test_third_party_packages_stay_with_their_owners(name: str) -> None:
    for package in _imports(name)[1]:
        owners = _owners().get(package)
        assert owners is None or _owned_by(name, owners), f"only {owners} may import {package}"


def test_no_import_cycle() -> None:
    graph = {name: _imports(name)[0] - {name} for name in _modules()}
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            pytest.fail("import cycle: " + " -> ".join([*path[path.index(name) :], name]))
        if name in done:
            return
        for target in graph[name]:
            visit(target, [*path, name])
        done.add(name)

    for name in graph:
        visit(name, [])


@pytest.mark.parametrize("name", [n for n in LAYERED if _package(n) not in _block("shells")])
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
    for path in PACKAGE.rglob("*.py"):
        assert len(path.read_text().splitlines()) <= 350, f"{path.name} is due for a split"
