"""`tradepipe deploy check` (run by `make deploy`): one line per service that does not answer, naming what to set."""

from __future__ import annotations

import socket

import pytest
from click.testing import CliRunner

from tradepipe.cli.main import main

DAGSTER_PG = ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_DB", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD")


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def check(monkeypatch: pytest.MonkeyPatch, **env: str) -> tuple[int, list[str]]:
    for name in DAGSTER_PG:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, ["deploy", "check"])
    return result.exit_code, [line for line in result.output.splitlines() if line.startswith("missing: ")]


def test_nothing_configured_names_every_variable_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    code, lines = check(monkeypatch)
    assert code == 1 and len(lines) == 3
    assert all(name in lines[0] for name in DAGSTER_PG)
    assert "TRADEPIPE_DATABASE_URL=postgresql://" in lines[1]
    assert "TRADEPIPE_REDIS_URL=redis://" in lines[2]


def test_services_that_do_not_answer_are_named_without_their_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    port = closed_port()
    code, lines = check(
        monkeypatch,
        DAGSTER_PG_HOST="127.0.0.1", DAGSTER_PG_PORT=str(port), DAGSTER_PG_DB="dagster",
        DAGSTER_PG_USER="dagster", DAGSTER_PG_PASSWORD="pg-secret",
        TRADEPIPE_DATABASE_URL=f"postgresql://trader:db-secret@127.0.0.1:{port}/tradepipe",
        TRADEPIPE_REDIS_URL=f"redis://:redis-secret@127.0.0.1:{port}/0",
    )
    assert code == 1 and len(lines) == 3
    assert f"Dagster storage (PostgreSQL) at 127.0.0.1:{port}/dagster does not answer" in lines[0]
    assert f"ledger (PostgreSQL) at 127.0.0.1:{port}/tradepipe does not answer" in lines[1]
    assert f"weights cache (Redis) at 127.0.0.1:{port}/0 does not answer" in lines[2]
    assert not any(secret in " ".join(lines) for secret in ("pg-secret", "db-secret", "redis-secret"))


def test_the_ledger_and_dagster_on_one_database_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    port = closed_port()
    _, lines = check(
        monkeypatch,
        DAGSTER_PG_HOST="127.0.0.1", DAGSTER_PG_PORT=str(port), DAGSTER_PG_DB="shared",
        DAGSTER_PG_USER="u", DAGSTER_PG_PASSWORD="",
        TRADEPIPE_DATABASE_URL=f"postgresql://u@127.0.0.1:{port}/shared",
    )
    assert any("same database (127.0.0.1:" in line and "alembic_version" in line for line in lines)


def test_all_three_answering_passes(monkeypatch: pytest.MonkeyPatch, postgres_url: str, redis_url: str) -> None:
    from sqlalchemy.engine import make_url

    ledger = make_url(postgres_url)
    code, lines = check(
        monkeypatch,
        DAGSTER_PG_HOST=ledger.host or "127.0.0.1", DAGSTER_PG_PORT=str(ledger.port or 5432),
        DAGSTER_PG_DB="postgres", DAGSTER_PG_USER=ledger.username or "postgres", DAGSTER_PG_PASSWORD=ledger.password or "",
        TRADEPIPE_DATABASE_URL=postgres_url, TRADEPIPE_REDIS_URL=redis_url,
    )
    assert (code, lines) == (0, [])
