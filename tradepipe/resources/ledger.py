"""[`ledger`] The ledger database: one URL, sessions handed out from a cached engine."""

from __future__ import annotations

import dagster as dg
from sqlalchemy.orm import Session, sessionmaker

from tradepipe.adapters.db.engine import session_factory


class LedgerDatabase(dg.ConfigurableResource):
    """The SQLite file or PostgreSQL database holding books, cycles, orders, fills and analytics."""

    url: str
    """SQLAlchemy URL (sqlite:///... or postgresql://...); set through TRADEPIPE_DATABASE_URL."""

    def sessions(self) -> sessionmaker[Session]:
        """Sessions on the ledger. Nothing connects until a session runs its first statement."""
        return session_factory(self.url)
