"""One writer per book: the lock a trading cycle holds for its whole transaction.

Whatever launched the cycle (the sensor, the UI, ``dagster asset materialize``, a script), two
cycles of one book never interleave: the second waits for the first to commit, then sees its
result (so its already-done and out-of-order checks, made after the lock, are about the real book).

* PostgreSQL: ``pg_advisory_xact_lock`` on a 64-bit hash of the book's name, released by the
  transaction's commit or rollback (also when the process dies: the server ends the session).
  The wait is bounded by ``lock_timeout``, set for this transaction only.
* SQLite: ``BEGIN IMMEDIATE``, the database's single write lock, taken before the first read; the
  wait is bounded by the connection's busy timeout, set to the lock wait meanwhile.

A wait longer than the bound raises ``BookBusyError`` with one line saying what to do.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session


class BookBusyError(RuntimeError):
    """Another cycle of the same book held its lock for longer than the configured wait."""


def _busy(book: str, wait_s: float, sqlite: bool = False) -> BookBusyError:
    # SQLite has one write lock per file: the other writer may also be an analytics run.
    writer = "another writer of the SQLite ledger (a trading cycle or an analytics run)" if sqlite else "another trading cycle"
    return BookBusyError(
        f"book {book!r} is being written by {writer}; waited {wait_s:g} s "
        "(TRADEPIPE_BOOK_LOCK_TIMEOUT_SECONDS) and gave up without trading"
    )


def hold_book_lock(session: Session, book: str, wait_s: float) -> None:
    """Take the book's write lock as the first statement of ``session``'s transaction, held until it ends.

    Must run before anything else in the transaction: on SQLite an earlier read would start a
    deferred transaction that cannot be upgraded safely."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        statement_timeout = connection.execute(text("SELECT current_setting('statement_timeout')")).scalar_one()
        # Only the lock wait bounds this statement (a book wait longer than the statement timeout is allowed).
        connection.execute(
            text("SELECT set_config('lock_timeout', :wait, true), set_config('statement_timeout', '0', true)"),
            {"wait": f"{int(wait_s * 1000)}ms"},
        )
        try:
            connection.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": f"tradepipe.book:{book}"}
            )
        except OperationalError as error:
            if getattr(error.orig, "pgcode", None) == "55P03":  # lock_not_available
                session.rollback()
                raise _busy(book, wait_s) from None
            raise
        # Back to the connection's own bounds for the rest of the transaction.
        connection.execute(
            text("SELECT set_config('lock_timeout', :bound, true), set_config('statement_timeout', :bound, true)"),
            {"bound": statement_timeout},
        )
        return
    if connection.dialect.name == "sqlite":
        default_ms = connection.exec_driver_sql("PRAGMA busy_timeout").scalar()
        connection.exec_driver_sql(f"PRAGMA busy_timeout={int(wait_s * 1000)}")
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except OperationalError as error:
            connection.exec_driver_sql(f"PRAGMA busy_timeout={int(default_ms or 0)}")
            if "locked" in str(error.orig).lower() or "busy" in str(error.orig).lower():
                session.rollback()
                raise _busy(book, wait_s, sqlite=True) from None
            raise
        connection.exec_driver_sql(f"PRAGMA busy_timeout={int(default_ms or 0)}")
        return
    raise NotImplementedError(f"no book lock for the {connection.dialect.name} database")


__all__ = ["BookBusyError", "hold_book_lock"]
