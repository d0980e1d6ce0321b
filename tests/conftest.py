"""Shared fixtures. Services and the shared candles are optional on a laptop and mandatory in CI.

Without TRADEPIPE_TEST_POSTGRES_URL / TRADEPIPE_TEST_REDIS_URL / ../shared/data the tests that need them
skip with a one-line reason; with TRADEPIPE_TEST_REQUIRE_SERVICES=1 (set by .ci/run) they fail instead.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Iterator

import pytest

REQUIRE_SERVICES = os.environ.get("TRADEPIPE_TEST_REQUIRE_SERVICES") == "1"
REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def unavailable(reason: str) -> None:
    """Skip on a laptop; fail under CI's TRADEPIPE_TEST_REQUIRE_SERVICES=1."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (required: TRADEPIPE_TEST_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(reason)


def shared_data_dir() -> Path:
    path = Path(os.environ.get("TRADEPIPE_TEST_SHARED_DATA", DEFAULT_SHARED_DATA))
    if not (path / "ohlcv").is_dir():
        unavailable(f"shared candles not found at {path} (set TRADEPIPE_TEST_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return shared_data_dir()


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's own TRADEPIPE_* variables or .env, or writes into ./.tradepipe."""
    for name in list(os.environ):
        if name.startswith("TRADEPIPE_") and not name.startswith("TRADEPIPE_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TRADEPIPE_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tradepipe.sqlite'}"


def _postgres_server_url() -> str:
    url = os.environ.get("TRADEPIPE_TEST_POSTGRES_URL")
    if not url:
        unavailable("PostgreSQL not configured (set TRADEPIPE_TEST_POSTGRES_URL)")
    return url  # type: ignore[return-value]


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    import sqlalchemy as sa

    from tradepipe.adapters.db.engine import driver_url, get_engine

    server_url = _postgres_server_url()
    admin = sa.create_engine(driver_url(server_url), isolation_level="AUTOCOMMIT")
    name = f"tradepipe_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        unavailable(f"PostgreSQL at {server_url} unreachable: {exc.orig}")
    base, _, _ = server_url.rpartition("/")
    url = f"{base}/{name}"
    try:
        yield url
    finally:
        get_engine(url).dispose()
        get_engine.cache_clear()
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Runs a test on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def migrated_url(database_url: str) -> str:
    from tradepipe.adapters.db.engine import upgrade

    upgrade(database_url)
    return database_url


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis database on the test server, flushed before and after the test."""
    import redis

    url = os.environ.get("TRADEPIPE_TEST_REDIS_URL")
    if not url:
        unavailable("Redis not configured (set TRADEPIPE_TEST_REDIS_URL)")
    client = redis.Redis.from_url(url)  # type: ignore[arg-type]
    try:
        client.ping()
    except redis.RedisError as exc:
        unavailable(f"Redis at {url} unreachable: {exc}")
    client.flushdb()
    yield url  # type: ignore[misc]
    client.flushdb()
    client.close()
