"""What a trader asks first: ``tradepipe status``, ``trades``, ``profit``, ``plot`` and ``warmup``.

Human output: money to the cent, prices to the market's tick (the finest fill price of the symbol),
times in ISO 8601 UTC. ``--json`` output keeps the ledger's full precision (numbers, not rounded),
so the rows add up to the ledger's totals; times are ISO 8601 UTC strings there too.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from tradepipe.cli.context import command_settings
from tradepipe.cli.progress import progress_bar, working
from tradepipe.core.formatting import money, percent, price
from tradepipe.core.timeframes import iso_utc

if TYPE_CHECKING:  # core.trades loads numpy: `tradepipe status` answers without it
    from tradepipe.core.trades import PeriodProfit, RoundTrip

_CENT = Decimal("0.01")


def iso(ms: int | None) -> str | None:
    return None if ms is None else iso_utc(ms, timespec="auto", suffix="+00:00")


def iso_duration(ms: int) -> str:
    """ISO 8601 duration, e.g. PT2H15M (days as PnD)."""
    seconds = max(ms, 0) // 1000
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, seconds = divmod(rest, 60)
    clock = "".join(f"{n}{u}" for n, u in ((hours, "H"), (minutes, "M"), (seconds, "S")) if n)
    return "P" + (f"{days}D" if days else "") + (f"T{clock}" if clock or not days else "")


def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def trade_record(trip: RoundTrip, as_of_ms: int) -> dict[str, Any]:
    """One round trip as the ``trades --json`` contract lays it out."""
    return {
        "symbol": trip.symbol,
        "side": trip.side,
        "status": trip.status,
        "entry_time": iso(trip.entry_ms),
        "exit_time": iso(trip.exit_ms),
        "entry_price": _number(trip.entry_price),
        "exit_price": _number(trip.exit_price),
        "quantity": _number(trip.quantity),
        "open_quantity": _number(trip.open_quantity),
        "pnl": _number(trip.pnl),
        "fees": _number(trip.fees),
        "unrealized_pnl": _number(trip.unrealized_pnl),
        "mark": _number(trip.mark),
        "duration": iso_duration(trip.duration_ms(as_of_ms)),
        "duration_seconds": trip.duration_ms(as_of_ms) // 1000,
        "agents": trip.credited_agents,
        "agent_contributions": {a: c for a, c in sorted(trip.agents.items())},
        "fills": len(trip.fill_ids),
    }


def period_record(period: PeriodProfit) -> dict[str, Any]:
    """One period as the ``profit --json`` contract lays it out."""
    return {
        "period": period.period,
        "start": period.start.isoformat(),
        "realized_pnl": float(period.realized_pnl),
        "unrealized_pnl": _number(period.unrealized_pnl),
        "fees": float(period.fees),
        "trades": period.trades,
        "wins": period.wins,
        "win_rate": period.win_rate,
        "equity_end": _number(period.equity_end),
        "closed_trades_pnl": float(period.closed_trades_pnl),
        "open_trades_realized_pnl": float(period.open_trades_realized_pnl),
    }


def _open_session(book: str | None):  # type: ignore[no-untyped-def]
    from tradepipe.adapters.db.engine import session_factory
    from tradepipe.adapters.db.trades import book_exists

    settings = command_settings()
    name = book or settings.book
    session = session_factory(settings.resolved_database_url)()
    if not book_exists(session, name):
        session.close()
        click.echo(f"no book {name!r} in the ledger (trading creates 'main'; backtests name their own)", err=True)
        sys.exit(2)
    return settings, name, session


def _book_trips(session, book: str):  # type: ignore[no-untyped-def]
    """The book's trips; a ledger whose fills do not replay to its booked P&L is reported in one line, never shown."""
    from tradepipe.adapters.db.trades import load_book_trips
    from tradepipe.core.ledger import LedgerInvariantError

    try:
        return load_book_trips(session, book)
    except LedgerInvariantError as exc:
        click.echo(f"ledger of book {book!r} does not balance, nothing shown: {exc}", err=True)
        sys.exit(1)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.option("--book", default=None, help="Book to show (default: TRADEPIPE_BOOK).")
