"""The README's two commands: `make demo` installs what the demo needs, `make test` the rest."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _planned(target: str) -> str:
    """What ``make TARGET`` would run from scratch (``-n``: nothing runs; ``-B``: as if new)."""
    done = subprocess.run(
        ["make", "-n", "-B", target], cwd=REPO, capture_output=True, text=True, check=True
    )
    return done.stdout


def test_demo_installs_no_test_tools_or_cluster_extra() -> None:
    demo = _planned("demo")
    assert "torch==2.13.0" in demo and "install -e ." in demo
    assert "[dev" not in demo and "cluster" not in demo


def test_test_installs_the_extras_before_the_suite() -> None:
    test = _planned("test")
    assert '".[dev,cluster]"' in test
    assert test.index("[dev,cluster]") < test.index("pytest")
