"""What a long command is doing and how far it is, on the terminal (stderr) only.

`storeedge models train|evaluate|seed` take minutes on real data. They report stages through a
`Progress`; `progress_for` picks rich's live display when stderr is a terminal and the command is not
printing JSON or asked to be quiet, and a no-op otherwise, so pipes, logs and `--json` see nothing.
rich (the `train` extra) is imported only when the display is actually shown: CLI start-up stays fast
(issue #18) and a box without rich just shows no progress.

    with progress_for(json=args.json, quiet=args.quiet) as progress:
        progress.stage("training next purchase", total=len(snapshots))
        progress.advance()
"""

from __future__ import annotations

import importlib.util
import sys
from types import TracebackType
from typing import IO, Any, Protocol


class Progress(Protocol):
    """Stages of a long command; each `stage` ends the previous one."""

    def stage(self, name: str, total: int | None = None) -> None:
        """Start the stage ``name``; ``total`` steps if known (a bar), else a spinner."""

    def advance(self, steps: int = 1) -> None:
        """``steps`` more steps of the current stage are done."""

    def done(self) -> None:
        """End the current stage and the display (idempotent)."""


class NoProgress:
    """Shows nothing: not a terminal, `--json`, `--quiet`, or rich is not installed."""

    def stage(self, name: str, total: int | None = None) -> None:
        pass

    def advance(self, steps: int = 1) -> None:
        pass

    def done(self) -> None:
        pass

    def __enter__(self) -> NoProgress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.done()


NO_PROGRESS = NoProgress()


class RichProgress:
    """rich's live progress display on ``stream`` (stderr): one line per stage, the current one moving."""

    def __init__(self, stream: IO[str]) -> None:
        from rich.console import Console  # noqa: PLC0415 - rich only when progress is shown
        from rich.progress import (  # noqa: PLC0415
            BarColumn,
            MofNCompleteColumn,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.progress import Progress as Display  # noqa: PLC0415

        self._display = Display(
            SpinnerColumn(finished_text="[green]done"),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(file=stream),
        )
        self._task: Any = None
        self._started = False
        self._stopped = False

    def stage(self, name: str, total: int | None = None) -> None:
        if self._stopped:
            return
        if not self._started:
            self._display.start()
            self._started = True
        self._finish_task()
        self._task = self._display.add_task(name, total=total)

    def advance(self, steps: int = 1) -> None:
        if self._task is not None:
            self._display.advance(self._task, steps)

    def done(self) -> None:
        if self._stopped:
            return
        self._finish_task()
        self._stopped = True
        if self._started:
            self._display.stop()

    def _finish_task(self) -> None:
        if self._task is None:
            return
        task = self._display.tasks[-1]
        # A stage without a known total ends as one step of one, so its spinner turns to "done".
        total = task.total if task.total is not None else max(task.completed, 1)
        self._display.update(self._task, total=total, completed=total)
        self._task = None

    def __enter__(self) -> RichProgress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.done()


def progress_for(*, json: bool = False, quiet: bool = False) -> RichProgress | NoProgress:
    """rich's display on stderr when it is a terminal, not `--json`/`--quiet` and rich is installed;
    else nothing. Never writes to stdout (stdout carries the report)."""
    stream = sys.stderr
    if json or quiet or not _is_terminal(stream) or importlib.util.find_spec("rich") is None:
        return NoProgress()
    return RichProgress(stream)


def _is_terminal(stream: IO[str] | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False
