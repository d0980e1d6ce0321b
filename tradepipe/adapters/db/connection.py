"""Reaching the ledger database without SQLAlchemy: a URL's SQLite file and driver, libpq's bounded-wait
parameters, one clear line for a database that is down, missing, slow or not migrated, and a plain DB-API
connection for readers that must answer at once (``tradepipe status``; SQLAlchemy costs a few tenths of a
CPU second to import). ``engine.py`` builds its engines from the same URL helpers and parameters.

Drivers raise long, nested errors (a psycopg2 ``OperationalError`` inside SQLAlchemy's wrapper,
with the SQL and a link); a trader needs to know which of four things is wrong and what to do.
Every line is redacted: a database URL may carry a password.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tradepipe.config.ledger_settings import DatabaseTimeouts
from tradepipe.core.redaction import redact

DEFAULT_TIMEOUTS = DatabaseTimeouts()

LEDGER_TABLES = frozenset({"books", "trading_cycles", "alembic_version"})
"""Tables a migrated ledger holds: without them the database is not migrated."""


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for in-memory or another database)."""
    if not url.startswith("sqlite"):
        return None
    path = url.split("sqlite:///", 1)[-1].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" and not url.startswith("sqlite://?") else None


def driver_url(url: str) -> str:
    """SQLAlchemy 2.1 maps ``postgresql://`` to psycopg 3; tradepipe ships psycopg2 (as dagster-postgres does)."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg2://" + url.split("://", 1)[1]
    return url


KEEPALIVE_IDLE_S, KEEPALIVE_INTERVAL_S, KEEPALIVE_COUNT = 10, 5, 3  # a silent peer is given up after about 25 s


def postgres_connect_args(timeouts: DatabaseTimeouts) -> dict[str, Any]:
    """libpq parameters: connect timeout, client keepalives, and the server-side bounds of the session."""
    statement_ms = int(timeouts.statement_s * 1000)
    server = {
        "statement_timeout": statement_ms,
        "lock_timeout": statement_ms,
        "idle_in_transaction_session_timeout": statement_ms,
        "tcp_keepalives_idle": KEEPALIVE_IDLE_S,
        "tcp_keepalives_interval": KEEPALIVE_INTERVAL_S,
        "tcp_keepalives_count": KEEPALIVE_COUNT,
        "tcp_user_timeout": statement_ms,
    }
    return {
        "connect_timeout": max(1, round(timeouts.connect_s)),  # libpq takes whole seconds
        "keepalives": 1,
        "keepalives_idle": KEEPALIVE_IDLE_S,
        "keepalives_interval": KEEPALIVE_INTERVAL_S,
        "keepalives_count": KEEPALIVE_COUNT,
        "tcp_user_timeout": statement_ms,
        "options": " ".join(f"-c {name}={value}" for name, value in server.items()),
    }


class LedgerUnavailable(RuntimeError):
    """The ledger database cannot be used right now; the message is one line saying why and what to do."""


def where(url: str) -> str:
    """The database a URL names, without credentials: a file path, or host:port/dbname."""
    path = sqlite_path(driver_url(url))
    if path is not None:
        return str(path)
    shown = url.split("?", 1)[0].replace("postgresql+psycopg2://", "postgresql://", 1)  # as the user wrote it
    return redact(shown, url)


def describe_database_error(error: BaseException, url: str, timeouts: DatabaseTimeouts = DEFAULT_TIMEOUTS) -> str:
    """One line for ``error`` raised while using the database at ``url``."""
    original = getattr(error, "orig", None) or error  # SQLAlchemy wraps the driver's error; a plain reader raises it
    text = " ".join(str(original).split())  # drivers spread one message over several lines
    lowered = text.lower()
    place = where(url)
    missing_table = "no such table" in lowered or ("relation" in lowered and "does not exist" in lowered)
    if missing_table:
        return f"the ledger database at {place} is not migrated: run `tradepipe db upgrade`"
    if "unable to open database file" in lowered:
        return f"no ledger database at {place}: run `tradepipe db upgrade` to create it (or set TRADEPIPE_DATABASE_URL)"
    if "connection refused" in lowered or "could not connect" in lowered or "could not translate host" in lowered:
        return f"the ledger database at {place} is down or unreachable: {redact(text, url)[:200]}"
    if "timeout expired" in lowered or "timed out" in lowered:
        return (
            f"the ledger database at {place} did not answer within {timeouts.connect_s:g} s "
            "(TRADEPIPE_DATABASE_CONNECT_TIMEOUT_SECONDS)"
        )
    if "statement timeout" in lowered or "canceling statement" in lowered:
        return (
            f"a ledger statement at {place} ran longer than {timeouts.statement_s:g} s "
            "(TRADEPIPE_DATABASE_STATEMENT_TIMEOUT_SECONDS)"
        )
    if "server closed the connection unexpectedly" in lowered or "connection already closed" in lowered:
        # What a frozen connection ends as: the server's timeouts or the client's watchdog closed it.
        return (
            f"the connection to the ledger database at {place} was lost or stopped answering for "
            f"{timeouts.statement_s:g} s (TRADEPIPE_DATABASE_STATEMENT_TIMEOUT_SECONDS); nothing after its last commit was recorded"
        )
    if "database is locked" in lowered:
        return f"the ledger database at {place} stayed locked by another writer for {timeouts.statement_s:g} s"
    first_line = redact(text, url)[:300]
    return f"cannot use the ledger database at {place}: {first_line}"


def missing_sqlite_ledger(url: str) -> str | None:
    """The line for a SQLite ledger file that does not exist (opening never creates one), else None."""
    path = sqlite_path(driver_url(url))
    if path is not None and not path.exists():
        return f"no ledger database at {path}: run `tradepipe db upgrade` to create it (or set TRADEPIPE_DATABASE_URL)"
    return None


def not_migrated(url: str) -> str:
    return f"the ledger database at {where(url)} is not migrated: run `tradepipe db upgrade`"


@contextmanager
def read_only_ledger(url: str, timeouts: DatabaseTimeouts = DEFAULT_TIMEOUTS) -> Iterator[Any]:
    """A DB-API connection to the existing, migrated ledger at ``url``, in one read-only transaction (one
    consistent view of the ledger); LedgerUnavailable (one line) when it cannot be used.

    The same bounds as the engines': SQLite's busy timeout, PostgreSQL's connect timeout and server-side
    statement timeout. Nothing is written: the transaction is rolled back."""
    missing = missing_sqlite_ledger(url)
    if missing:
        raise LedgerUnavailable(missing)
    path = sqlite_path(driver_url(url))
    if path is None and url.startswith("sqlite"):
        raise LedgerUnavailable(not_migrated(url))  # an in-memory database: new and empty
    errors: tuple[type[Exception], ...] = (sqlite3.Error,)
    if path is None:
        import psycopg2

        errors = (psycopg2.Error,)
    try:
        connection = _sqlite(path, timeouts) if path is not None else _postgresql(url, timeouts)
    except errors as error:
        raise LedgerUnavailable(describe_database_error(error, url, timeouts)) from None
    try:
        if not LEDGER_TABLES <= _table_names(connection, sqlite=path is not None):
            raise LedgerUnavailable(not_migrated(url))
        yield connection
    except errors as error:
        raise LedgerUnavailable(describe_database_error(error, url, timeouts)) from None
    finally:
        try:
            connection.rollback()
        except errors:
            pass  # the connection is gone; nothing was written
        connection.close()


def _sqlite(path: Path, timeouts: DatabaseTimeouts) -> sqlite3.Connection:
    # mode=rw: never create the file; autocommit off and an explicit BEGIN: every read sees the same moment
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", timeout=timeouts.statement_s, uri=True, isolation_level=None)
    connection.execute("BEGIN")
    return connection


def _postgresql(url: str, timeouts: DatabaseTimeouts) -> Any:
    import psycopg2

    # libpq reads the URL itself (user, password, host, port, database, query parameters), as SQLAlchemy passes them
    connection = psycopg2.connect("postgresql://" + url.split("://", 1)[1], **postgres_connect_args(timeouts))
    connection.set_session(readonly=True, isolation_level="REPEATABLE READ")
    return connection


def _table_names(connection: Any, *, sqlite: bool) -> set[str]:
    cursor = connection.cursor()
    if sqlite:
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    else:
        cursor.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")
    return {row[0] for row in cursor.fetchall()}
