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

# The code location is imported once, at collection. Without TRADEPIPE_PARTITIONS_START its report
# windows start two weeks before today; the tests materialise windows of fixed dates (2026-03), so they
# load it with the documented override (tests/test_definitions.py checks the default in a subprocess).
os.environ["TRADEPIPE_PARTITIONS_START"] = "2025-01-01"


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


_SERVICE_FIXTURES = {
    "PostgreSQL": ("postgres_url",),
    "Redis": ("redis_url",),
    "shared candles": ("shared_data",),
}
_service_outcomes: dict[str, dict[str, int]] = {name: {} for name in _SERVICE_FIXTURES}


def _services_of(item: pytest.Item) -> list[str]:
    names = set(getattr(item, "fixturenames", ()))
    callspec = getattr(item, "callspec", None)
    if callspec is not None and callspec.params.get("database_url") == "postgres":
        names.add("postgres_url")
    return [service for service, fixtures in _SERVICE_FIXTURES.items() if names & set(fixtures)]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        item_services = getattr(report, "tradepipe_services", [])
        for service in item_services:
            counts = _service_outcomes[service]
            counts[report.outcome] = counts.get(report.outcome, 0) + 1


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    outcome.get_result().tradepipe_services = _services_of(item)  # type: ignore[attr-defined]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Says plainly whether the PostgreSQL, Redis and shared-data tests ran or skipped."""
    terminalreporter.section("tradepipe services")
    mode = "required (TRADEPIPE_TEST_REQUIRE_SERVICES=1)" if REQUIRE_SERVICES else "optional (skip when absent)"
    terminalreporter.write_line(f"services are {mode}")
    for service, counts in _service_outcomes.items():
        shown = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())) or "no tests selected"
        terminalreporter.write_line(f"{service} tests: {shown}")
