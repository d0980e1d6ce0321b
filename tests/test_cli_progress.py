"""Long commands show a spinner with their step on a terminal and nothing in a pipe or with --json."""

from __future__ import annotations

import io

import pytest

from tradepipe.cli.progress import working


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_sees_the_steps_and_a_pipe_sees_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    with working("report preview") as step:
        step("reading the ledger")
    assert "report preview" in terminal.getvalue()

    quiet = Terminal()
    monkeypatch.setattr("sys.stderr", quiet)
    with working("report preview", quiet=True) as step:  # --json
        step("reading the ledger")
    assert quiet.getvalue() == ""

    pipe = io.StringIO()
    monkeypatch.setattr("sys.stderr", pipe)
    with working("report preview") as step:
        step("reading the ledger")
    assert pipe.getvalue() == ""
