"""[`ledger`] The ledger database: one URL, sessions handed out from a cached engine."""

from __future__ import annotations

import dagster as dg
from sqlalchemy.orm import Session, sessionmaker

from tradepipe.adapters.db.engine import DEFAULT_TIMEOUTS, DatabaseTimeouts, session_factory


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
        return session_factory(self.url, DatabaseTimeouts(self.connect_timeout_seconds, self.statement_timeout_seconds))
