"""One clear line for a ledger database that is down, missing, slow or not migrated.

Drivers raise long, nested errors (a psycopg2 ``OperationalError`` inside SQLAlchemy's wrapper,
with the SQL and a link); a trader needs to know which of four things is wrong and what to do.
Every line is redacted: a database URL may carry a password.
"""

from __future__ import annotations

from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from tradepipe.adapters.db.engine import DatabaseTimeouts, DEFAULT_TIMEOUTS, driver_url, get_engine, sqlite_path
from tradepipe.core.redaction import redact


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
    original = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
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


def ping_ledger(sessions: sessionmaker[Session], timeouts: DatabaseTimeouts = DEFAULT_TIMEOUTS) -> None:
    """One round trip (``SELECT 1``); LedgerUnavailable within the connect timeout when it fails.

    A cycle asks first, so a ledger that is down or hung costs one bounded wait, not one per step."""
    with sessions() as session:
        try:
            session.execute(text("SELECT 1"))
        except SQLAlchemyError as error:
            url = session.get_bind().engine.url.render_as_string(hide_password=True)
            raise LedgerUnavailable(describe_database_error(error, url, timeouts)) from None


def check_ledger(url: str, timeouts: DatabaseTimeouts = DEFAULT_TIMEOUTS) -> None:
    """Raise LedgerUnavailable unless the database at ``url`` exists, answers and holds the ledger tables.

    Opening never creates anything: a missing SQLite file is reported, not made."""
    path = sqlite_path(driver_url(url))
    if path is not None and not path.exists():
        raise LedgerUnavailable(
            f"no ledger database at {path}: run `tradepipe db upgrade` to create it (or set TRADEPIPE_DATABASE_URL)"
        )
    try:
        with get_engine(url, timeouts).connect() as connection:
            tables = set(inspect(connection).get_table_names())
    except SQLAlchemyError as error:
        raise LedgerUnavailable(describe_database_error(error, url, timeouts)) from None
    if not {"books", "trading_cycles", "alembic_version"} <= tables:
        raise LedgerUnavailable(f"the ledger database at {where(url)} is not migrated: run `tradepipe db upgrade`")


__all__ = ["LedgerUnavailable", "check_ledger", "describe_database_error", "ping_ledger", "where"]
