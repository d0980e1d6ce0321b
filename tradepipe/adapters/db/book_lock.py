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

A book whose orders go to an exchange needs more: its orders are sent after the transaction that
recorded them committed, and two overlapping cycles would each look an order up, find nothing yet
and both send it. ``hold_order_lock`` is the book's order lock, held by the runner from the first
look at the exchange to the last order sent (network calls included), so the whole exchange side of
a cycle has one writer per book too. It is not a transaction (an exchange answering in seconds must
not keep a transaction open), and it is released by the holder's death, never by a clock:

* PostgreSQL: a session-level ``pg_advisory_lock`` on its own connection (another key than the
  transaction lock's), taken inside a short transaction whose ``lock_timeout`` bounds the wait;
  the server drops it when the session ends, also when the client vanishes (TCP keepalives).
* SQLite: an exclusive lock on a file next to the database (``filelock``: ``flock``, which the
  operating system drops when the process dies); an in-memory database gets a lock in the process.
"""

from __future__ import annotations

import hashlib
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

import filelock
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from tradepipe.adapters.db.connection import sqlite_path
from tradepipe.adapters.db.engine import LOCK_WAIT_OPTION


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
    _hold_transaction_lock(session, f"tradepipe.book:{book}", wait_s, lambda sqlite: _busy(book, wait_s, sqlite))


def hold_weights_lock(session: Session, book: str, wait_s: float) -> None:
    """Take the lock of ``book``'s live weights for ``session``'s transaction (its first statement, as above):
    two promotions of one book never both read the old live row and both mark their own."""

    def busy(sqlite: bool) -> BookBusyError:
        writer = "another writer of the SQLite ledger" if sqlite else "another promotion"
        return BookBusyError(f"the live weights of book {book!r} are being changed by {writer}; waited {wait_s:g} s and gave up")

    _hold_transaction_lock(session, f"tradepipe.weights:{book}", wait_s, busy)


def _hold_transaction_lock(session: Session, key: str, wait_s: float, busy: Callable[[bool], BookBusyError]) -> None:
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
                text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key},
                execution_options={LOCK_WAIT_OPTION: wait_s},
            )
        except OperationalError as error:
            if getattr(error.orig, "pgcode", None) == "55P03":  # lock_not_available
                session.rollback()
                raise busy(False) from None
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
                raise busy(True) from None
            raise
        connection.exec_driver_sql(f"PRAGMA busy_timeout={int(default_ms or 0)}")
        return
    raise NotImplementedError(f"no book lock for the {connection.dialect.name} database")


_IN_MEMORY_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_IN_MEMORY_GUARD = threading.Lock()


@contextmanager
def hold_order_lock(sessions: sessionmaker[Session], book: str, wait_s: float) -> Iterator[None]:
    """Hold ``book``'s order lock for the ``with`` block: one cycle at a time talks to the exchange for a book.

    Waits at most ``wait_s`` for another holder, then raises ``BookBusyError``."""
    engine: Engine = sessions.kw["bind"]
    if engine.dialect.name == "postgresql":
        with _postgres_order_lock(engine, book, wait_s):
            yield
        return
    if engine.dialect.name == "sqlite":
        path = sqlite_path(str(engine.url))
        if path is None:
            with _process_order_lock(str(engine.url), book, wait_s):
                yield
            return
        digest = hashlib.sha256(book.encode()).hexdigest()[:16]  # any book name makes a safe file name
        lock = filelock.FileLock(path.with_name(f"{path.name}.orders-{digest}.lock"), timeout=wait_s)
        try:
            lock.acquire()
        except filelock.Timeout:
            raise _busy(book, wait_s) from None
        try:
            yield
        finally:
            lock.release()
        return
    raise NotImplementedError(f"no order lock for the {engine.dialect.name} database")


@contextmanager
def _postgres_order_lock(engine: Engine, book: str, wait_s: float) -> Iterator[None]:
    key = {"key": f"tradepipe.book-orders:{book}"}
    connection = engine.connect()
    try:
        with connection.begin():
            connection.execute(
                text("SELECT set_config('lock_timeout', :wait, true), set_config('statement_timeout', '0', true)"),
                {"wait": f"{int(wait_s * 1000)}ms"},
            )
            connection.execute(
                text("SELECT pg_advisory_lock(hashtextextended(:key, 0))"), key, execution_options={LOCK_WAIT_OPTION: wait_s}
            )
    except OperationalError as error:
        connection.close()
        if getattr(error.orig, "pgcode", None) == "55P03":  # lock_not_available
            raise _busy(book, wait_s) from None
        raise
    except BaseException:
        connection.close()
        raise
    try:
        yield
    finally:
        try:
            connection.execute(text("SELECT pg_advisory_unlock(hashtextextended(:key, 0))"), key)
            connection.commit()
        except DBAPIError:
            # The session is broken or gone: never hand it back to the pool still holding the lock.
            connection.invalidate()
        connection.close()


@contextmanager
def _process_order_lock(url: str, book: str, wait_s: float) -> Iterator[None]:
    with _IN_MEMORY_GUARD:
        lock = _IN_MEMORY_LOCKS.setdefault((url, book), threading.Lock())
    if not lock.acquire(timeout=wait_s):
        raise _busy(book, wait_s)
    try:
        yield
    finally:
        lock.release()


__all__ = ["BookBusyError", "hold_book_lock", "hold_order_lock", "hold_weights_lock"]
