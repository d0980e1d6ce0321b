"""Progress for commands that take seconds, drawn with rich on stderr for a person at a terminal: a bar when
the command knows how much is left (bars of a backtest, a walk-forward or the warm-up), else a spinner with
the current step. Nothing at all with ``--json`` or when stdout or stderr is not a terminal (a pipe, a file,
a script, a test runner): scripts read stdout, and stderr stays clean for their errors.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

PROGRESS_EVERY_S = 0.5
"""How often a long run reports its count to a bar (each report costs a callback; the bar redraws 10 times a second)."""


def shown(quiet: bool = False) -> bool:
    """Whether progress is drawn: a person watches (stdout and stderr are terminals) and did not ask for ``--json``."""
    return not quiet and sys.stdout.isatty() and sys.stderr.isatty()


def _console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


@contextmanager
def working(label: str, *, quiet: bool = False) -> Iterator[Callable[[str], None]]:
    """A spinner with ``label`` (and each step passed to the yielded function) while the block runs."""
    if not shown(quiet):
        yield lambda _step: None
        return
    with _console().status(label) as status:
        yield lambda step: status.update(f"{label}: {step}")


@contextmanager
def progress_bar(label: str, unit: str, *, then: str | None = None, quiet: bool = False) -> Iterator[Callable[[int, int], None]]:
    """A bar with ``label``, done/total ``unit``, elapsed time and time left (a pulsing bar until the total is
    known); the yielded function takes ``(done, total)`` as often as the caller learns them. Once done reaches total the label reads ``then``
    (what the command does after the counted part), if given. The finished bar stays on screen."""
    if not shown(quiet):
        yield lambda _done, _total: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn(unit), TimeElapsedColumn(),
               TextColumn("elapsed,"), TimeRemainingColumn(), TextColumn("left"))
    with Progress(*columns, console=_console()) as progress:
        task = progress.add_task(label, total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total, description=then if then and done >= total else label)

        yield advance
