"""Terminal output shared by the CLI commands: consoles, progress bars, tables. Uses rich."""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

# Off a terminal (a pipe, a log file) lines stay whole; on one, rich wraps them at words.
stdout = Console(highlight=False, soft_wrap=not sys.stdout.isatty())
stderr = Console(stderr=True, highlight=False, soft_wrap=not sys.stderr.isatty())


def plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def human_bytes(size: int) -> str:
    """``2.3 MB``, ``740 KB``, ``12 bytes``: the unit that keeps a number worth reading."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return plural(size, "byte")


class RateColumn(ProgressColumn):
    """Items per second, for stages that know their total."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f}/s" if speed else "", style="progress.data.speed")


class RichProgress:
    """Progress bars on stderr for the stages of a build: rate and ETA where a total is known."""

    def __init__(self) -> None:
        self._bars = Progress(
            SpinnerColumn(finished_text="✓"),
            TextColumn("{task.description:<20}"),
            BarColumn(),
            MofNCompleteColumn(),
            RateColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=stderr,
        )
        self._bars.start()
        self._task: TaskID | None = None

    def stage(self, name: str, total: int | None = None) -> None:
        self._finish_stage()
        self._task = self._bars.add_task(name, total=total)

    def advance(self, amount: int = 1) -> None:
        if self._task is not None:
            self._bars.advance(self._task, amount)

    def _finish_stage(self) -> None:
        if self._task is not None:
            done = self._bars.tasks[-1].completed
            self._bars.update(self._task, total=max(done, 1), completed=max(done, 1))

    def close(self, completed: bool = True) -> None:
        if completed:
            self._finish_stage()
        else:  # what failed is said next, on a clean line: no half-drawn bar above it
            self._bars.live.transient = True
        self._bars.stop()


class PlainProgress:
    """Progress for a stderr that is not a terminal (a log file, CI): one plain line when a
    stage starts, one every ``every`` seconds while it runs, one when it ends."""

    def __init__(self, every: float = 10.0) -> None:
        self._every = every
        self._name = ""
        self._total: int | None = None
        self._done = 0
        self._started = self._said = 0.0

    def stage(self, name: str, total: int | None = None) -> None:
        self._finish_stage()
        self._name, self._total, self._done = name, total, 0
        self._started = self._said = time.monotonic()
        self._say(f"{name}: started" + (f" ({total:,})" if total is not None else ""))

    def advance(self, amount: int = 1) -> None:
        self._done += amount
        now = time.monotonic()
        if now - self._said >= self._every:
            self._said = now
            self._say(f"{self._name}: {self._count()}, {self._rate(now)}")

    def close(self, completed: bool = True) -> None:
        if completed:
            self._finish_stage()

    def _finish_stage(self) -> None:
        if self._name:
            seconds = time.monotonic() - self._started
            counted = f"{self._done:,} " if self._done else ""
            self._say(f"{self._name}: done, {counted}in {seconds:.1f} s")
            self._name = ""

    def _count(self) -> str:
        if not self._total:
            return f"{self._done:,}"
        return f"{self._done:,}/{self._total:,} ({100 * self._done / self._total:.0f}%)"

    def _rate(self, now: float) -> str:
        seconds = now - self._started
        rate = self._done / seconds if seconds > 0 else 0.0
        text = f"{rate:,.0f}/s"
        if self._total and rate > 0:
            text += f", about {(self._total - self._done) / rate:.0f} s left"
        return text

    @staticmethod
    def _say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)


def terminal_progress() -> RichProgress | PlainProgress:
    """Bars where stderr is a terminal; plain, periodic lines where it is not."""
    return RichProgress() if stderr.is_terminal else PlainProgress()