def status(as_json: bool, book: str | None) -> None:
    """Portfolio, last trading cycle and current weights."""
    from tradepipe.adapters.db.connection import read_only_ledger
    from tradepipe.adapters.db.status_reader import read_status_rows
    from tradepipe.config.ledger_settings import read_ledger_settings
    from tradepipe.trading.status import portfolio_status, render_status

    # the light reader when the environment sets only where the ledger is; otherwise the full, checked settings
    ledger = read_ledger_settings() or command_settings().ledger
    name = book or ledger.book
    with read_only_ledger(ledger.resolved_database_url, ledger.timeouts) as connection:
        report = portfolio_status(read_status_rows(connection, name), name)
    click.echo(json.dumps(report, indent=2) if as_json else render_status(report))


@click.command()
@click.option("--book", default=None, help="Book to show (default: TRADEPIPE_BOOK).")
@click.option("--symbol", default=None, help="Only this symbol, e.g. BTC/USDT.")
@click.option("--open", "only_open", is_flag=True, help="Only open trades.")
@click.option("--json", "as_json", is_flag=True, help="A JSON list, one object per round trip.")
@click.option("--wide", is_flag=True, help="Every column (quantity, full times, every agent credited): over 200 characters wide.")
def trades(book: str | None, symbol: str | None, only_open: bool, as_json: bool, wide: bool) -> None:
    """Round trips (closed and open) per symbol: entry and exit, quantity, P&L after fees, agents credited."""
    from tradepipe.core.trades import price_places

    _, name, session = _open_session(book)
    with session, working(f"replaying the fills of book {name!r}", quiet=as_json):
        fills, trips, latest = _book_trips(session, name)
    as_of = latest.bar_ms if latest else int(time.time() * 1000)
    shown = [t for t in trips if (symbol is None or t.symbol == symbol) and (not only_open or t.status == "open")]
    if as_json:
        click.echo(json.dumps([trade_record(t, as_of) for t in shown], indent=2))
        return
    if not shown:
        click.echo(f"no trades in book {name!r}" + (f" for {symbol}" if symbol else "") + " yet")
        return
    places = {s: price_places(f.fill.price for f in fills if f.fill.symbol == s) for s in {t.symbol for t in shown}}
    if not wide:
        click.echo(f"trades — book {name!r} (UTC; P&L after fees; open P&L at the last mark; agent: the largest vote that opened it)")
        for line in compact_trade_lines(shown, places, as_of):
            click.echo(line)
    else:
        _wide_trade_lines(name, shown, places, as_of)
    closed = [t for t in shown if t.status == "closed"]
    wins = sum(1 for t in closed if t.pnl > 0)
    realized = sum((t.pnl for t in shown), Decimal(0))
    unrealized = sum((t.unrealized_pnl or Decimal(0) for t in shown), Decimal(0))
    click.echo(
        f"total: {len(closed)} closed ({wins} won), {len(shown) - len(closed)} open; realised {money(realized)}, "
        f"unrealised {money(unrealized)}, fees {money(sum((t.fees for t in shown), Decimal(0)))}"
    )
    if latest and symbol is None and not only_open:
        click.echo(f"ledger at {iso(latest.bar_ms)}: realised {money(latest.realized_pnl)}, unrealised {money(latest.unrealized_pnl)}, fees {money(latest.fees_paid)}")


def _wide_trade_lines(name: str, shown: list[RoundTrip], places: dict[str, int], as_of: int) -> None:
    header = f"{'symbol':<10} {'side':<5} {'status':<6} {'entry (UTC)':<25} {'entry px':>12} {'exit (UTC)':<25} {'exit px':>12} {'qty':>12} {'P&L':>11} {'fees':>9} {'open P&L':>10} {'duration':>10}  agents"
    click.echo(f"trades — book {name!r} (P&L after fees; open P&L at the last mark)")
    click.echo(header)
    for t in shown:
        click.echo(
            f"{t.symbol:<10} {t.side:<5} {t.status:<6} {iso(t.entry_ms):<25} {price(t.entry_price, places[t.symbol]):>12} "
            f"{iso(t.exit_ms) or '-':<25} {price(t.exit_price, places[t.symbol]):>12} {format(t.quantity.normalize(), 'f'):>12} "
            f"{money(t.pnl):>11} {money(t.fees):>9} {money(t.unrealized_pnl):>10} {iso_duration(t.duration_ms(as_of)):>10}  "
            f"{', '.join(t.credited_agents) or '-'}"
        )


