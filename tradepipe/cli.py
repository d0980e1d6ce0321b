"""The ``tradepipe`` command line: database migrations, status, backtests, weights and risk controls."""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from tradepipe.cli_errors import LedgerErrorsGroup, ledger_session_factory, remember_settings
from tradepipe.settings import Settings, SettingsError, load_settings


def _settings(**overrides: object) -> Settings:
    """The settings, checked as at code-location load; a bad value ends the command with its one-line reason."""
    from tradepipe.preflight import check_settings

    try:
        settings = remember_settings(load_settings(**overrides))
        check_settings(settings)
    except SettingsError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    return settings


@click.group(cls=LedgerErrorsGroup)  # issue 10: database failures print one line, not a traceback
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
    from tradepipe.status import portfolio_status, render_status

    settings = _settings()
    with ledger_session_factory(settings)() as session:
        report = portfolio_status(session, book or settings.book)
    click.echo(json.dumps(report, indent=2) if as_json else render_status(report))




@main.command()
@click.option("--replay-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="Folder of BASE_QUOTE-TIMEFRAME.csv|.parquet candles (e.g. ../shared/data/ohlcv/binance_2018_octobot).")
@click.option("--book", default="backtest", show_default=True, help="Ledger book to write (never the live book).")
@click.option("--symbols", default=None, help="Comma-separated symbols (default: TRADEPIPE_SYMBOLS).")
@click.option("--timeframe", default=None, help="Bar timeframe of the files (default: TRADEPIPE_TIMEFRAME or 1h).")
@click.option("--reset", is_flag=True, help="Replace the book if it already holds a backtest.")
@click.option("--keep-last-bar", is_flag=True, help="Trade the files' last bar too (exchange dumps end with an unfinished candle).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--start", default=None, help="First bar to trade, ISO (UTC unless zoned), e.g. 2019-01-01.")
@click.option("--end", default=None, help="Last bar to trade, ISO; a bare date includes that whole day.")
@click.option("--quiet", is_flag=True, help="No progress lines (bars done, rate, ETA) on stderr (--json implies it).")
def backtest(
    replay_dir: Path, book: str, symbols: str | None, timeframe: str | None, reset: bool, keep_last_bar: bool, as_json: bool,
    start: str | None, end: str | None, quiet: bool,
) -> None:
    """Run the live trading cycle bar by bar over recorded candles into a separate book (fixed weights;
    `tradepipe walkforward` runs the same cycle with daily weight decisions, in memory)."""
    from tradepipe.backtest import BookInUseError, run_backtest
    from tradepipe.walkforward.data import WalkForwardInputError
    from tradepipe.walkforward.run import parse_time

    try:
        start_ms, end_ms = parse_time(start), parse_time(end, end=True)
    except WalkForwardInputError as exc:
        click.echo(f"backtest refused: {exc}", err=True)
        sys.exit(2)

    overrides: dict[str, object] = {"market_source": "replay", "replay_dir": replay_dir, "timeframe": timeframe or "1h"}
    if symbols:
        overrides["symbols"] = symbols
    settings = _settings(**overrides)
    try:
        summary = run_backtest(
            settings, replay_dir, book, reset=reset, drop_last_bar=not keep_last_bar, start_ms=start_ms, end_ms=end_ms,
            on_progress=None if quiet or as_json else (lambda p: click.echo(p.line().replace("walk-forward", "backtest"), err=True)),
        )
    except (BookInUseError, ValueError) as exc:
        click.echo(f"backtest refused: {exc}", err=True)
        sys.exit(2)
    report = {
        "book": summary.book,
        "cycles": summary.cycles,
        "first_bar": _iso(summary.first_bar_ms),
        "last_bar": _iso(summary.last_bar_ms),
        "starting_cash": str(summary.starting_cash),
        "final_equity": str(summary.final_equity.quantize(Decimal("0.01"))),
        "return_pct": float((summary.final_equity / summary.starting_cash - 1) * 100),
        "fills": summary.fills,
        "cycles_with_skipped_symbols": summary.skipped_cycles,
    }
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(
            f"backtest {report['book']}: {report['cycles']} bars {report['first_bar']} .. {report['last_bar']}, "
            f"equity {report['starting_cash']} -> {report['final_equity']} ({report['return_pct']:+.2f}%), {report['fills']} fills"
        )


def _iso(ms: int) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat()


@main.group()
def weights() -> None:
    """Agent weights: what is live, what was decided, and explicit promotion of a recorded set."""


@weights.command("show")
@click.option("--limit", default=10, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def weights_show(limit: int, as_json: bool) -> None:
    """The live weights and the latest weight_history decisions."""
    from tradepipe.adapters.db.weights import recent_weight_decisions

    settings = _settings()
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
    from tradepipe.weights_service import UnknownWeightsError, publish_weights

    settings = _settings()
    ledger_session_factory(settings)  # a missing or unmigrated ledger is one line, not a traceback
    try:
        publication = publish_weights(settings, weight_history_id)
    except UnknownWeightsError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    where = "database and Redis" if publication.redis else "database"
    click.echo(f"weight_history {weight_history_id} is live ({where}): {publication.weights}")


@main.group()
def risk() -> None:
    """Risk controls."""


@risk.command("reset")
def risk_reset() -> None:
    """Lift today's daily-loss halt: for the rest of the UTC day, losses count from the current equity."""
    from tradepipe.adapters.db.ledger import lift_daily_loss_halt

    settings = _settings()
    with ledger_session_factory(settings).begin() as session:
        equity = lift_daily_loss_halt(session, settings.book)
    if equity is None:
        click.echo("no halt to reset")
        return
    click.echo(f"daily-loss halt lifted for book {settings.book!r}; losses now count from equity {equity}")

# issue 14: trades, profit, plot and warmup live in cli_trader.py
from tradepipe.cli_trader import plot, profit, trades, warmup  # noqa: E402

for _command in (trades, profit, plot, warmup):
    main.add_command(_command)


from tradepipe.cli_reports import COMMANDS as REPORT_COMMANDS  # noqa: E402  (issue 11: email, report, tasks)
for _command in REPORT_COMMANDS: main.add_command(_command)  # noqa: E701


from tradepipe.cli_data import data  # noqa: E402  (issue 12: tradepipe data check)

main.add_command(data)

from tradepipe.cli_deploy import deploy  # noqa: E402  (issue 13)

main.add_command(deploy)


# issue 9: walk-forward evaluation
from tradepipe.cli_walkforward import walkforward  # noqa: E402

main.add_command(walkforward)

if __name__ == "__main__":
    main()
