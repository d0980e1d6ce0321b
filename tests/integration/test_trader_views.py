"""``tradepipe trades`` / ``profit`` / ``plot`` against ledgers in a real database.

1. A hand-built ledger (the rows a cycle writes, with hand-computed P&L): the JSON contracts and
   their totals, to the cent, on SQLite and PostgreSQL; a second book is kept apart.
2. A ledger the real trading cycle wrote on the synthetic market: trades and profit add up to the
   book's own snapshot, and the chart marks every entry and exit.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from decimal import Decimal as D
from pathlib import Path

import pytest
from click.testing import CliRunner

from tradepipe.adapters.db.engine import session_factory
from tradepipe.adapters.db.models import (
    BookRow,
    FillRow,
    OrderRow,
    PortfolioSnapshotRow,
    TradingCycleRow,
)
from tradepipe.cli.main import main

DAY1 = 1_764_633_600_000  # 2025-12-02T00:00:00Z
DAY2 = DAY1 + 86_400_000
HOUR = 3_600_000
CONTRACT_TRADE_KEYS = {
    "symbol", "side", "entry_time", "exit_time", "entry_price", "exit_price", "quantity", "pnl", "fees", "duration", "agents", "status",
}
CONTRACT_PERIOD_KEYS = {"period", "realized_pnl", "unrealized_pnl", "fees", "trades", "win_rate"}


def at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


# (symbol, side, quantity, price, fee, time, contributions, realised P&L as the ledger books it)
HAND_FILLS = [
    ("BTC/USDT", "buy", "1", "100", "0.1", DAY1 + HOUR, {"momentum": 0.6, "trend": 0.2}, "-0.1"),
    ("BTC/USDT", "buy", "1", "110", "0.11", DAY1 + 2 * HOUR, {"momentum": 0.5}, "-0.11"),
    ("BTC/USDT", "sell", "0.5", "120", "0.06", DAY1 + 3 * HOUR, {}, "7.44"),
    ("BTC/USDT", "sell", "1.5", "90", "0.135", DAY2 + HOUR, {}, "-22.635"),
    ("ETH/USDT", "sell", "2", "50", "0.1", DAY2 + 2 * HOUR, {"mean_reversion": -0.5}, "-0.1"),
    ("ETH/USDT", "buy", "3", "40", "0.12", DAY2 + 3 * HOUR, {"trend": 0.4}, "19.88"),
]


def build_hand_ledger(url: str, book: str = "main") -> None:
    with session_factory(url).begin() as session:
        session.add(BookRow(name=book, starting_cash=D("10000"), quote_currency="USDT"))
        session.flush()
        for n, (symbol, side, qty, px, fee, ms, contributions, realized) in enumerate(HAND_FILLS):
            cycle = TradingCycleRow(book=book, bar_ts=at(ms - HOUR), timeframe="1h", market_source="synthetic", status="succeeded")
            session.add(cycle)
            session.flush()
            order = OrderRow(
                client_order_id=f"{book}-{n}", cycle_id=cycle.id, book=book, bar_ts=at(ms - HOUR), symbol=symbol, side=side,
                quantity=D(qty), requested_quantity=D(qty), reference_price=D(px), status="filled", broker="paper", contributions=contributions,
            )
            session.add(order)
            session.flush()
            session.add(FillRow(
                order_id=order.id, client_order_id=order.client_order_id, trade_id=f"paper-{n}", book=book, symbol=symbol, side=side,
                quantity=D(qty), price=D(px), fee=D(fee), notional=D(qty) * D(px), ts=at(ms), realized_pnl=D(realized),
            ))
        for ms, equity, realized, unrealized, fees, marks in (
            (DAY1 + 3 * HOUR, "10007.23", "7.23", "0", "0.27", {"BTC/USDT": "105"}),
            (DAY2 + 3 * HOUR, "10009.375", "4.375", "5", "0.625", {"ETH/USDT": "45"}),
        ):
            session.add(PortfolioSnapshotRow(
                book=book, bar_ts=at(ms), cash=D(0), positions_value=D(0), equity=D(equity), realized_pnl=D(realized),
                unrealized_pnl=D(unrealized), fees_paid=D(fees), day_start_equity=D("10000"),
                positions={s: {"quantity": "1", "average_price": m, "mark": m, "value": m} for s, m in marks.items()},
            ))


def cli(url: str, *args: str) -> str:
    result = CliRunner().invoke(main, list(args), env={"TRADEPIPE_DATABASE_URL": url}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_trades_json_follows_the_contract_and_adds_up_to_the_ledger(migrated_url: str) -> None:
    build_hand_ledger(migrated_url)

    trades = json.loads(cli(migrated_url, "trades", "--json"))

    assert [(t["symbol"], t["side"], t["status"]) for t in trades] == [
        ("BTC/USDT", "long", "closed"), ("ETH/USDT", "short", "closed"), ("ETH/USDT", "long", "open"),
    ]
    assert all(CONTRACT_TRADE_KEYS <= set(t) for t in trades)
    btc = trades[0]
    assert btc["entry_time"] == "2025-12-02T01:00:00+00:00" and btc["exit_time"] == "2025-12-03T01:00:00+00:00"
    assert (btc["entry_price"], btc["exit_price"], btc["quantity"], btc["pnl"], btc["fees"]) == (105, 97.5, 2, -15.405, 0.405)
    assert btc["duration"] == "P1D" and btc["agents"] == ["momentum", "trend"]
    assert trades[2]["exit_time"] is None and trades[2]["unrealized_pnl"] == 5
    assert abs(sum(t["pnl"] for t in trades) - 4.375) < 1e-9  # the ledger's realised P&L
    assert abs(sum(t["fees"] for t in trades) - 0.625) < 1e-9  # the ledger's fees


def test_profit_json_per_day_week_and_month_adds_up_to_the_ledger(migrated_url: str) -> None:
    build_hand_ledger(migrated_url)

    daily = json.loads(cli(migrated_url, "profit", "--daily", "--json"))
    weekly = json.loads(cli(migrated_url, "profit", "--weekly", "--json"))
    monthly = json.loads(cli(migrated_url, "profit", "--monthly", "--json"))

    assert all(CONTRACT_PERIOD_KEYS <= set(p) for p in daily + weekly + monthly)
    assert [(p["period"], p["realized_pnl"], p["fees"], p["trades"], p["win_rate"], p["unrealized_pnl"]) for p in daily] == [
        ("2025-12-02", 7.23, 0.27, 0, None, 0),
        ("2025-12-03", -2.855, 0.355, 2, 0.5, 5),
    ]
    for periods in (daily, weekly, monthly):
        assert round(sum(p["realized_pnl"] for p in periods), 8) == 4.375
        assert round(sum(p["fees"] for p in periods), 8) == 0.625
    assert [p["period"] for p in weekly] == ["2025-W49"] and [p["period"] for p in monthly] == ["2025-12"]


def test_human_tables_show_cents_ticks_and_iso_times(migrated_url: str) -> None:
    build_hand_ledger(migrated_url)

    shown = cli(migrated_url, "trades", "--wide")  # the full table (the default is the 120-column one)
    profit = cli(migrated_url, "profit", "--daily")

    assert "2025-12-02T01:00:00+00:00" in shown and "105.00" in shown and "97.50" in shown
    assert "-15.40" in shown  # -15.405 to the cent, half to even as `tradepipe status` rounds
    assert "realised 4.38" in shown and "ledger at 2025-12-03T03:00:00+00:00: realised 4.38" in shown
    assert re.search(r"2025-12-03\s+-2\.86\s+5\.00\s+0\.36\s+2\s+50%", profit), profit


def test_book_option_keeps_books_apart_and_an_unknown_book_is_one_line(migrated_url: str) -> None:
    build_hand_ledger(migrated_url)
    build_hand_ledger(migrated_url, book="bt")

    assert len(json.loads(cli(migrated_url, "trades", "--book", "bt", "--json"))) == 3
    result = CliRunner().invoke(main, ["profit", "--book", "nope"], env={"TRADEPIPE_DATABASE_URL": migrated_url})
    assert result.exit_code == 2 and result.output.strip().count("\n") == 0 and "no book 'nope'" in result.output


def test_a_traded_book_adds_up_and_its_chart_marks_every_entry_and_exit(sqlite_url: str, tmp_path: Path) -> None:
    from tradepipe.adapters.db.engine import upgrade
    from tradepipe.trading.runner import TradingRunner
    from tradepipe.config.settings import load_settings

    upgrade(sqlite_url)
    settings = load_settings(database_url=sqlite_url)
    runner = TradingRunner(settings)
    first_bar = 1_764_633_600_000
    # 150 minutes: 17 trades on all three symbols, 2 of them still open (400 minutes made 41 and proved nothing
    # more, at twice the CPU)
    for i in range(150):
        runner.run_cycle(first_bar + i * 60_000, run_id="test")
    with session_factory(sqlite_url)() as session:
        from sqlalchemy import select

        latest = session.scalars(select(PortfolioSnapshotRow).order_by(PortfolioSnapshotRow.bar_ts.desc()).limit(1)).one()

    trades = json.loads(cli(sqlite_url, "trades", "--json"))
    daily = json.loads(cli(sqlite_url, "profit", "--json"))
    assert len(trades) >= 3, "the synthetic market should trade in 150 minutes"
    assert abs(sum(t["pnl"] for t in trades) - float(latest.realized_pnl)) < 0.005
    assert abs(sum(t["unrealized_pnl"] or 0 for t in trades) - float(latest.unrealized_pnl)) < 0.005
    assert abs(sum(p["realized_pnl"] for p in daily) - float(latest.realized_pnl)) < 0.005
    assert abs(sum(p["fees"] for p in daily) - float(latest.fees_paid)) < 0.005

    symbol = trades[0]["symbol"]
    output = tmp_path / "chart.html"
    printed = cli(sqlite_url, "plot", "--symbol", symbol, "--output", str(output)).strip()
    assert printed == str(output.resolve())
    page = output.read_text()
    mine = [t for t in trades if t["symbol"] == symbol]
    assert count_marks(page, "entry-marks") == len(mine)
    assert count_marks(page, "exit-marks") == sum(1 for t in mine if t["status"] == "closed")
    assert not re.search(r"<script|<link|<img|src=|href=\"http|url\(http", page)  # nothing fetched at view time


def count_marks(page: str, group_id: str) -> int:
    """Markers drawn in the SVG group ``group_id`` (matplotlib writes each as a <use> or a <path>)."""
    import xml.etree.ElementTree as ET

    svg = ET.fromstring(page[page.index("<svg"): page.index("</svg>") + len("</svg>")])
    group = svg.find(f".//{{http://www.w3.org/2000/svg}}g[@id='{group_id}']")
    if group is None:
        return 0
    defs = {id(e) for d in group.iter("{http://www.w3.org/2000/svg}defs") for e in d.iter()}
    return sum(1 for e in group.iter() if e.tag.rsplit("}", 1)[-1] in ("use", "path") and id(e) not in defs)


def test_chart_text_is_escaped(sqlite_url: str, tmp_path: Path) -> None:
    from tradepipe.adapters.db.engine import upgrade

    upgrade(sqlite_url)
    build_hand_ledger(sqlite_url, book="x<script>")
    output = tmp_path / "c.html"

    cli(sqlite_url, "plot", "--symbol", "BTC/USDT", "--book", "x<script>", "--output", str(output))

    page = output.read_text()
    assert "<script>" not in page and "x&lt;script&gt;" in page
    assert count_marks(page, "entry-marks") == 1 and count_marks(page, "exit-marks") == 1


def test_day_charts_draws_todays_chart_where_portfolio_state_links_it(sqlite_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import dagster as dg

    from tradepipe.adapters.db.engine import upgrade
    from tradepipe.assets.charts import day_charts
    from tradepipe.assets.portfolio import day_chart_links
    from tradepipe.resources import FixedClock, build_resources
    from tradepipe.config.settings import load_settings

    upgrade(sqlite_url)
    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", sqlite_url)
    build_hand_ledger(sqlite_url)
    settings = load_settings()
    resources = {**build_resources(settings, "test"), "clock": FixedClock(now=DAY2 + 4 * HOUR)}

    result = dg.materialize([day_charts], resources=resources)

    [drawn] = result.asset_materializations_for_node("day_charts")
    linked = day_chart_links(settings, DAY2 + 3 * HOUR)
    assert drawn.metadata["chart BTC/USDT"] == linked["chart BTC/USDT"]
    page = Path(linked["chart BTC/USDT"].value).read_text()
    assert str(settings.home.resolve() / "charts" / "main" / "2025-12-03") in linked["chart BTC/USDT"].value
    assert count_marks(page, "exit-marks") == 1 and count_marks(page, "entry-marks") == 0  # the BTC trip entered the day before
    assert count_marks(Path(linked["chart ETH/USDT"].value).read_text(), "entry-marks") == 2


def test_a_ledger_that_does_not_replay_to_its_booked_pnl_is_refused_in_one_line(sqlite_url: str) -> None:
    from sqlalchemy import select

    from tradepipe.adapters.db.engine import upgrade

    upgrade(sqlite_url)
    build_hand_ledger(sqlite_url)
    with session_factory(sqlite_url).begin() as session:
        fill = session.scalars(select(FillRow).order_by(FillRow.id).offset(3).limit(1)).one()
        fill.realized_pnl = D("-22.634")  # a cent-fraction off: the books and the fills disagree

    result = CliRunner().invoke(main, ["trades", "--json"], env={"TRADEPIPE_DATABASE_URL": sqlite_url})

    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert "does not balance" in result.output and "-22.634" in result.output
