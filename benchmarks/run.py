"""searchkit benchmark harness: measures, prints, and writes benchmarks/RESULTS.md + results.json.

Run with `make bench` (never part of `make test`). Every figure comes from a command run here,
and RESULTS.md names that command next to the figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SEARCHKIT = str(Path(sys.executable).with_name("searchkit"))
MODES = ("bm25", "vector", "hybrid")


@dataclass
class Row:
    what: str
    median_s: float
    min_s: float
    runs: int
    command: str


def timed(argv: list[str], runs: int) -> list[float]:
    """Wall seconds of ``runs`` fresh processes running ``argv`` (each must exit 0)."""
    walls = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, cwd=REPO)
        walls.append(time.perf_counter() - started)
    return walls


def row(what: str, argv: list[str], runs: int) -> Row:
    walls = timed(argv, runs)
    shown = " ".join(a if " " not in a else f'"{a}"' for a in argv).replace(SEARCHKIT, "searchkit")
    result = Row(what, statistics.median(walls), min(walls), runs, shown)
    print(f"{what:<44} median {result.median_s:6.2f} s   min {result.min_s:6.2f} s   ({runs} runs)")
    return result


def core_figures(runs: int) -> list[Row]:
    """Seeds build time and cold-process query time per mode."""
    with tempfile.TemporaryDirectory() as tmp:
        index = str(Path(tmp) / "index")
        rows = [
            row(
                "build seeds/ index (whole process)",
                [SEARCHKIT, "index", "seeds", "--index", index, "--quiet"],
                runs,
            )
        ]
        for mode in MODES:
            argv = [
                SEARCHKIT,
                "query",
                "S-400 sanctions",
                "--mode",
                mode,
                "--index",
                index,
                "--json",
            ]
            rows.append(row(f"cold `searchkit query` --mode {mode}", argv, runs))
    return rows


def machine() -> str:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def write_results(rows: list[Row]) -> None:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmark results",
        "",
        f"Written by `make bench` (`python benchmarks/run.py`) on {stamp}.",
        f"Machine: {machine()}.",
        "",
        "## Core: build and cold-process queries on the seed corpus",
        "",
        "Whole-process wall time, including interpreter start, imports and model load.",
        "",
        "| what | median | min | runs | command |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.what} | {r.median_s:.2f} s | {r.min_s:.2f} s | {r.runs} | `{r.command}` |"
        )
    (REPO / "benchmarks" / "RESULTS.md").write_text("\n".join(lines) + "\n")
    (REPO / "benchmarks" / "results.json").write_text(
        json.dumps(
            {"machine": machine(), "written": stamp, "core": [asdict(r) for r in rows]}, indent=2
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="repetitions per figure")
    args = parser.parse_args()
    rows = core_figures(args.runs)
    write_results(rows)
    print("wrote benchmarks/RESULTS.md and benchmarks/results.json")


if __name__ == "__main__":
    main()