def deciding_agent(trip: RoundTrip) -> str:
    """The agent with the largest vote in the decision that opened the trip (all of them: ``--wide`` or ``--json``)."""
    credited = trip.credited_agents
    return credited[0] if credited else "-"


def _minute(ms: int | None) -> str:
    return "open" if ms is None else iso_utc(ms, timespec="minutes", suffix="").replace("T", " ")


def compact_trade_lines(shown: list[RoundTrip], places: dict[str, int], as_of: int) -> list[str]:
    """The default ``trades`` table: the deciding agent first, minute times, human durations; within 120 columns."""
    from tradepipe.cli.results import human_duration, table

    rows = [
        {
            "agent": deciding_agent(t), "symbol": t.symbol, "side": t.side, "entry": _minute(t.entry_ms), "exit": _minute(t.exit_ms),
            "entry_px": price(t.entry_price, places[t.symbol]), "exit_px": price(t.exit_price, places[t.symbol]),
            "pnl": money(t.pnl), "open_pnl": money(t.unrealized_pnl), "fees": money(t.fees), "held": human_duration(t.duration_ms(as_of)),
        }
        for t in shown
    ]
    columns = [("agent", "agent", "text"), ("symbol", "symbol", "text"), ("side", "side", "text"), ("entry", "entry", "text"),
               ("exit", "exit", "text"), ("entry_px", "entry px", "right"), ("exit_px", "exit px", "right"), ("pnl", "P&L", "right"),
               ("open_pnl", "open P&L", "right"), ("fees", "fees", "right"), ("held", "held", "right")]
    return table(rows, columns, gap=" ")


@click.command()
@click.option("--daily", "kind", flag_value="daily", default=True, help="Per UTC day (default).")
@click.option("--weekly", "kind", flag_value="weekly", help="Per ISO week (Monday to Sunday, UTC).")
@click.option("--monthly", "kind", flag_value="monthly", help="Per calendar month (UTC).")
@click.option("--book", default=None, help="Book to show (default: TRADEPIPE_BOOK).")
@click.option("--json", "as_json", is_flag=True, help="A JSON list, one object per period.")
def profit(kind: str, book: str | None, as_json: bool) -> None:
    """Realised and unrealised P&L, fees, trades closed and win rate per day, week or month."""
    from tradepipe.adapters.db.trades import load_snapshots
    from tradepipe.core.trades import period_profit

    _, name, session = _open_session(book)
    with session, working(f"replaying the fills of book {name!r}", quiet=as_json):
        fills, trips, latest = _book_trips(session, name)
        snapshots = load_snapshots(session, name)
        periods = period_profit(fills, trips, snapshots, kind)  # type: ignore[arg-type]
    if as_json:
        click.echo(json.dumps([period_record(p) for p in periods], indent=2))
        return
    if not periods:
        click.echo(f"no trading in book {name!r} yet")
        return
    click.echo(f"profit per {kind.removesuffix('ly') if kind != 'daily' else 'day'} — book {name!r} (UTC; unrealised at the period's last bar)")
    click.echo(
        f"{'period':<11} {'realised':>12} {'unrealised':>12} {'fees':>10} {'trades':>7} {'win rate':>9} {'equity at end':>15} "
        f"{'closed P&L':>12} {'open trades':>12}"
    )
    for p in periods:
        rate = "-" if p.win_rate is None else f"{p.win_rate:.0%}"
        click.echo(
            f"{p.period:<11} {money(p.realized_pnl):>12} {money(p.unrealized_pnl):>12} {money(p.fees):>10} {p.trades:>7} {rate:>9} {money(p.equity_end):>15} "
            f"{money(p.closed_trades_pnl):>12} {money(p.open_trades_realized_pnl):>12}"
        )
    total_trades = sum(p.trades for p in periods)
    total_wins = sum(p.wins for p in periods)
    click.echo(
        f"total: realised {money(sum((p.realized_pnl for p in periods), Decimal(0)))}, fees {money(sum((p.fees for p in periods), Decimal(0)))}, "
        f"{total_trades} trades" + (f", win rate {total_wins / total_trades:.0%}" if total_trades else "")
        + (f"; unrealised now {money(latest.unrealized_pnl)}" if latest else "")
    )
    click.echo(
        "realised: the P&L the period's fills booked (fees included). A trade counts on the day it closes: 'trades',\n"
        "'win rate' and 'closed P&L' (its whole P&L, earlier partial closes included) belong to that day.\n"
        "'open trades': the part of 'realised' from trades still open at the period's end (partial closes, entry fees)."
    )


