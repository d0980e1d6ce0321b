"""``tradepipe risk``: risk controls a trader can lift by hand."""

from __future__ import annotations

import click

from tradepipe.cli.context import command_settings, ledger_session_factory

@click.group()
def risk() -> None:
    """Risk controls."""


@risk.command("reset")
def risk_reset() -> None:
    """Lift today's daily-loss halt: for the rest of the UTC day, losses count from the current equity."""
    from tradepipe.adapters.db.ledger import lift_daily_loss_halt

    settings = command_settings()
    with ledger_session_factory(settings).begin() as session:
        equity = lift_daily_loss_halt(session, settings.book)
    if equity is None:
        click.echo("no halt to reset")
        return
    click.echo(f"daily-loss halt lifted for book {settings.book!r}; losses now count from equity {equity}")
