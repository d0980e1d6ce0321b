"""Engines and migrations. SQLite gets WAL and a busy timeout so the sensor, runs and CLI can share it.

Every wait on the database is bounded (``DatabaseTimeouts``): PostgreSQL gets a connect timeout and
server-side statement and lock timeouts, SQLite a busy timeout. Only ``upgrade`` creates a SQLite
file; every other use opens an existing one (a typo in a path is an error, not an empty ledger).

A PostgreSQL connection can also freeze: the network drops every packet, or a middlebox stops
forwarding, in the middle of a transaction. The server's own timeouts then cancel its statement
but the answer never arrives, and the session would sit idle in transaction holding the book's lock.
So each side bounds it on its own:

* the server ends a session idle in a transaction for longer than the statement timeout
  (``idle_in_transaction_session_timeout``), and probes its client (``tcp_keepalives_*`` and
  ``tcp_user_timeout``), which frees the book's locks a vanished client held;
* the client sends TCP keepalives and gives up on unacknowledged data (libpq ``keepalives*`` and
  ``tcp_user_timeout``), which catches a network that drops packets;
* and, for what TCP cannot see (a proxy that still acknowledges but forwards nothing), a watchdog
  thread shuts the socket of any statement, commit or rollback still waiting after the statement
  timeout plus a grace: the call fails with a disconnect, the cycle fails with one line.
"""

from __future__ import annotations

