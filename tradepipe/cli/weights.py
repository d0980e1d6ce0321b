"""``tradepipe weights``: the live set, the recorded decisions, and explicit promotion."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from tradepipe.cli.context import command_settings, ledger_session_factory
from tradepipe.cli.progress import working
from tradepipe.config.settings import Settings


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
@click.option("--yes", is_flag=True, help="Promote without asking (required when stdin is not a terminal).")
@click.option("--force", is_flag=True, help="Promote a set with an agent above TRADEPIPE_MAX_WEIGHT (the concentration limit).")
def weights_promote(weight_history_id: int, yes: bool, force: bool) -> None:
    """Make a recorded weight set (e.g. a replay) the live weights; the next trading cycle uses it.

    Prints the difference from the live set and its evidence, then asks for confirmation (--yes skips it).
    """
    from tradepipe.trading.weight_publishing import UnknownWeightsError, promotion_preview, publish_weights

    settings = command_settings()
    ledger_session_factory(settings)  # a missing or unmigrated ledger is one line, not a traceback
    try:
        preview = promotion_preview(settings, weight_history_id)
    except UnknownWeightsError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    for line in promotion_lines(preview, settings.max_weight):
        click.echo(line)
    if preview.concentrated and not force:
        agent, share = preview.concentrated[0]
        click.echo(f"not promoted: {agent} would hold {share:.0%}, above the concentration limit TRADEPIPE_MAX_WEIGHT "
                   f"{settings.max_weight:.0%}; pass --force to promote it anyway", err=True)
        sys.exit(2)
    if not yes:
        if not sys.stdin.isatty():
            click.echo("not promoted: stdin is not a terminal, so nobody can confirm; pass --yes to promote", err=True)
            sys.exit(2)
        if not click.confirm(f"promote weight_history {weight_history_id} to live?", default=False):
            click.echo("not promoted")
            sys.exit(1)
    try:
        with working(f"promoting weight_history {weight_history_id}"):
            publication = publish_weights(settings, weight_history_id)
    except UnknownWeightsError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    where = "database and Redis" if publication.redis else "database"
    click.echo(f"weight_history {weight_history_id} is live ({where}): {publication.weights}")
    try:
        with working("updating the live_weights page of the Dagster instance"):  # loading Dagster takes seconds
            shown_in = record_promotion_in_dagster(settings, weight_history_id)
    except Exception as exc:  # noqa: BLE001 - the promotion is recorded and live; only the UI's copy failed
        click.echo(f"the live_weights page was not updated (Dagster instance: {type(exc).__name__}: {exc}); "
                   "it shows the new set after its next materialisation", err=True)
        return
    if shown_in is None:
        click.echo("no Dagster instance found (DAGSTER_HOME, or TRADEPIPE_HOME/dagster of `make run`): "
                   "the live_weights page shows the new set after its next materialisation")


def record_promotion_in_dagster(settings: Settings, weight_history_id: int) -> Path | None:
    """Report the promotion to the Dagster instance of this home, so the ``live_weights`` page shows the live set.

    The instance is DAGSTER_HOME's when set, else the one `make run` keeps under TRADEPIPE_HOME/dagster;
    without one (no UI was ever started) there is nothing to update. Returns the instance's folder.
    """
    home = Path(os.environ["DAGSTER_HOME"]) if os.environ.get("DAGSTER_HOME") else settings.home / "dagster"
    if not (home / "dagster.yaml").is_file():
        return None
    import dagster as dg

    from tradepipe.assets.weights import promotion_materialization

    instance = dg.DagsterInstance.from_config(str(home))
    try:
        instance.report_runless_asset_event(promotion_materialization(settings, ledger_session_factory(settings), weight_history_id))
    finally:
        instance.dispose()
    return home


def promotion_lines(preview: Any, max_weight: float) -> list[str]:
    from tradepipe.core.formatting import percent
    from tradepipe.core.weighting import weight_differences

    live = f"live weight_history {preview.live_id}" if preview.live_id else "static defaults (nothing published yet)"
    lines = [f"weight_history {preview.weight_history_id} ({preview.method}{', replay' if preview.replay else ''}) against the {live}:",
             f"  {'agent':<16} {'live':>8} {'new':>8} {'change':>9}"]
    for agent, old, new in weight_differences(preview.live, preview.new):
        flag = "  above the limit" if new > max_weight + 1e-12 else ""
        lines.append(f"  {agent:<16} {percent(old, 1):>8} {percent(new, 1):>8} {percent(new - old, 1, signed=True):>9}{flag}")

    def figure(value: float | None, signed: bool = False) -> str:
        return "-" if value is None else f"{value:+.3f}" if signed else f"{value:.3f}"

    lines += [
        f"  evidence: window {preview.window}; expected Sharpe {figure(preview.expected_sharpe)}, "
        f"Sharpe improvement {figure(preview.sharpe_improvement, True)}, return improvement "
        f"{'-' if preview.return_improvement is None else percent(preview.return_improvement, 2, signed=True)}",
        f"  reason: {preview.reason or '-'}",
    ]
    return lines