@click.command()
@click.option("--book", default=None, help="Book to show (default: TRADEPIPE_BOOK).")
@click.option("--json", "as_json", is_flag=True, help='JSON: {"pairs": [...], "agents": [...]} (units as in `tradepipe results`).')
def performance(book: str | None, as_json: bool) -> None:
    """Trades, win rate, average holding time, profit and fees per pair and per deciding agent."""
    from tradepipe.cli.results import PAIR_COLUMNS, table
    from tradepipe.core.results import grouped_table

    _, name, session = _open_session(book)
    with session, working(f"replaying the fills of book {name!r}", quiet=as_json):
        starting_cash = _starting_cash(session, name)
        _, trips, latest = _book_trips(session, name)
    as_of = latest.bar_ms if latest else int(time.time() * 1000)
    report = {
        "book": name,
        "pairs": grouped_table(trips, lambda t: t.symbol, "pair", as_of, starting_cash),
        "agents": grouped_table(trips, deciding_agent, "agent", as_of, starting_cash),
    }
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    if not trips:
        click.echo(f"no trades in book {name!r} yet")
        return
    click.echo(f"performance — book {name!r} (profit: realised P&L after fees, % of the starting cash; open trades' partial closes included)")
    for line in table(report["pairs"], PAIR_COLUMNS):
        click.echo(line)
    click.echo("")
    click.echo("per deciding agent (the largest vote in the decision that opened the trade)")
    for line in table(report["agents"], (("agent", "agent", "text"), *PAIR_COLUMNS[1:])):
        click.echo(line)


def _starting_cash(session, book: str) -> Decimal:  # type: ignore[no-untyped-def]
    from tradepipe.adapters.db.trades import book_header

    return book_header(session, book)[0]


