"""Whether the ledger database can be used, asked through SQLAlchemy; the one-line diagnoses are in ``connection.py``."""

from __future__ import annotations

from sqlalchemy import inspect, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from tradepipe.adapters.db.connection import LEDGER_TABLES, LedgerUnavailable, describe_database_error, missing_sqlite_ledger, not_migrated
from tradepipe.adapters.db.engine import DEFAULT_TIMEOUTS, DatabaseTimeouts, get_engine


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
    missing = missing_sqlite_ledger(url)
    if missing:
        raise LedgerUnavailable(missing)
    try:
        with get_engine(url, timeouts).connect() as connection:
            tables = set(inspect(connection).get_table_names())
    except SQLAlchemyError as error:
        raise LedgerUnavailable(describe_database_error(error, url, timeouts)) from None
    if not LEDGER_TABLES <= tables:
        raise LedgerUnavailable(not_migrated(url))


__all__ = ["LedgerUnavailable", "check_ledger", "describe_database_error", "ping_ledger"]
