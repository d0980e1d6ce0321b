"""What every ``tradepipe`` command shares: its checked settings, its ledger sessions, and one-line errors.

A bad setting ends the command with its one-line reason (``command_settings``); a database problem is one
line, never a traceback.

Commands that read the ledger check it first (``ledger_session_factory``): a missing SQLite file is
reported, not created, and an unmigrated database says to run ``tradepipe db upgrade``. Anything
the database raises later (it went down mid-command, a statement timed out) is turned into the same
kind of line by the group itself.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

# Imported where used: `tradepipe --help` and every command pay for SQLAlchemy and pydantic only when they need them.
if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from tradepipe.config.settings import Settings

EXIT_LEDGER_UNAVAILABLE = 3
_SETTINGS_KEY = "tradepipe.settings"


class LedgerErrorsGroup(click.Group):
    """A click group that prints database failures of any subcommand as one line and exits 3."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as error:
            from tradepipe.adapters.db.connection import LedgerUnavailable, describe_database_error

            if isinstance(error, LedgerUnavailable):
                click.echo(f"tradepipe: {error}", err=True)
                sys.exit(EXIT_LEDGER_UNAVAILABLE)
            from sqlalchemy.exc import SQLAlchemyError

            from tradepipe.config.settings import Settings

            if isinstance(error, SQLAlchemyError):
                settings = ctx.meta.get(_SETTINGS_KEY)
                if not isinstance(settings, Settings):
                    settings = Settings()
                line = describe_database_error(error, settings.resolved_database_url, settings.database_timeouts)
                click.echo(f"tradepipe: {line}", err=True)
            else:
                raise
        sys.exit(EXIT_LEDGER_UNAVAILABLE)


def remember_settings(settings: Settings) -> Settings:
    """Keep the command's settings so a database error is described with its URL and timeouts."""
    context = click.get_current_context(silent=True)
    if context is not None:
        context.meta[_SETTINGS_KEY] = settings
    return settings


def ledger_session_factory(settings: Settings) -> sessionmaker[Session]:
    """Sessions on an existing, migrated ledger; LedgerUnavailable (one line) otherwise."""
    from tradepipe.adapters.db.engine import session_factory
    from tradepipe.adapters.db.health import check_ledger

    remember_settings(settings)
    check_ledger(settings.resolved_database_url, settings.database_timeouts)
    return session_factory(settings.resolved_database_url, settings.database_timeouts)


def command_settings(**overrides: object) -> Settings:
    """The settings, checked as at code-location load; a bad value ends the command with its one-line reason."""
    from tradepipe.config.preflight import check_settings
    from tradepipe.config.settings import SettingsError, load_settings

    try:
        settings = remember_settings(load_settings(**overrides))
        check_settings(settings)
    except SettingsError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    return settings
