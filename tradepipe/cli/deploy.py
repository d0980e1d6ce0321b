"""``tradepipe deploy check``: what ``make deploy`` runs before it starts anything."""

from __future__ import annotations

import os
import sys

import click

from tradepipe.cli.context import command_settings


@click.group()
def deploy() -> None:
    """The scheduled deployment on PostgreSQL (docs/deployment.md)."""


@deploy.command("check")
def deploy_check() -> None:
    """Check that PostgreSQL (Dagster storage and ledger) and Redis answer; one line per missing service."""
    from tradepipe.cli.deployment_check import deployment_problems
    from tradepipe.cli.progress import working

    settings = command_settings()
    with working("asking PostgreSQL and Redis"):  # each wait is bounded by its connect timeout
        problems = deployment_problems(settings, os.environ)
    for problem in problems:
        click.echo(f"missing: {problem}", err=True)
    if problems:
        click.echo("tradepipe: the deployment cannot start until these answer (docs/deployment.md)", err=True)
        sys.exit(1)
    click.echo("tradepipe: Dagster storage, ledger and Redis answer")
