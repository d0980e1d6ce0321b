"""``tradepipe weights``: the live set, the recorded decisions, and explicit promotion."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from tradepipe.cli.context import command_settings, ledger_session_factory

@click.group()
def weights() -> None:
    """Agent weights: what is live, what was decided, and explicit promotion of a recorded set."""


@weights.command("show")
@click.option("--limit", default=10, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def weights_show(limit: int, as_json: bool) -> None:
    """The live weights and the latest weight_history decisions."""
    from tradepipe.adapters.db.weights import recent_weight_decisions

    settings = command_settings()
    with ledger_session_factory(settings)() as session:
        rows = recent_weight_decisions(session, settings.book, limit)
    records: list[dict[str, Any]] = [
        {
            "id": r.id,
            "partition": r.partition_date.isoformat() if r.partition_date else None,
            "method": r.method,
            "live": r.is_live,
            "replay": r.is_replay,
            "updated": r.weights_updated,
            "sharpe_improvement": r.sharpe_improvement,
            "new_weights": r.new_weights,
            "reason": r.reason,
        }
        for r in rows
    ]
    if as_json:
        click.echo(json.dumps(records, indent=2))
        return
    if not records:
        click.echo("no weight decisions yet (weights_daily decides at 00:30 UTC; after a synthetic warm-up, warmup_analytics decides today)")
    for r in records:
        flags = " LIVE" if r["live"] else ""
        flags += " replay" if r["replay"] else ""
        shown = ", ".join(f"{k} {v:.3f}" for k, v in sorted(r["new_weights"].items()))
        click.echo(f"#{r['id']} {r['partition']} {r['method']}{flags}: {shown}  — {r['reason']}")


@weights.command("promote")
@click.argument("weight_history_id", type=int)
def weights_promote(weight_history_id: int) -> None:
    """Make a recorded weight set (e.g. a replay) the live weights; the next trading cycle uses it."""
    from tradepipe.trading.weight_publishing import UnknownWeightsError, publish_weights

    settings = command_settings()
    ledger_session_factory(settings)  # a missing or unmigrated ledger is one line, not a traceback
    try:
        publication = publish_weights(settings, weight_history_id)
    except UnknownWeightsError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    where = "database and Redis" if publication.redis else "database"
    click.echo(f"weight_history {weight_history_id} is live ({where}): {publication.weights}")
