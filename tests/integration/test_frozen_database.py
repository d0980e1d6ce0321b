"""A PostgreSQL connection that freezes in the middle of the cycle's transaction: every wait stays bounded.

The probe that found the bug: a half-open connection in the middle of a transaction hung the cycle
for 645 s and 195 s until SIGKILL, and the server kept the session idle in transaction holding the
book's lock, so every later cycle failed with ``BookBusyError`` for as long as that session lived.

Here a small TCP proxy on loopback sits between the cycle and PostgreSQL and, when the cycle sends
its first write of the bar (``INSERT INTO trading_cycles``, after the book's lock was taken), stops
forwarding in both directions while keeping both connections open: TCP on either side sees nothing
wrong (the proxy's kernel still acknowledges), only the answers stop. With a statement timeout of
2 s:

* the cycle fails with one line, ``LedgerUnavailable``, within the statement timeout plus the
  client watchdog's grace, instead of hanging;
* the server ends the frozen session itself (``idle_in_transaction_session_timeout``), so the
  book's lock is free: a cycle over a healthy connection trades that same bar;
* a cycle process sent SIGTERM while frozen stops within seconds (its handler runs: the wait it
  was blocked in is cut short), long before the statement timeout of that process.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text

from tradepipe.adapters.db.engine import WATCHDOG_GRACE_S, get_engine, upgrade
from tradepipe.config.settings import load_settings
from tradepipe.trading.runner import LedgerUnavailable, TradingRunner

BAR0 = 1_700_000_040_000  # a 1m bar on the synthetic market
FREEZE_ON = b"INSERT INTO trading_cycles"


class FreezingProxy:
    """Forwards TCP to ``upstream`` until a client sends ``FREEZE_ON``; from then on forwards nothing, closes nothing."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.frozen = threading.Event()
        self.stopped = threading.Event()
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            self.sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, from_client: bool) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                return
            if from_client and FREEZE_ON in data:
                self.frozen.set()
            if not data or self.frozen.is_set():
                self.stopped.wait()  # hold the connection open, forward nothing
                return
            try:
                target.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        self.stopped.set()
        self.listener.close()
        for sock in self.sockets:
            sock.close()


def through(url: str, proxy: FreezingProxy) -> str:
    parts = urlsplit(url)
    return parts._replace(netloc=f"{parts.username or 'postgres'}@127.0.0.1:{proxy.port}").geturl()


@pytest.fixture
def proxied(postgres_url: str) -> tuple[str, str, FreezingProxy]:
    upgrade(postgres_url)
    parts = urlsplit(postgres_url)
    proxy = FreezingProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    yield postgres_url, through(postgres_url, proxy), proxy
    proxy.close()


def sessions_idle_in_transaction(url: str) -> int:
    engine = get_engine(url)
    with engine.connect() as connection:
        return connection.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'")
        ).scalar_one()


def test_a_frozen_connection_fails_the_cycle_in_one_line_and_frees_the_book(proxied: tuple[str, str, FreezingProxy]) -> None:
    direct, frozen_url, proxy = proxied
    runner = TradingRunner(load_settings(database_url=frozen_url, database_statement_timeout_seconds=2), redis_url=None)
    started = time.monotonic()
    with pytest.raises(LedgerUnavailable) as failed:
        runner.run_cycle(BAR0)
    waited = time.monotonic() - started
    assert proxy.frozen.is_set(), "the proxy never froze: the cycle did not write"
    message = str(failed.value)
    assert "\n" not in message.strip() and message.startswith("the connection to the ledger database at "), repr(message)
    assert "stopped answering for 2 s (TRADEPIPE_DATABASE_STATEMENT_TIMEOUT_SECONDS)" in message
    print(f"\nfrozen connection: the cycle failed after {waited:.1f} s (statement timeout 2 s + {WATCHDOG_GRACE_S:g} s grace)")
    assert waited < 2 + WATCHDOG_GRACE_S + 10, f"the frozen cycle waited {waited:.1f} s"  # bounded, not hung (margin for load)

    # The server ended the frozen session: the book's lock is free for the next cycle of that bar.
    deadline = time.monotonic() + 10
    while sessions_idle_in_transaction(direct) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert sessions_idle_in_transaction(direct) == 0
    healthy = TradingRunner(load_settings(database_url=direct, book_lock_timeout_seconds=1), redis_url=None)
    assert healthy.run_cycle(BAR0).status == "traded"


CYCLE_PROCESS = textwrap.dedent(
    """
    import signal, sys
    from tradepipe.config.settings import load_settings
    from tradepipe.trading.runner import TradingRunner

    def stop(signum, frame):  # what a run worker does on SIGTERM: raise in the main thread
        raise SystemExit(143)

    signal.signal(signal.SIGTERM, stop)
    runner = TradingRunner(load_settings(database_url=sys.argv[1], database_statement_timeout_seconds=120), redis_url=None)
    runner.run_cycle(int(sys.argv[2]))
    """
)


def test_sigterm_stops_a_cycle_frozen_on_the_database_within_seconds(proxied: tuple[str, str, FreezingProxy]) -> None:
    direct, frozen_url, proxy = proxied
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEPIPE_") or k == "TRADEPIPE_HOME"}
    process = subprocess.Popen([sys.executable, "-c", CYCLE_PROCESS, frozen_url, str(BAR0)], env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert proxy.frozen.wait(120), "the cycle never reached its first write"
        time.sleep(0.5)  # blocked in the database call now
        assert process.poll() is None
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
        stopped_in = time.monotonic() - signalled
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    print(f"\nSIGTERM on a cycle frozen on the database: stopped after {stopped_in:.1f} s (statement timeout 120 s)")
    assert code == 143, process.stderr.read() if process.stderr else ""
    # a quarter of the 120 s statement timeout: the signal, not a timeout, ended the wait (measured: docs/safety.md)
    assert stopped_in < 30, f"SIGTERM took {stopped_in:.1f} s (the statement timeout is 120 s)"
