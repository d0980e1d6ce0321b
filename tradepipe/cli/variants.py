"""``tradepipe variants``: the strategy variants the research loop tried, the live pool, and human changes.

``promote`` runs the loop's own check (``research.selection.promotion_check`` on the variant's recorded
figures, and the pool-size limit): a person cannot promote what the loop would refuse.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any

import click

from tradepipe.cli.context import command_settings, ledger_session_factory


@click.group()
def variants() -> None:
    """Strategy variants: candidates, evaluations, the live pool; promote or retire by hand."""


def _record(row: Any) -> dict[str, Any]:
    return {
        "name": row.name, "family": row.family, "parameters": row.parameters, "origin": row.origin,
        "status": row.status, "generation": row.generation, "deflated_sharpe": row.deflated_sharpe,
        "pbo": row.pbo, "trials": row.trials, "metrics": row.metrics, "reason": row.reason,
        "created_at": row.created_at.isoformat() if row.created_at else None,
        "updated_at": row.updated_at.isoformat() if row.updated_at else None,
    }


def _number(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


@variants.command("list")
@click.option("--status", type=click.Choice(["candidate", "evaluated", "promoted", "retired"]), default=None)
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def variants_list(status: str | None, limit: int, as_json: bool) -> None:
    """Variants by deflated Sharpe (best first), optionally of one status."""
    from tradepipe.adapters.db.research import list_variants

    settings = command_settings()
    with ledger_session_factory(settings)() as session:
        records = [_record(r) for r in list_variants(session, status, limit)]
    if as_json:
        click.echo(json.dumps(records, indent=2))
        return
    if not records:
        click.echo("no strategy variants recorded yet (the variant_candidates asset proposes them)")
    for r in records:
        click.echo(f"{r['name']} {r['status']}: DSR {_number(r['deflated_sharpe'], '.3f')} over {r['trials'] or '-'} trials, PBO {_number(r['pbo'], '.2f')} — {r['reason']}")


@variants.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
def variants_show(name: str, as_json: bool) -> None:
    """One variant with its parameters, figures and every status change."""
    from tradepipe.adapters.db.research import variant_by_name, variant_events

    settings = command_settings()
    with ledger_session_factory(settings)() as session:
        row = variant_by_name(session, name)
        if row is None:
            click.echo(f"no variant named {name!r}", err=True)
            sys.exit(2)
        record = _record(row)
        record["events"] = [{"at": e.at.isoformat(), "action": e.action, "status": e.status, "actor": e.actor, "reason": e.reason} for e in variant_events(session, row.id)]
    if as_json:
        click.echo(json.dumps(record, indent=2))
        return
    click.echo(f"{record['name']} ({record['family']}, {record['origin']}): {record['status']}")
    click.echo("parameters: " + ", ".join(f"{k}={v}" for k, v in sorted(record["parameters"].items())))
    click.echo(f"deflated Sharpe {_number(record['deflated_sharpe'], '.3f')} over {record['trials'] or '-'} trials, PBO {_number(record['pbo'], '.2f')}")
    for event in record["events"]:
        click.echo(f"  {event['at']} {event['action']} -> {event['status']} by {event['actor']}: {event['reason']}")


def _change(name: str, action: str, reason: str | None) -> None:
    from tradepipe.adapters.db.research import pool_members, set_status, variant_by_name
    from tradepipe.research.selection import PoolRules, promotion_check, recorded_evaluation

    settings = command_settings()
    rules = PoolRules()
    with ledger_session_factory(settings)() as session, session.begin():
        row = variant_by_name(session, name)
        if row is None:
            click.echo(f"no variant named {name!r}", err=True)
            sys.exit(2)
        now = datetime.now(UTC)
        if action == "retire":
            if row.status != "promoted":
                click.echo(f"{name} is {row.status}, not in the pool: nothing retired", err=True)
                sys.exit(2)
            set_status(session, row, "retire", "retired", reason or "retired by hand", now, actor="cli")
            click.echo(f"{name} retired: {reason or 'retired by hand'}")
            return
        if row.status == "promoted":
            click.echo(f"{name} is already in the pool")
            return
        if row.deflated_sharpe is None:
            click.echo(f"{name} has not been evaluated: nothing promoted", err=True)
            sys.exit(2)
        if row.pbo is None:
            # The PBO belongs to the generation's selection (live_pool); until then no rule can pass it.
            click.echo(f"{name} not promoted: its generation has not been selected yet (PBO unknown; materialise live_pool)", err=True)
            sys.exit(2)
        problem = promotion_check(recorded_evaluation(row.name, row.metrics, row.deflated_sharpe, row.trials, row.pbo), rules)
        if problem is None and len(pool_members(session)) >= rules.max_pool:
            problem = f"the pool is full ({rules.max_pool} members): retire one first"
        if problem:
            click.echo(f"{name} not promoted: {problem}", err=True)
            sys.exit(2)
        why = f"promoted by hand: deflated Sharpe {row.deflated_sharpe:.3f} over {row.trials} trials" + (f"; {reason}" if reason else "")
        set_status(session, row, "promote", "promoted", why, now, actor="cli")
        click.echo(f"{name} promoted into the pool")


@variants.command("promote")
@click.argument("name")
@click.option("--reason", default=None, help="why, recorded with the change")
def variants_promote(name: str, reason: str | None) -> None:
    """Promote an evaluated variant into the live pool, if it passes the loop's own check."""
    _change(name, "promote", reason)


@variants.command("retire")
@click.argument("name")
@click.option("--reason", default=None, help="why, recorded with the change")
def variants_retire(name: str, reason: str | None) -> None:
    """Take a member out of the live pool."""
    _change(name, "retire", reason)
