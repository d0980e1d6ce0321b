"""[`ledger`] The ledger database: one URL, sessions handed out from a cached engine."""

from __future__ import annotations

import dagster as dg
from sqlalchemy.orm import Session, sessionmaker

from tradepipe.adapters.db.engine import DEFAULT_TIMEOUTS, DatabaseTimeouts, session_factory
from tradepipe.adapters.db.health import LedgerUnavailable, check_ledger


class LedgerDatabase(dg.ConfigurableResource):
    """The SQLite file or PostgreSQL database holding books, cycles, orders, fills and analytics."""

    url: str
    """SQLAlchemy URL (sqlite:///... or postgresql://...); set through TRADEPIPE_DATABASE_URL."""

    connect_timeout_seconds: float = DEFAULT_TIMEOUTS.connect_s
    """Longest wait for a connection (TRADEPIPE_DATABASE_CONNECT_TIMEOUT_SECONDS)."""
    statement_timeout_seconds: float = DEFAULT_TIMEOUTS.statement_s
    """Longest statement / SQLite busy wait (TRADEPIPE_DATABASE_STATEMENT_TIMEOUT_SECONDS)."""

    def sessions(self) -> sessionmaker[Session]:
        """Sessions on the ledger. Nothing connects until a session runs its first statement."""
        return session_factory(self.url, self._timeouts())

    def existing_sessions(self) -> sessionmaker[Session]:
        """Sessions on a ledger that exists and is migrated, for assets that only read what trading wrote.

        Otherwise the run fails with the one line of ``check_ledger`` ("no ledger database at ...: run
        `tradepipe db upgrade`"), not a driver's traceback ("unable to open database file")."""
        try:
            check_ledger(self.url, self._timeouts())
        except LedgerUnavailable as error:
            raise dg.Failure(description=str(error), allow_retries=False) from None
        return self.sessions()

    def _timeouts(self) -> DatabaseTimeouts:
        return DatabaseTimeouts(self.connect_timeout_seconds, self.statement_timeout_seconds)
