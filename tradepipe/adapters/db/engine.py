"""Engines and migrations. SQLite gets WAL and a busy timeout so the sensor, runs and CLI can share it.

Every wait on the database is bounded (``DatabaseTimeouts``): PostgreSQL gets a connect timeout and
server-side statement and lock timeouts, SQLite a busy timeout. Only ``upgrade`` creates a SQLite
file; every other use opens an existing one (a typo in a path is an error, not an empty ledger).
"""

from __future__ import annotations

import sqlite3
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from tradepipe.config.settings import DatabaseTimeouts

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


DEFAULT_TIMEOUTS = DatabaseTimeouts()


def _sqlite_configurer(timeouts: DatabaseTimeouts):  # type: ignore[no-untyped-def]
    def configure(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(timeouts.statement_s * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return configure


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
    statement_ms = int(timeouts.statement_s * 1000)
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=5,
        pool_timeout=timeouts.connect_s,
        connect_args={
            "connect_timeout": max(1, round(timeouts.connect_s)),  # libpq takes whole seconds
            "options": f"-c statement_timeout={statement_ms} -c lock_timeout={statement_ms}",
        },
    )


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