@click.command()
@click.option("--book", default=None, help="Book to show (default: TRADEPIPE_BOOK).")
@click.option("--json", "as_json", is_flag=True, help="JSON: cash, each position (quantity, average, mark, value, share) and equity.")
def balance(book: str | None, as_json: bool) -> None:
    """Cash, positions at the last mark and equity, as the ledger valued them after the last cycle."""
    from tradepipe.adapters.db.ledger import latest_snapshot
    from tradepipe.adapters.db.trades import book_header

    _, name, session = _open_session(book)
    with session:
        starting_cash, quote, _ = book_header(session, name)
        snapshot = latest_snapshot(session, name)
    if snapshot is None:
        report: dict[str, Any] = {"book": name, "quote_currency": quote, "as_of_bar": None, "cash_quote": float(starting_cash),
                                  "positions": [], "positions_value_quote": 0.0, "equity_quote": float(starting_cash),
                                  "starting_cash_quote": float(starting_cash), "profit_quote": 0.0, "profit_pct": 0.0}
    else:
        positions = [
            {"symbol": symbol, "quantity": float(held["quantity"]), "average_price": float(held["average_price"]),
             "mark": float(held["mark"]), "value_quote": float(held["value"]),
             "share_pct": float(Decimal(str(held["value"])) / snapshot.equity * 100) if snapshot.equity else None}
            for symbol, held in sorted((snapshot.positions or {}).items())
        ]
        report = {
            "book": name, "quote_currency": quote, "as_of_bar": iso_utc(snapshot.bar_ts, timespec="auto", suffix="+00:00"), "cash_quote": float(snapshot.cash),
            "positions": positions, "positions_value_quote": float(snapshot.positions_value), "equity_quote": float(snapshot.equity),
            "starting_cash_quote": float(starting_cash), "profit_quote": float(snapshot.equity - starting_cash),
            "profit_pct": float((snapshot.equity / starting_cash - 1) * 100) if starting_cash else None,
        }
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    from tradepipe.cli.results import table

    click.echo(f"balance — book {name!r} in {quote}" + (f" (after bar {report['as_of_bar']})" if report["as_of_bar"] else " (no cycle yet)"))
    rows = [{"asset": quote, "quantity": money(report["cash_quote"]), "average": "", "mark": "", "value": money(report["cash_quote"]),
             "share": percent(report["cash_quote"] / report["equity_quote"]) if report["equity_quote"] else "-"}]
    rows += [{"asset": p["symbol"], "quantity": format(Decimal(str(p["quantity"])).normalize(), "f"), "average": money(p["average_price"]),
              "mark": money(p["mark"]), "value": money(p["value_quote"]),
              "share": "-" if p["share_pct"] is None else percent(p["share_pct"] / 100)} for p in report["positions"]]
    columns = [("asset", "asset", "text"), ("quantity", "quantity", "right"), ("average", "average", "right"), ("mark", "mark", "right"),
               ("value", "value", "right"), ("share", "share", "right")]
    for line in table(rows, columns):
        click.echo(line)
    click.echo(
        f"equity {money(report['equity_quote'])} {quote}; started with {money(report['starting_cash_quote'])}: "
        f"{money(report['profit_quote'])} ({percent((report['profit_pct'] or 0) / 100, signed=True)})"
    )


def _parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected an ISO date or time, e.g. 2026-12-01 or 2026-12-01T12:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@click.command()
@click.option("--symbol", required=True, help="Symbol to draw, e.g. BTC/USDT.")
@click.option("--book", default=None, help="Book to draw (default: TRADEPIPE_BOOK).")
@click.option("--since", default=None, help="Start (ISO UTC date or time); default: everything recorded.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="HTML file to write (default: TRADEPIPE_HOME/charts/<book>/<BASE-QUOTE>.html).")
def plot(symbol: str, book: str | None, since: str | None, output: Path | None) -> None:
    """Write a self-contained HTML chart: candles with entries and exits, agents' votes and the ensemble target, equity."""
    from tradepipe.config.names import NameRefused, check_name, path_under_home
    from tradepipe.reports.day_charts import write_chart

    start = _parse_since(since)
    settings, name, session = _open_session(book)
    try:  # the book and the symbol name the default file: data, never a path
        file_name = check_name(symbol.replace("/", "-") + ".html", "symbol")
        target = output or path_under_home(settings.home, "charts", check_name(name, "book"), file_name)
    except NameRefused as exc:
        session.close()
        click.echo(f"plot refused: {exc}", err=True)
        sys.exit(2)
    with session, working(f"drawing {symbol} of book {name!r}"):
        written = write_chart(settings, session, name, symbol, start, target)
    click.echo(str(written))


@click.command()
@click.option("--days", default=1.0, show_default=True, type=float, help="How many days of synthetic bars to trade.")
def warmup(days: float) -> None:
    """First start on the synthetic market: trade the last days of bars into the empty live book (marked warm-up)."""
    from tradepipe.trading.warmup import WarmupSkipped, run_warmup

    settings = command_settings()
    try:
        with progress_bar("warm-up", "synthetic bars") as advance:
            summary = run_warmup(settings, int(time.time() * 1000), days=days, progress=advance)
    except WarmupSkipped as exc:
        click.echo(f"tradepipe warm-up skipped: {exc}")
        return
    except ValueError as exc:
        click.echo(f"tradepipe warm-up refused: {exc}", err=True)
        sys.exit(2)
    click.echo(
        f"tradepipe warm-up: traded {summary.cycles} SYNTHETIC bars {iso(summary.first_bar_ms)} .. {iso(summary.last_bar_ms)} "
        f"into book {summary.book!r} (run_id {summary.run_id}); equity {money(summary.equity)}"
    )
