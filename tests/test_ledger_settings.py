"""The light reader of where the ledger is gives what the full settings give, or declines (None).

It declines whenever it could differ from ``Settings`` + ``check_settings``: another variable is set, or a
value is not in the plain form it checks. When it answers, every other setting is at its default, which the
full checks accept (the last test), so the command it serves refuses nothing the full path would accept.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tradepipe.config.ledger_settings import LedgerSettings, read_ledger_settings
from tradepipe.config.preflight import check_settings
from tradepipe.config.settings import load_settings


def full(environ: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> LedgerSettings:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    check_settings(settings)
    return settings.ledger


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"TRADEPIPE_HOME": "/srv/trading"},
        {"TRADEPIPE_DATABASE_URL": "postgresql://trader:pw@db:5432/ledger", "TRADEPIPE_BOOK": "paper-2"},
        {"TRADEPIPE_DATABASE_URL": "postgresql+psycopg2://db/ledger?sslmode=require", "TRADEPIPE_DATABASE_CONNECT_TIMEOUT_SECONDS": "2.5"},
        {"tradepipe_book": "lower_case", "TRADEPIPE_DATABASE_STATEMENT_TIMEOUT_SECONDS": "3600", "TRADEPIPE_TEST_POSTGRES_URL": "x"},
        {"TRADEPIPE_DATABASE_URL": "sqlite:///relative/ledger.sqlite", "TRADEPIPE_WEBSERVER_PORT": "3000"},
    ],
)
def test_the_light_reader_reads_what_the_settings_read(environ: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    light = read_ledger_settings({**environ, "TRADEPIPE_HOME": environ.get("TRADEPIPE_HOME", "home")})
    monkeypatch.setenv("TRADEPIPE_HOME", "home")
    assert light is not None
    assert light == full(environ, monkeypatch)
    assert light.resolved_database_url == load_settings().resolved_database_url


@pytest.mark.parametrize(
    "environ",
    [
        {"TRADEPIPE_SEED": "8"},  # any other setting: the full settings decide
        {"TRADEPIPE_LIVEE": "1"},  # unknown: the full checks name it
        {"TRADEPIPE_BOOK": "Main"},  # invalid: the full settings say why
        {"TRADEPIPE_BOOK": "main\n"},
        {"TRADEPIPE_DATABASE_URL": "mysql://db/x"},
        {"TRADEPIPE_DATABASE_URL": ""},
        {"TRADEPIPE_DATABASE_CONNECT_TIMEOUT_SECONDS": "0"},
        {"TRADEPIPE_DATABASE_CONNECT_TIMEOUT_SECONDS": "601"},
        {"TRADEPIPE_DATABASE_STATEMENT_TIMEOUT_SECONDS": "1e1"},  # valid, but not a plain form: the full settings read it
        {"TRADEPIPE_DATABASE_STATEMENT_TIMEOUT_SECONDS": "nan"},
        {"TRADEPIPE_HOME": ""},
        {"TRADEPIPE_BOOK": "a", "tradepipe_book": "b"},  # the same variable twice: which one wins is pydantic's business
    ],
)
def test_the_light_reader_declines_what_it_cannot_vouch_for(environ: dict[str, str]) -> None:
    assert read_ledger_settings(environ) is None


def test_dotenv_is_read_and_the_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("TRADEPIPE_BOOK=from-dotenv\nTRADEPIPE_DATABASE_URL=sqlite:///dotenv.sqlite\nOTHER=1\n")  # cwd is tmp_path
    monkeypatch.delenv("TRADEPIPE_HOME")
    light = read_ledger_settings({"TRADEPIPE_BOOK": "from-env"})
    monkeypatch.setenv("TRADEPIPE_BOOK", "from-env")
    assert light == LedgerSettings(database_url="sqlite:///dotenv.sqlite", book="from-env") == full({}, monkeypatch)

    (tmp_path / ".env").write_text("TRADEPIPE_FEE_BPS=2\n")
    assert read_ledger_settings({}) is None


def test_with_only_the_ledger_variables_set_every_other_setting_passes_the_full_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the light reader relies on: the defaults of everything it does not read are valid."""
    for name, value in {
        "TRADEPIPE_HOME": "h", "TRADEPIPE_DATABASE_URL": "postgresql://db/x", "TRADEPIPE_BOOK": "b",
        "TRADEPIPE_DATABASE_CONNECT_TIMEOUT_SECONDS": "1", "TRADEPIPE_DATABASE_STATEMENT_TIMEOUT_SECONDS": "1",
    }.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    check_settings(settings)
    assert settings.model_fields_set == {"home", "database_url", "book", "database_connect_timeout_seconds", "database_statement_timeout_seconds"}
