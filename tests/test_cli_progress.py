"""Long commands draw progress on a terminal and nothing in a pipe or with --json.

The commands run as a user runs them, in a real pseudo-terminal (stdout and stderr on it) and with their
output piped; the bar is rich's (its "━" segments and "done/total").
"""

from __future__ import annotations

import errno
import fcntl
import io
import json
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from tradepipe.cli.progress import progress_bar, working

BAR = "━"


def in_terminal(*args: str) -> tuple[int, str]:
    """Run ``tradepipe ARGS`` with stdout and stderr on a 120x40 pseudo-terminal; its exit code and everything it showed."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120"}
    env.pop("NO_COLOR", None)
    process = subprocess.Popen([sys.executable, "-m", "tradepipe.cli.main", *args], stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    shown = bytearray()
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError as exc:  # EIO: the terminal's other side is closed, the command is done
            if exc.errno != errno.EIO:
                raise
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    return process.wait(timeout=600), shown.decode("utf-8", "replace")


def in_pipe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tradepipe.cli.main", *args], capture_output=True, text=True, timeout=600)


def test_warmup_draws_a_bar_on_a_terminal_and_nothing_in_a_pipe() -> None:
    from tradepipe.adapters.db.engine import upgrade
    from tradepipe.config.settings import load_settings

    upgrade(load_settings().resolved_database_url)
    code, shown = in_terminal("warmup", "--days", "0.01")  # 14 one-minute bars
    assert code == 0, shown
    assert BAR in shown and "warm-up" in shown and "14/14" in shown
    assert "traded 14 SYNTHETIC bars" in shown

    other = {**os.environ, "TRADEPIPE_BOOK": "second"}
    piped = subprocess.run([sys.executable, "-m", "tradepipe.cli.main", "warmup", "--days", "0.01"], capture_output=True, text=True, env=other, timeout=600)
    assert piped.returncode == 0, piped.stderr
    assert piped.stderr == "" and BAR not in piped.stdout
    assert piped.stdout.startswith("tradepipe warm-up: traded 14 SYNTHETIC bars") and len(piped.stdout.splitlines()) == 1


@pytest.mark.shared_data
def test_backtest_draws_a_bar_on_a_terminal_and_nothing_with_json_or_in_a_pipe(shared_data: Path) -> None:
    candles = str(shared_data / "ohlcv" / "binance_2018_octobot")
    base = ("backtest", "--replay-dir", candles, "--symbols", "BTC/USDT,ETH/USDT", "--end", "2018-05-20")
    assert in_pipe("db", "upgrade").returncode == 0

    code, shown = in_terminal(*base, "--book", "bt-terminal")
    assert code == 0, shown
    assert BAR in shown and "backtest bt-terminal" in shown and "bars" in shown
    assert "backtest bt-terminal:" in shown and "saved:" in shown

    code, shown = in_terminal(*base, "--book", "bt-json", "--json")
    assert code == 0, shown
    assert BAR not in shown
    assert json.loads(shown)["book"] == "bt-json"  # nothing but the document, even on a terminal

    piped = in_pipe(*base, "--book", "bt-pipe")
    assert piped.returncode == 0, piped.stderr
    assert piped.stderr == "" and BAR not in piped.stdout and piped.stdout.startswith("backtest bt-pipe:")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_spinner_and_a_bar_need_both_streams_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    monkeypatch.setattr("sys.stdout", Terminal())
    with working("report preview") as step:
        step("reading the ledger")
    assert "report preview" in terminal.getvalue()
    with progress_bar("backtest bt", "bars") as advance:
        advance(3, 4)
    assert "backtest bt" in terminal.getvalue() and "3/4" in terminal.getvalue()

    quiet = Terminal()
    monkeypatch.setattr("sys.stderr", quiet)
    with working("report preview", quiet=True) as step, progress_bar("backtest bt", "bars", quiet=True) as advance:  # --json
        step("reading the ledger")
        advance(3, 4)
    assert quiet.getvalue() == ""

    piped_stdout = Terminal()
    monkeypatch.setattr("sys.stderr", piped_stdout)
    monkeypatch.setattr("sys.stdout", io.StringIO())  # `tradepipe ... | less`: stdout is a pipe
    with working("report preview") as step, progress_bar("backtest bt", "bars") as advance:
        step("reading the ledger")
        advance(3, 4)
    assert piped_stdout.getvalue() == ""