import heapq
import itertools
import select
import signal
import socket
import sqlite3
import threading
import time
from contextlib import AbstractContextManager, contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from tradepipe.adapters.db.connection import DEFAULT_TIMEOUTS, driver_url, postgres_connect_args, sqlite_path
from tradepipe.config.ledger_settings import DatabaseTimeouts

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def _sqlite_configurer(timeouts: DatabaseTimeouts):  # type: ignore[no-untyped-def]
    def configure(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(timeouts.statement_s * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return configure


@lru_cache(maxsize=8)
def get_engine(url: str, timeouts: DatabaseTimeouts = DEFAULT_TIMEOUTS) -> Engine:
    url = driver_url(url)
    path = sqlite_path(url)
    if url.startswith("sqlite"):
        if path is not None:
            # mode=rw: never create the file here (sqlite3 would make an empty one on first connect).
            creator_path = f"{path.resolve().as_uri()}?mode=rw"  # as_uri: percent-encoded, so any path works
            engine = create_engine(
                url,
                creator=lambda: sqlite3.connect(creator_path, timeout=timeouts.statement_s, uri=True, check_same_thread=False),
            )
        else:
            engine = create_engine(url, connect_args={"timeout": timeouts.statement_s})
        event.listen(engine, "connect", _sqlite_configurer(timeouts))
        return engine
    engine = create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=5,
        pool_timeout=timeouts.connect_s,
        connect_args=postgres_connect_args(timeouts),
    )
    _watch(engine, timeouts.statement_s + WATCHDOG_GRACE_S)
    return engine


# A statement may run for statement_timeout; the server then needs a moment to say so.
WATCHDOG_GRACE_S = 2.0
LOCK_WAIT_OPTION = "tradepipe_lock_wait_s"
"""Execution option (seconds) of a statement that waits for a lock longer than the statement timeout allows."""
class _Watchdog:
    """One daemon thread per process: shuts the socket of a database call still waiting past its deadline,
    or at once when SIGTERM or SIGINT arrives during ``cut_waits_on_signal`` (a signal's Python handler
    runs only once the main thread is back from C, and libpq retries its wait through signals)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._deadlines: list[tuple[float, int, int]] = []  # (deadline, ticket, socket fd): a heap
        self._armed: dict[int, tuple[float, int, int]] = {}  # ticket -> entry; disarmed tickets are dropped
        self._tickets = itertools.count()
        self._wake_read: socket.socket | None = None
        self._wake_write: socket.socket | None = None

    def _start(self) -> socket.socket:
        """The non-blocking socket that wakes the thread (new deadlines, and signal numbers); started once."""
        with self._lock:
            if self._wake_write is None:
                self._wake_read, self._wake_write = socket.socketpair()
                self._wake_write.setblocking(False)
                threading.Thread(target=self._run, name="tradepipe-db-watchdog", daemon=True).start()
            return self._wake_write

    def arm(self, fd: int, seconds: float) -> int:
        wake = self._start()
        with self._lock:
            ticket = next(self._tickets)
            entry = (time.monotonic() + seconds, ticket, fd)
            self._armed[ticket] = entry
            heapq.heappush(self._deadlines, entry)
        try:
            wake.send(b"\0")  # not a signal number: recompute the next deadline
        except OSError:
            pass  # the buffer is full of wake-ups already
        return ticket

    def disarm(self, ticket: int) -> None:
        with self._lock:
            self._armed.pop(ticket, None)

    @contextmanager
    def cut_waits_on_signal(self) -> Iterator[None]:
        """While in the block (main thread only), SIGTERM and SIGINT also cut every armed database wait short."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        wake = self._start()
        previous = signal.set_wakeup_fd(wake.fileno(), warn_on_full_buffer=False)
        if previous != -1:  # someone else (an event loop) listens: leave it theirs
            signal.set_wakeup_fd(previous)
            yield
            return
        try:
            yield
        finally:
            signal.set_wakeup_fd(-1)

    def _run(self) -> None:
        assert self._wake_read is not None
        while True:
            now = time.monotonic()
            with self._lock:
                expired = []
                while self._deadlines and (self._deadlines[0][1] not in self._armed or self._deadlines[0][0] <= now):
                    _, ticket, fd = heapq.heappop(self._deadlines)
                    if self._armed.pop(ticket, None) is not None:
                        expired.append(fd)
                timeout = self._deadlines[0][0] - now if self._deadlines else None
            for fd in expired:
                _shut(fd)
            readable, _, _ = select.select([self._wake_read], [], [], timeout)
            if readable:
                received = self._wake_read.recv(4096)
                if signal.SIGTERM in received or signal.SIGINT in received:
                    with self._lock:
                        cut = [fd for _, _, fd in self._armed.values()]
                        self._armed.clear()
                    for fd in cut:
                        _shut(fd)


def _shut(fd: int) -> None:
    """Shut the socket down under libpq: its wait returns at once with a lost connection."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.detach()  # the descriptor stays libpq's


_WATCHDOG = _Watchdog()


def cut_database_waits_on_signal() -> AbstractContextManager[None]:
    """``with cut_database_waits_on_signal():`` a SIGTERM or SIGINT ends any PostgreSQL wait in the block at
    once (the call fails as a lost connection), so the signal's own handler runs within moments."""
    return _WATCHDOG.cut_waits_on_signal()


def _watch(engine: Engine, seconds: float) -> None:
    """Bound every statement, commit and rollback of ``engine``'s connections to ``seconds`` on the client."""

    def guarded(call: Callable[..., Any]) -> Callable[..., Any]:
        def run(dbapi_connection: Any, *args: Any, **kwargs: Any) -> Any:
            ticket = _WATCHDOG.arm(dbapi_connection.fileno(), seconds)
            try:
                return call(dbapi_connection, *args, **kwargs)
            finally:
                _WATCHDOG.disarm(ticket)

        return run

    dialect = engine.dialect
    dialect.do_commit = guarded(dialect.do_commit)  # type: ignore[method-assign]
    dialect.do_rollback = guarded(dialect.do_rollback)  # type: ignore[method-assign]
    dialect.do_ping = guarded(dialect.do_ping)  # type: ignore[method-assign]

    @event.listens_for(engine, "before_cursor_execute")
    def _arm(connection, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        # A lock wait may be allowed longer than a statement (execution option LOCK_WAIT_OPTION).
        wait = context.execution_options.get(LOCK_WAIT_OPTION) if context is not None else None
        bound = seconds if wait is None else max(seconds, wait + WATCHDOG_GRACE_S)
        connection.info["watchdog"] = _WATCHDOG.arm(cursor.connection.fileno(), bound)

    @event.listens_for(engine, "after_cursor_execute")
    def _disarm(connection, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        _WATCHDOG.disarm(connection.info.pop("watchdog", -1))

    @event.listens_for(engine, "handle_error")
    def _disarm_on_error(context) -> None:  # type: ignore[no-untyped-def]
        if context.connection is not None:
            _WATCHDOG.disarm(context.connection.info.pop("watchdog", -1))


def session_factory(url: str, timeouts: DatabaseTimeouts = DEFAULT_TIMEOUTS) -> sessionmaker[Session]:
    return sessionmaker(get_engine(url, timeouts), expire_on_commit=False)


def alembic_config(url: str) -> Config:
    # Alembic (and Mako) load only for a migration: every trading-cycle run imports this module.
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def create_sqlite_file(url: str) -> None:
    """Make the (empty) SQLite file of ``url`` and its folder; only ``tradepipe db upgrade`` should."""
    path = sqlite_path(driver_url(url))
    if path is not None and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        sqlite3.connect(path).close()


def upgrade(url: str, revision: str = "head") -> None:
    from alembic import command

    create_sqlite_file(url)
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    from alembic import command

    command.downgrade(alembic_config(url), revision)


def current_revision(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with get_engine(url).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
