"""A ledger database that is down, missing, not migrated, or accepts connections and never answers.

What a trader relies on: every command says what is wrong in one line (no traceback) and exits 3;
nothing creates an empty SQLite file in the current folder; a wait on the database is bounded by
the configured connect timeout. "Down" is a closed port, "hung" a real socket that accepts and
sleeps, "not migrated" a real empty database: no mocks.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest
from click.testing import CliRunner

from tradepipe.adapters.db.engine import create_sqlite_file, get_engine
from tradepipe.cli.main import main as cli

CLOSED_PORT_URL = "postgresql://trader:s3cr3t-pw@127.0.0.1:1/tradepipe"
READ_COMMANDS = (["status"], ["status", "--json"], ["weights", "show"], ["weights", "promote", "1"], ["risk", "reset"])


@pytest.fixture
def silent_database() -> Iterator[str]:
    """A TCP server that accepts every connection and never sends a byte (a hung database or proxy)."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"postgresql://trader:s3cr3t-pw@127.0.0.1:{server.getsockname()[1]}/tradepipe"
    finally:
        stop.set()
        thread.join(timeout=2)
        for connection in held:
            connection.close()
        server.close()


def run(args: list[str]) -> tuple[int, str, float]:
    started = time.perf_counter()
    result = CliRunner().invoke(cli, args)
    return result.exit_code, result.output, time.perf_counter() - started


def assert_one_line(output: str, *expected: str) -> None:
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    assert "Traceback" not in output and "s3cr3t-pw" not in output
    for text in expected:
        assert text in lines[0], output


@pytest.mark.parametrize("args", READ_COMMANDS, ids=" ".join)
def test_a_missing_sqlite_ledger_is_one_line_and_no_file_is_created(args: list[str], tmp_path: Path) -> None:
    code, output, _ = run(args)
    assert code == 3
    assert_one_line(output, "no ledger database at", "tradepipe db upgrade")
    assert list(tmp_path.iterdir()) == []  # not even TRADEPIPE_HOME's folder: the cwd is left as it was


@pytest.mark.parametrize("args", READ_COMMANDS, ids=" ".join)
def test_a_database_that_is_down_is_one_line(args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", CLOSED_PORT_URL)
    code, output, seconds = run(args)
    assert code == 3
    assert_one_line(output, "down or unreachable", "postgresql://***@127.0.0.1:1/tradepipe")
    assert seconds < 5


def test_an_unmigrated_database_is_one_line(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    create_sqlite_file(database_url)  # an existing, empty SQLite file (PostgreSQL: the fresh empty database)
    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", database_url)
    for args in READ_COMMANDS:
        code, output, _ = run(args)
        assert code == 3, args
        assert_one_line(output, "is not migrated: run `tradepipe db upgrade`")


def test_db_upgrade_on_a_database_that_is_down_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", CLOSED_PORT_URL)
    code, output, _ = run(["db", "upgrade"])
    assert code == 3
    assert_one_line(output, "down or unreachable")


def test_a_database_that_accepts_and_never_answers_costs_the_connect_timeout(
    silent_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", silent_database)
    monkeypatch.setenv("TRADEPIPE_DATABASE_CONNECT_TIMEOUT_SECONDS", "1")
    code, output, seconds = run(["status"])
    assert code == 3
    assert_one_line(output, "did not answer within 1 s", "TRADEPIPE_DATABASE_CONNECT_TIMEOUT_SECONDS")
    assert 0.9 < seconds < 4  # bounded by the setting (libpq may try IPv4 and a second attempt)


def test_the_default_connect_timeout_applies_without_configuration(silent_database: str) -> None:
    """No setting at all: the adapter's default (10 s) still bounds the wait; it never hangs."""
    started = time.perf_counter()
    with pytest.raises(Exception, match="timeout expired"):
        with get_engine(silent_database).connect():
            pass
    assert 9 < time.perf_counter() - started < 15


def test_postgres_statement_timeout_is_set_on_every_connection(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlalchemy as sa

    from tradepipe.config.settings import load_settings

    monkeypatch.setenv("TRADEPIPE_DATABASE_STATEMENT_TIMEOUT_SECONDS", "0.5")
    settings = load_settings(database_url=postgres_url)
    with get_engine(postgres_url, settings.database_timeouts).connect() as connection:
        assert connection.scalar(sa.text("SHOW statement_timeout")) == "500ms"
        started = time.perf_counter()
        with pytest.raises(sa.exc.OperationalError, match="statement timeout"):
            connection.execute(sa.text("SELECT pg_sleep(5)"))
        assert time.perf_counter() - started < 2


def test_sqlite_busy_timeout_follows_the_setting(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlalchemy as sa

    from tradepipe.config.settings import load_settings

    create_sqlite_file(sqlite_url)
    monkeypatch.setenv("TRADEPIPE_DATABASE_STATEMENT_TIMEOUT_SECONDS", "2.5")
    settings = load_settings(database_url=sqlite_url)
    with get_engine(sqlite_url, settings.database_timeouts).connect() as connection:
        assert connection.scalar(sa.text("PRAGMA busy_timeout")) == 2500
