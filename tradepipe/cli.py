"""The ``tradepipe`` command line: database migrations, status, backtests, weights and risk controls."""

from __future__ import annotations

import json
import sys

import click

from tradepipe.settings import Settings, SettingsError, load_settings


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)


@click.group()
def main() -> None:
    """tradepipe: an autonomous crypto trading pipeline on Dagster (paper trading by default)."""


@main.group()
def db() -> None:
    """Database schema migrations (Alembic)."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    from tradepipe.adapters.db.engine import current_revision, upgrade

    settings = _settings()
    upgrade(settings.resolved_database_url, revision)
    click.echo(f"database at revision {current_revision(settings.resolved_database_url)}")


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION ('base' removes every table)."""
    from tradepipe.adapters.db.engine import current_revision, downgrade

    settings = _settings()
    downgrade(settings.resolved_database_url, revision)
    click.echo(f"database at revision {current_revision(settings.resolved_database_url)}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.option("--book", default=None, help="Book to show (default: TRADEPIPE_BOOK).")
def status(as_json: bool, book: str | None) -> None:
    """Portfolio, last trading cycle and current weights."""
    from tradepipe.adapters.db.engine import session_factory
    from tradepipe.status import portfolio_status, render_status

    settings = _settings()
    with session_factory(settings.resolved_database_url)() as session:
        report = portfolio_status(session, book or settings.book)
    click.echo(json.dumps(report, indent=2) if as_json else render_status(report))


if __name__ == "__main__":
    main()
