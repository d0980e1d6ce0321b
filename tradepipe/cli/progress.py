"""Progress for commands that take seconds: a spinner with the current step on a terminal, nothing in a
pipe or with ``--json`` (scripts read stdout; stderr stays clean for their own errors)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def working(label: str, *, quiet: bool = False) -> Iterator[Callable[[str], None]]:
    """Show ``label`` (and each step passed to the yielded function) on stderr while the block runs."""
    if quiet or not sys.stderr.isatty():
        yield lambda _step: None
        return
    from rich.console import Console

    with Console(stderr=True).status(label) as status:
        yield lambda step: status.update(f"{label}: {step}")
