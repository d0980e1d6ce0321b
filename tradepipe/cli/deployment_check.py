"""What the scheduled deployment (``make deploy``) needs before it starts: PostgreSQL for Dagster's
storage, PostgreSQL for the ledger, Redis for the weights cache. One line per missing service,
naming the variable to set; no secret in any line.

Dagster and the ledger need two databases: both keep their Alembic revision in a table named
``alembic_version``, so on one database each would refuse the other's revision.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tradepipe.config.settings import Settings

DAGSTER_PG_VARIABLES = ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_DB", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD")
CONNECT_TIMEOUT_S = 5


@dataclass(frozen=True)
class Database:
    host: str
    port: int
    name: str

    def __str__(self) -> str:
        return f"{self.host}:{self.port}/{self.name}"


def dagster_database(environ: Mapping[str, str]) -> Database:
    return Database(environ["DAGSTER_PG_HOST"], int(environ["DAGSTER_PG_PORT"]), environ["DAGSTER_PG_DB"])


def ledger_database(url: str) -> Database:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return Database(parsed.host or "localhost", parsed.port or 5432, parsed.database or "")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _postgres_answers(environ: Mapping[str, str]) -> str | None:
    import psycopg2  # the driver deploy/dagster.yaml gives dagster-postgres

    try:
        psycopg2.connect(
            host=environ["DAGSTER_PG_HOST"],
            port=int(environ["DAGSTER_PG_PORT"]),
            dbname=environ["DAGSTER_PG_DB"],
            user=environ["DAGSTER_PG_USER"],
            password=environ["DAGSTER_PG_PASSWORD"] or None,
            connect_timeout=CONNECT_TIMEOUT_S,
        ).close()
    except psycopg2.Error as exc:
        return _first_line(exc)
    return None


def _ledger_answers(url: str) -> str | None:
    import sqlalchemy as sa

    from tradepipe.adapters.db.connection import driver_url

    engine = sa.create_engine(driver_url(url), connect_args={"connect_timeout": CONNECT_TIMEOUT_S})
    try:
        engine.connect().close()
    except sa.exc.SQLAlchemyError as exc:
        return _first_line(getattr(exc, "orig", None) or exc)
    finally:
        engine.dispose()
    return None


def _redis_answers(url: str) -> str | None:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=CONNECT_TIMEOUT_S, socket_connect_timeout=CONNECT_TIMEOUT_S)
    try:
        client.ping()
    except redis.RedisError as exc:
        return _first_line(exc)
    finally:
        client.close()
    return None


def _redis_address(url: str) -> str:
    """host:port/db without credentials."""
    rest = url.split("://", 1)[1]
    return rest.rpartition("@")[2]


def deployment_problems(settings: Settings, environ: Mapping[str, str]) -> list[str]:
    """One line per service the deployment cannot reach, each saying what to set; empty when all answer."""
    problems: list[str] = []
    unset = [name for name in DAGSTER_PG_VARIABLES if name not in environ]
    dagster_db: Database | None = None
    if unset:
        problems.append(
            f"Dagster storage (PostgreSQL): set {', '.join(unset)} "
            "(e.g. DAGSTER_PG_HOST=127.0.0.1 DAGSTER_PG_PORT=5432 DAGSTER_PG_DB=dagster DAGSTER_PG_USER=dagster "
            "DAGSTER_PG_PASSWORD=...; empty for no password)"
        )
    elif not environ["DAGSTER_PG_PORT"].isdigit():
        problems.append(f"Dagster storage (PostgreSQL): DAGSTER_PG_PORT={environ['DAGSTER_PG_PORT']!r} is not a port number")
    else:
        dagster_db = dagster_database(environ)
        error = _postgres_answers(environ)
        if error:
            problems.append(f"Dagster storage (PostgreSQL) at {dagster_db} does not answer ({error}): check DAGSTER_PG_*")

    url = settings.database_url or ""
    if not url.startswith(("postgresql", "postgres")):
        problems.append(
            "ledger (PostgreSQL): set TRADEPIPE_DATABASE_URL=postgresql://user@host:5432/tradepipe "
            "(the deployment keeps the ledger in PostgreSQL; SQLite is for make run)"
        )
    else:
        ledger_db = ledger_database(url)
        if dagster_db is not None and ledger_db == dagster_db:
            problems.append(
                f"ledger and Dagster storage are the same database ({ledger_db}): give Dagster its own database "
                "in DAGSTER_PG_DB (both keep their migrations in a table named alembic_version)"
            )
        error = _ledger_answers(url)
        if error:
            problems.append(f"ledger (PostgreSQL) at {ledger_db} does not answer ({error}): check TRADEPIPE_DATABASE_URL")

    if not settings.redis_url:
        problems.append("weights cache (Redis): set TRADEPIPE_REDIS_URL=redis://127.0.0.1:6379/0")
    else:
        error = _redis_answers(settings.redis_url)
        if error:
            problems.append(
                f"weights cache (Redis) at {_redis_address(settings.redis_url)} does not answer ({error}): check TRADEPIPE_REDIS_URL"
            )
    return problems
