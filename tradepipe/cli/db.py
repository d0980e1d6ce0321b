"""``tradepipe db``: the ledger's schema migrations (Alembic)."""

from __future__ import annotations

import click

from tradepipe.cli.context import command_settings
from tradepipe.cli.progress import working


@click.group()
def db() -> None:
    """Database schema migrations (Alembic)."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    from tradepipe.adapters.db.engine import current_revision, upgrade

    settings = command_settings()
    with working(f"migrating the ledger up to {revision}"):
        upgrade(settings.resolved_database_url, revision)
    click.echo(f"database at revision {current_revision(settings.resolved_database_url)}")


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION ('base' removes every table)."""
    from tradepipe.adapters.db.engine import current_revision, downgrade

    settings = command_settings()
    with working(f"migrating the ledger down to {revision}"):
        downgrade(settings.resolved_database_url, revision)
    click.echo(f"database at revision {current_revision(settings.resolved_database_url)}")
