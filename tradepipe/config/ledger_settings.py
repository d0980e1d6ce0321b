"""The few settings that say where the ledger is (home, database URL, book, database timeouts): their
variables, defaults and bounds, and a reader of them that needs only the standard library.

``Settings`` (pydantic, ``settings.py``) takes its defaults and bounds for these fields from here, so
both read the same thing. The reader is for commands that must answer at once (``tradepipe status``):
pydantic-settings costs a few tenths of a CPU second to import. It vouches for its answer only when the
environment (and ``.env``) set nothing but these variables, in plain forms it checks exactly as
``Settings`` does; then every other setting is at its default, which the full checks accept (tested).
Otherwise it answers None and the caller reads the full ``Settings``, which also names any bad value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PREFIX = "TRADEPIPE_"
TEST_PREFIX = "TRADEPIPE_TEST_"
# TRADEPIPE_* names read outside Settings: the deployment's process addresses (deploy/Procfile,
# deploy/workspace.yaml), the Celery broker of the README's executor example, and the test suite's own.
PROCESS_VARIABLES = frozenset({
    "TRADEPIPE_CODE_SERVER_HOST", "TRADEPIPE_CODE_SERVER_PORT", "TRADEPIPE_WEBSERVER_HOST", "TRADEPIPE_WEBSERVER_PORT",
    "TRADEPIPE_CELERY_BROKER",
})

DEFAULT_HOME = Path(".tradepipe")
DEFAULT_BOOK = "main"
BOOK_PATTERN = r"^[a-z0-9_-]{1,32}$"
DATABASE_SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg2")
MAX_CONNECT_TIMEOUT_S = 600
MAX_STATEMENT_TIMEOUT_S = 3600


@dataclass(frozen=True)
class DatabaseTimeouts:
    """How long any database call may wait (seconds). The defaults are the documented settings' defaults."""

    connect_s: float = 10.0
    """PostgreSQL: establishing a connection, including a server that accepts and never answers."""
    statement_s: float = 60.0
    """PostgreSQL: one statement (``statement_timeout``); SQLite: waiting for another writer (busy timeout)."""


def default_database_url(home: Path) -> str:
    """The ledger when TRADEPIPE_DATABASE_URL is unset: a SQLite file in TRADEPIPE_HOME."""
    return f"sqlite:///{(home / 'tradepipe.sqlite').resolve()}"


def database_url_problem(value: str) -> str | None:
    """Why ``value`` is no database URL tradepipe can use (None when it is one)."""
    scheme = value.split("://", 1)[0] if "://" in value else ""
    if scheme in DATABASE_SCHEMES:
        return None
    return (
        f"malformed database URL (scheme {scheme or 'missing'!r}): expected "
        "sqlite:///path/to/file.sqlite or postgresql://user@host:5432/dbname"
    )


@dataclass(frozen=True)
class LedgerSettings:
    """Where the ledger is and how long to wait for it; ``Settings.ledger`` gives the same from the full settings."""

    home: Path = DEFAULT_HOME
    database_url: str | None = None
    book: str = DEFAULT_BOOK
    timeouts: DatabaseTimeouts = field(default_factory=DatabaseTimeouts)

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or default_database_url(self.home)


_PLAIN_NUMBER = re.compile(r"\d{1,9}(\.\d{1,9})?")


def _seconds(bound: float) -> Callable[[str], float | None]:
    def parse(text: str) -> float | None:
        if not _PLAIN_NUMBER.fullmatch(text):
            return None
        value = float(text)
        return value if 0 < value <= bound else None

    return parse


# field name -> its value from the variable's text; None: a value this reader does not vouch for
_READERS: dict[str, Callable[[str], Any]] = {
    "home": lambda text: Path(text) if text and text == text.strip() else None,
    "database_url": lambda text: text if database_url_problem(text) is None else None,
    # fullmatch: re's "$" also matches before a trailing newline, which pydantic's pattern refuses
    "book": lambda text: text if re.fullmatch(BOOK_PATTERN.strip("^$"), text) else None,
    "database_connect_timeout_seconds": _seconds(MAX_CONNECT_TIMEOUT_S),
    "database_statement_timeout_seconds": _seconds(MAX_STATEMENT_TIMEOUT_S),
}


def read_ledger_settings(environ: Mapping[str, str] | None = None, dotenv: Path = Path(".env")) -> LedgerSettings | None:
    """The ledger settings from the environment and ``.env`` (the environment wins, names in any case, as
    ``Settings`` reads them); None when anything else is set or a value is not one this reader vouches for."""
    given: dict[str, str] | None = {}
    if dotenv.is_file():
        from dotenv import dotenv_values  # the parser pydantic-settings uses for the same file

        given = _settings_names({name: value or "" for name, value in dotenv_values(dotenv).items() if name})
    from_environment = _settings_names(os.environ if environ is None else environ)
    if given is None or from_environment is None:
        return None
    given.update(from_environment)
    if set(given) - set(_READERS):
        return None
    values = {name: _READERS[name](text) for name, text in given.items()}
    if any(value is None for value in values.values()):
        return None
    defaults = DatabaseTimeouts()
    return LedgerSettings(
        home=values.get("home", DEFAULT_HOME),
        database_url=values.get("database_url"),
        book=values.get("book", DEFAULT_BOOK),
        timeouts=DatabaseTimeouts(
            values.get("database_connect_timeout_seconds", defaults.connect_s),
            values.get("database_statement_timeout_seconds", defaults.statement_s),
        ),
    )


def _settings_names(variables: Mapping[str, str]) -> dict[str, str] | None:
    """The settings' field names and values among ``variables`` (None if one name is given twice in different cases)."""
    found: dict[str, str] = {}
    for name, value in variables.items():
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper.startswith(TEST_PREFIX) or upper in PROCESS_VARIABLES:
            continue
        key = upper.removeprefix(ENV_PREFIX).lower()
        if key in found:
            return None
        found[key] = value
    return found
