"""The trading cycle end to end on SQLite and PostgreSQL: market -> core cycle -> ledger, in one transaction.

What a trader relies on: every agent's vote is kept, orders carry deterministic ids and fill at the
next bar's open, the books balance to the last digit, a bar is never traded twice, a crash leaves
nothing half-written, bad data or a dead feed skips only what is broken, and the daily-loss halt
only lets risk go down.
"""

from __future__ import annotations

import math
import time
from datetime import date, datetime, timezone
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any, Sequence

import ccxt
import dagster as dg

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

import tradepipe.trading.unit_of_work as cycle_unit_module
from tradepipe.adapters.db.engine import session_factory
from tradepipe.adapters.db.ledger import datetime_to_ms, ms_to_datetime
from tradepipe.adapters.db.models import (
    AgentWorkLogRow,
    BookRow,
    FillRow,
    MarketBarRow,
    OrderRow,
    PortfolioSnapshotRow,
    PositionRow,
    SignalRow,
    TradingCycleRow,
)
from tradepipe.adapters.market import CcxtMarket, MarketDataError, ReplayMarket, SyntheticMarket
from tradepipe.assets.portfolio import portfolio_state
from tradepipe.checks.ledger import equity_invariant, no_double_fills
from tradepipe.cli.main import main as cli
from tradepipe.core.risk import client_order_id
from tradepipe.resources import LedgerDatabase, TradingConfigResource, build_resources
from tradepipe.core.timeframes import last_closed_bar_open
from tradepipe.core.types import BarHistory
from tradepipe.trading.runner import OutOfOrderBarError, TradingRunner
from tradepipe.config.settings import DEFAULT_AGENTS, Settings, load_settings

M = 60_000
H = 3_600_000
BAR0 = 1_700_000_040_000  # 2023-11-14 22:14 UTC, a 1m bar on the synthetic market
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")
LEDGER = (BookRow, TradingCycleRow, SignalRow, OrderRow, FillRow, PositionRow, PortfolioSnapshotRow, MarketBarRow, AgentWorkLogRow)
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC, first bar of the replay files below
BPS = Decimal(10_000)


def settings_for(url: str, **overrides: Any) -> Settings:
    return load_settings(database_url=url, **overrides)


def counts(url: str) -> dict[str, int]:
    with session_factory(url)() as session:
        return {m.__tablename__: session.scalar(select(func.count()).select_from(m)) for m in LEDGER}


def rows(url: str, model: type, *order_by: Any) -> list[Any]:
    with session_factory(url)() as session:
        return list(session.scalars(select(model).order_by(*order_by)))


def marks_of(snapshot: PortfolioSnapshotRow) -> Decimal:
    return sum((Decimal(p["quantity"]) * Decimal(p["mark"]) for p in snapshot.positions.values()), Decimal(0))


def assert_books_balance(url: str, starting_cash: Decimal = Decimal(10000)) -> None:
    """Every snapshot: equity == cash + sum(qty x mark) exactly; cash and positions follow from the fills alone."""
    snapshots = rows(url, PortfolioSnapshotRow, PortfolioSnapshotRow.bar_ts)
    assert snapshots
    for snapshot in snapshots:
        assert snapshot.positions_value == marks_of(snapshot)
        assert snapshot.equity == snapshot.cash + marks_of(snapshot)
        assert snapshot.equity - snapshot.cash - snapshot.positions_value == 0
    fills = rows(url, FillRow, FillRow.id)
    cash = starting_cash
    held: dict[str, Decimal] = {}
    for fill in fills:
        assert fill.notional == fill.quantity * fill.price
        sign = 1 if fill.side == "buy" else -1
        cash += -sign * fill.notional - fill.fee
        held[fill.symbol] = held.get(fill.symbol, Decimal(0)) + sign * fill.quantity
    last = snapshots[-1]
    assert last.cash == cash
    assert {s: Decimal(p["quantity"]) for s, p in last.positions.items()} == {s: q for s, q in held.items() if q != 0}
    assert {r.symbol: r.quantity for r in rows(url, PositionRow, PositionRow.symbol) if r.quantity != 0} == {
        s: q for s, q in held.items() if q != 0
    }


def write_csv(path: Path, table: Sequence[Sequence[object]]) -> None:
    lines = ["timestamp,open,high,low,close,volume"] + [",".join(str(v) for v in row) for row in table]
    path.write_text("\n".join(lines) + "\n")


def bar_rows(closes: Sequence[float]) -> list[list[object]]:
    """1h bars from T0: open = previous close, wicks of 0.2% around the body."""
    table: list[list[object]] = []
    previous = closes[0]
    for i, close in enumerate(closes):
        table.append([T0 + i * H, previous, max(previous, close) * 1.002, min(previous, close) * 0.998, close, 100])
        previous = close
    return table


def uptrend(start: float, bars: int, phase: float = 0.0) -> list[float]:
    return [start * 1.003**i * (1 + 0.004 * math.sin(i + phase)) for i in range(bars)]


# --------------------------------------------------------------------------- the normal loop


def synthetic_open(symbol: str, bar_ms: int) -> Decimal:
    history = SyntheticMarket(seed=7).closed_bars(symbol, "1m", bar_ms + M, 1)
    assert history.last_timestamp == bar_ms
    return Decimal(repr(float(history.open[-1])))


def synthetic_close(symbol: str, bar_ms: int) -> float:
    return SyntheticMarket(seed=7).closed_bars(symbol, "1m", bar_ms + M, 1).last_close


def test_consecutive_cycles_write_signals_orders_next_bar_fills_positions_and_exact_snapshots(migrated_url: str) -> None:
    url = migrated_url
    runner = TradingRunner(settings_for(url))
    bars = [BAR0 + i * M for i in range(6)]
    outcomes = [runner.run_cycle(bar, run_id=f"run-{i}") for i, bar in enumerate(bars)]
    assert [o.status for o in outcomes] == ["traded"] * 6

    cycles = rows(url, TradingCycleRow, TradingCycleRow.bar_ts)
    assert [datetime_to_ms(c.bar_ts) for c in cycles] == bars
    assert {(c.status, c.market_source, c.timeframe, c.book) for c in cycles} == {("succeeded", "synthetic", "1m", "main")}
    assert [c.run_id for c in cycles] == [f"run-{i}" for i in range(6)]

    # Every agent votes on every symbol every cycle; without a feed, sentiment abstains and says why.
    signals = rows(url, SignalRow, SignalRow.id)
    assert len(signals) == 6 * len(SYMBOLS) * len(DEFAULT_AGENTS)
    for bar in bars:
        at_bar = [s for s in signals if datetime_to_ms(s.bar_ts) == bar]
        assert {(s.agent_name, s.symbol) for s in at_bar} == {(a, s) for a in DEFAULT_AGENTS for s in SYMBOLS}
        for s in at_bar:
            assert s.close == synthetic_close(s.symbol, bar)  # what the decision saw
    sentiment = [s for s in signals if s.agent_name == "sentiment"]
    assert all(s.abstained and s.reason == "no headline feed configured" for s in sentiment)
    assert any(not s.abstained and s.value != 0 for s in signals if s.agent_name == "momentum")

    # Orders: deterministic ids; each is filled (or cancelled) by the next cycle, never in its own.
    orders = [o for o in rows(url, OrderRow, OrderRow.id) if o.status != "rejected"]
    assert orders, "the synthetic market over these bars is expected to trade"
    for order in orders:
        bar = datetime_to_ms(order.bar_ts)
        assert order.client_order_id in {
            client_order_id("main", bar, order.symbol),
            client_order_id("main", bar, order.symbol, "stop_loss"),
        }
        assert order.status == ("pending" if bar == bars[-1] else "filled"), order.reason
    fills = rows(url, FillRow, FillRow.id)
    assert fills
    by_id = {o.id: o for o in orders}
    assert sorted(f.order_id for f in fills) == sorted(o.id for o in orders if o.status == "filled")
    for fill in fills:
        order = by_id[fill.order_id]
        fill_bar = datetime_to_ms(order.bar_ts) + M
        assert datetime_to_ms(fill.ts) == fill_bar  # the next bar, not the decision bar
        assert fill.client_order_id == order.client_order_id and fill.quantity == order.quantity
        slip = 1 + (Decimal(5) if fill.side == "buy" else Decimal(-5)) / BPS
        rounding = ROUND_CEILING if fill.side == "buy" else ROUND_FLOOR
        assert fill.price == (synthetic_open(fill.symbol, fill_bar) * slip).quantize(Decimal("0.01"), rounding)
        assert fill.fee == fill.notional * Decimal(10) / BPS

    # Snapshots: one per cycle, marked at the bar's close, balancing exactly.
    snapshots = rows(url, PortfolioSnapshotRow, PortfolioSnapshotRow.bar_ts)
    assert [datetime_to_ms(s.bar_ts) for s in snapshots] == bars
    for snapshot, outcome in zip(snapshots, outcomes):
        assert snapshot.equity == outcome.equity and snapshot.cash == outcome.cash
        for symbol, position in snapshot.positions.items():
            assert Decimal(position["mark"]) == Decimal(repr(synthetic_close(symbol, datetime_to_ms(snapshot.bar_ts))))
    assert_books_balance(url)

    # The agents' work log: one row per agent per cycle.
    work = rows(url, AgentWorkLogRow, AgentWorkLogRow.id)
    assert len(work) == 6 * len(DEFAULT_AGENTS)
    assert {w.status for w in work if w.agent_name == "sentiment"} == {"abstained"}


def test_the_same_bar_twice_is_already_done_and_writes_nothing(migrated_url: str) -> None:
    url = migrated_url
    runner = TradingRunner(settings_for(url))
    for i in range(3):
        assert runner.run_cycle(BAR0 + i * M).status == "traded"
    before = counts(url)
    latest = rows(url, PortfolioSnapshotRow, PortfolioSnapshotRow.bar_ts)[-1]

    again = runner.run_cycle(BAR0 + 2 * M)
    restarted = TradingRunner(settings_for(url)).run_cycle(BAR0 + 2 * M)  # e.g. after a restart
    older = runner.run_cycle(BAR0)

    for outcome in (again, restarted, older):
        assert outcome.status == "already_done"
        # It reports the book as it stands (to the cent), and places and fills nothing.
        assert abs(outcome.equity - latest.equity) <= Decimal("0.005")
        assert abs(outcome.cash - latest.cash) <= Decimal("0.005")
        assert outcome.orders_placed == [] and outcome.fills == []
    assert counts(url) == before


def test_a_bar_older_than_the_books_newest_cycle_is_refused_and_writes_nothing(migrated_url: str) -> None:
    # E.g. an operator re-executing last hour's failed run after later bars traded: pairing that bar's
    # cash with today's positions would book a fake loss (and could halt the book for the day).
    url = migrated_url
    runner = TradingRunner(settings_for(url))
    for i in (0, 1, 3, 4):
        runner.run_cycle(BAR0 + i * M)
    before = counts(url)
    with pytest.raises(OutOfOrderBarError, match="later bar"):
        runner.run_cycle(BAR0 + 2 * M)
    assert counts(url) == before
    assert rows(url, BookRow)[0].halted_day is None
    assert_books_balance(url)


def _fail_after_recording(monkeypatch: pytest.MonkeyPatch, error: Exception) -> list[int]:
    """Make the cycle's last writer run (everything flushed to the database), then fail, as a crash would."""
    real = cycle_unit_module.record_agent_work
    calls: list[int] = []

    def record_then_crash(session: Any, *args: Any) -> Any:
        real(session, *args)
        session.flush()
        calls.append(session.scalar(select(func.count()).select_from(SignalRow)))
        raise error

    monkeypatch.setattr(cycle_unit_module, "record_agent_work", record_then_crash)
    return calls


def test_a_crash_mid_cycle_leaves_no_rows_and_the_rerun_writes_exactly_one_set(
    migrated_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = migrated_url
    runner = TradingRunner(settings_for(url))
    runner.run_cycle(BAR0)  # orders pending for the next bar
    pending = {o.client_order_id for o in rows(url, OrderRow, OrderRow.id) if o.status == "pending"}
    assert pending
    before = counts(url)

    original = cycle_unit_module.record_agent_work
    calls = _fail_after_recording(monkeypatch, RuntimeError("killed mid-cycle"))
    with pytest.raises(RuntimeError, match="killed mid-cycle"):
        runner.run_cycle(BAR0 + M)
    assert calls and calls[0] > before["signals"]  # the rows were written before the crash ...
    assert counts(url) == before  # ... and none survived it
    assert {o.client_order_id for o in rows(url, OrderRow, OrderRow.id) if o.status == "pending"} == pending
    with session_factory(url)() as session:
        assert session.scalars(select(TradingCycleRow).where(TradingCycleRow.bar_ts == ms_to_datetime(BAR0 + M))).first() is None

    monkeypatch.setattr(cycle_unit_module, "record_agent_work", original)  # the process comes back
    outcome = runner.run_cycle(BAR0 + M)
    assert outcome.status == "traded"
    after = counts(url)
    assert after["trading_cycles"] == before["trading_cycles"] + 1
    assert after["portfolio_snapshots"] == before["portfolio_snapshots"] + 1
    assert after["signals"] == before["signals"] + len(SYMBOLS) * len(DEFAULT_AGENTS)
    fills = rows(url, FillRow, FillRow.id)
    assert sorted(f.client_order_id for f in fills) == sorted(pending)  # each pending order filled once

    # The rerun wrote what an uninterrupted book gets for the same bars.
    reference = TradingRunner(settings_for(url), book="reference")
    reference.run_cycle(BAR0)
    expected = reference.run_cycle(BAR0 + M)
    assert outcome.equity == expected.equity and outcome.cash == expected.cash
    main_snapshots = [s for s in rows(url, PortfolioSnapshotRow, PortfolioSnapshotRow.bar_ts) if s.book == "main"]
    assert [s.equity for s in main_snapshots] == [
        s.equity for s in rows(url, PortfolioSnapshotRow, PortfolioSnapshotRow.bar_ts) if s.book == "reference"
    ]


def test_an_integrity_error_that_is_not_a_duplicate_bar_fails_loudly(
    migrated_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only "another process recorded this bar first" may read as already_done; any other constraint
    # failure must surface, or the bar would be silently lost.
    url = migrated_url
    runner = TradingRunner(settings_for(url))
    runner.run_cycle(BAR0)
    before = counts(url)
    _fail_after_recording(monkeypatch, IntegrityError("INSERT INTO orders", {}, Exception("CHECK constraint failed")))
    with pytest.raises(IntegrityError):
        runner.run_cycle(BAR0 + M)
    assert counts(url) == before


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("bad_row", "expected"),
    [
        ({"close": ""}, "null_value"),
        ({"open": "0"}, "non_positive_price"),
    ],
    ids=["missing-close", "zero-open"],
)
def test_a_bad_bar_in_a_replay_file_skips_that_symbol_with_the_reason_and_the_other_still_trades(
    migrated_url: str, tmp_path: Path, bad_row: dict[str, str], expected: str
) -> None:
    url = migrated_url
    replay = tmp_path / "replay"
    replay.mkdir()
    btc, eth = bar_rows(uptrend(100, 70)), bar_rows(uptrend(50, 70, phase=1.0))
    columns = ["timestamp", "open", "high", "low", "close", "volume"]
    for name, value in bad_row.items():
        eth[61][columns.index(name)] = value
    write_csv(replay / "BTC_USDT-1h.csv", btc)
    write_csv(replay / "ETH_USDT-1h.csv", eth)
    settings = settings_for(url, symbols="BTC/USDT,ETH/USDT", timeframe="1h")
    runner = TradingRunner(settings, market=ReplayMarket(replay, mode="stepped"))

    first = runner.run_cycle(T0 + 60 * H)
    assert first.skipped == {} and {o["symbol"] for o in first.orders_placed} == {"BTC/USDT", "ETH/USDT"}
    outcome = runner.run_cycle(T0 + 61 * H)  # ETH's bar 61 is the bad one
    assert outcome.status == "traded"

    cycle = rows(url, TradingCycleRow, TradingCycleRow.bar_ts)[-1]
    assert cycle.status == "succeeded" and set(cycle.skipped) == {"ETH/USDT"}
    assert expected in cycle.skipped["ETH/USDT"] and "2024-01-03T13:00Z" in cycle.skipped["ETH/USDT"]
    signals = [s for s in rows(url, SignalRow, SignalRow.id) if datetime_to_ms(s.bar_ts) == T0 + 61 * H]
    assert {s.symbol for s in signals} == {"BTC/USDT"} and len(signals) == len(DEFAULT_AGENTS)
    # BTC's order from the bar before filled at this bar's open; ETH's was cancelled, with the reason.
    orders = {o.symbol: o for o in rows(url, OrderRow, OrderRow.id) if datetime_to_ms(o.bar_ts) == T0 + 60 * H}
    assert orders["BTC/USDT"].status == "filled"
    assert orders["ETH/USDT"].status == "cancelled" and "no valid bar" in orders["ETH/USDT"].reason
    (fill,) = [f for f in rows(url, FillRow, FillRow.id) if f.symbol == "BTC/USDT"]
    assert fill.price == (Decimal(repr(btc[61][1])) * (1 + Decimal(5) / BPS)).quantize(Decimal("0.01"), ROUND_CEILING)
    # The bad bar is not stored as market data; BTC's is.
    bars = {(b.symbol, datetime_to_ms(b.ts)) for b in rows(url, MarketBarRow, MarketBarRow.id)}
    assert ("BTC/USDT", T0 + 61 * H) in bars and ("ETH/USDT", T0 + 61 * H) not in bars
    assert_books_balance(url)


class _FlakyExchange:
    """A ccxt exchange double: BTC/USDT served from the synthetic market, ETH/USDT always a network error."""

    has = {"fetchOHLCV": True}

    def __init__(self) -> None:
        self.synthetic = SyntheticMarket(seed=7)
        self.calls: list[str] = []

    def fetch_ohlcv(self, symbol: str, timeframe: str, since: int, limit: int) -> list[list[float]]:
        self.calls.append(symbol)
        if symbol == "ETH/USDT":
            raise ccxt.NetworkError("binance GET https://api.binance.com/api/v3/klines 503 Service Unavailable")
        history = self.synthetic.closed_bars(symbol, timeframe, since + limit * H, limit)
        return [
            [int(t), float(o), float(h), float(l), float(c), float(v)]
            for t, o, h, l, c, v in zip(history.timestamps, history.open, history.high, history.low, history.close, history.volume)
        ]


def test_an_exchange_error_for_one_symbol_is_retried_then_skipped_with_the_reason(migrated_url: str) -> None:
    url = migrated_url
    exchange = _FlakyExchange()
    slept: list[float] = []
    market = CcxtMarket("binance", exchange=exchange, max_retries=2, sleep=slept.append)  # type: ignore[arg-type]
    runner = TradingRunner(settings_for(url, symbols="BTC/USDT,ETH/USDT", timeframe="1h"), market=market)
    bar = 1_700_002_800_000  # 2023-11-14 23:00 UTC

    outcome = runner.run_cycle(bar)

    assert outcome.status == "traded"
    assert exchange.calls.count("ETH/USDT") == 3 and slept == [1.0, 2.0]
    (cycle,) = rows(url, TradingCycleRow)
    assert cycle.market_source == "ccxt" and cycle.status == "succeeded"
    assert set(cycle.skipped) == {"ETH/USDT"}
    reason = cycle.skipped["ETH/USDT"]
    assert reason.startswith("market data: binance fetch_ohlcv('ETH/USDT', '1h') failed 3 times")
    assert "NetworkError" in reason and "503 Service Unavailable" in reason
    assert {s.symbol for s in rows(url, SignalRow)} == {"BTC/USDT"}
    assert len(rows(url, PortfolioSnapshotRow)) == 1


def test_a_market_source_raising_market_data_error_skips_only_that_symbol(migrated_url: str) -> None:
    class HalfDown:
        name = "synthetic"

        def __init__(self) -> None:
            self.inner = SyntheticMarket(seed=7)

        def closed_bars(self, symbol: str, timeframe: str, end_ms: int, limit: int) -> BarHistory:
            if symbol == "SOL/USDT":
                raise MarketDataError(symbol, "exchange does not list SOL/USDT")
            return self.inner.closed_bars(symbol, timeframe, end_ms, limit)

    url = migrated_url
    outcome = TradingRunner(settings_for(url), market=HalfDown()).run_cycle(BAR0)
    assert outcome.skipped == {"SOL/USDT": "market data: exchange does not list SOL/USDT"}
    assert rows(url, TradingCycleRow)[0].skipped == {"SOL/USDT": "market data: exchange does not list SOL/USDT"}
    assert {s.symbol for s in rows(url, SignalRow)} == {"BTC/USDT", "ETH/USDT"}


def test_a_missing_headline_file_makes_sentiment_abstain_with_the_feed_error_and_the_cycle_succeeds(
    migrated_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = migrated_url
    monkeypatch.setenv("TRADEPIPE_NEWS_FEED", "/nonexistent")
    outcome = TradingRunner(settings_for(url)).run_cycle(BAR0)
    assert outcome.status == "traded"
    (cycle,) = rows(url, TradingCycleRow)
    assert cycle.status == "succeeded"
    signals = rows(url, SignalRow, SignalRow.id)
    sentiment = [s for s in signals if s.agent_name == "sentiment"]
    assert len(sentiment) == len(SYMBOLS)
    for s in sentiment:
        assert s.abstained
        assert "headline feed failed" in s.reason and "/nonexistent" in s.reason
    assert any(not s.abstained for s in signals if s.agent_name != "sentiment")


def test_a_headline_file_feeds_the_sentiment_agent(migrated_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = migrated_url
    feed = tmp_path / "headlines.tsv"
    # Decision time is the bar's close, 22:15; one headline 30 minutes before it, one from "the future".
    feed.write_text(
        "2023-11-14T21:45:00Z\tBitcoin surges to a record high as investors cheer strong inflows\n"
        "2023-11-14T23:00:00Z\tBitcoin collapses in a terrible crash\n"
    )
    monkeypatch.setenv("TRADEPIPE_NEWS_FEED", str(feed))
    TradingRunner(settings_for(url)).run_cycle(BAR0)
    sentiment = {s.symbol: s for s in rows(url, SignalRow) if s.agent_name == "sentiment"}
    assert not sentiment["BTC/USDT"].abstained and sentiment["BTC/USDT"].value > 0
    assert "over 1 headline(s) on BTC" in sentiment["BTC/USDT"].reason  # the later crash headline is not news yet
    assert sentiment["ETH/USDT"].abstained and "about other assets" in sentiment["ETH/USDT"].reason


# --------------------------------------------------------------------------- daily-loss halt


CRASH = 100  # bar 100 = 2024-01-05 04:00 UTC: both symbols lose half their price in one bar


def _crash_replay(tmp_path: Path) -> Path:
    replay = tmp_path / "crash"
    replay.mkdir()
    for name, start in (("BTC_USDT", 100.0), ("ETH_USDT", 50.0)):
        before = uptrend(start, CRASH)
        after = [before[-1] * 0.5 * 1.02**i * (1 + 0.004 * math.sin(i)) for i in range(40)]  # then a rally
        write_csv(replay / f"{name}-1h.csv", bar_rows(before + after))
    return replay


def _halted_book(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TradingRunner:
    """Trade bars 95..116 of the crash file: long into the crash, halted at bar 100, rally afterwards."""
    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", url)
    # One trend-following agent and a wide stop, so it is the daily-loss halt that holds the book back.
    settings = settings_for(
        url, symbols="BTC/USDT,ETH/USDT", timeframe="1h", agents="momentum", stop_loss_fraction=0.9, allow_short=False
    )
    runner = TradingRunner(settings, market=ReplayMarket(_crash_replay(tmp_path), mode="stepped"))
    for i in range(95, 117):
        outcome = runner.run_cycle(T0 + i * H)
        assert outcome.halted == (i >= CRASH), i
    return runner


def test_the_daily_loss_halt_is_recorded_only_risk_reducing_orders_pass_and_risk_reset_lifts_it(
    migrated_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = migrated_url
    _halted_book(url, tmp_path, monkeypatch)

    (book,) = rows(url, BookRow)
    assert book.halted_day == date(2024, 1, 5)
    assert book.halt_reason.startswith("daily loss limit: equity")
    crash_snapshot = [s for s in rows(url, PortfolioSnapshotRow, PortfolioSnapshotRow.bar_ts) if datetime_to_ms(s.bar_ts) == T0 + CRASH * H][0]
    assert crash_snapshot.equity <= crash_snapshot.day_start_equity * Decimal("0.97")

    orders = rows(url, OrderRow, OrderRow.id)
    before = [o for o in orders if datetime_to_ms(o.bar_ts) < T0 + CRASH * H and o.status != "rejected"]
    after = [o for o in orders if datetime_to_ms(o.bar_ts) >= T0 + CRASH * H]
    assert any(o.side == "buy" for o in before)  # the book took risk before the halt
    sent_after = [o for o in after if o.status != "rejected"]
    assert sent_after and all(o.side == "sell" for o in sent_after)
    blocked = [o for o in after if o.status == "rejected"]
    assert blocked and all(o.side == "buy" and o.reject_kind == "halted_daily_loss" for o in blocked)
    assert all(o.side == "sell" for o in rows(url, FillRow) if datetime_to_ms(o.ts) > T0 + CRASH * H)
    assert_books_balance(url)

    # The operator lifts the halt.
    result = CliRunner().invoke(cli, ["risk", "reset"])
    assert result.exit_code == 0, result.output
    assert "daily-loss halt lifted for book 'main'" in result.output
    (book,) = rows(url, BookRow)
    assert book.halted_day is None
    assert book.halt_reason.startswith("reset by operator at equity ") and "(was: daily loss limit" in book.halt_reason
    again = CliRunner().invoke(cli, ["risk", "reset"])
    assert again.exit_code == 0 and "no halt to reset" in again.output


def test_after_risk_reset_the_next_cycle_may_take_new_risk(
    migrated_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = migrated_url
    runner = _halted_book(url, tmp_path, monkeypatch)
    assert CliRunner().invoke(cli, ["risk", "reset"]).exit_code == 0

    outcome = runner.run_cycle(T0 + 117 * H)  # same UTC day; the rally goes on and momentum wants to buy
    assert not outcome.halted
    assert [o["side"] for o in outcome.orders_placed] == ["buy", "buy"]
    assert rows(url, BookRow)[0].halted_day is None


# --------------------------------------------------------------------------- the Dagster asset and its checks


def resources() -> dict[str, Any]:
    """The code location's resources for the settings the test put in the environment."""
    return build_resources(load_settings(), "test")


def _materialize(instance: dg.DagsterInstance, bar: int) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [portfolio_state, equity_invariant, no_double_fills],
        instance=instance,
        run_config={"ops": {"portfolio_state": {"config": {"bar_open_ms": bar}}}},
        resources=resources(),
    )



def test_materialising_portfolio_state_trades_a_cycle_with_a_dashboard_and_passing_checks(
    migrated_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = migrated_url
    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", url)
    instance = dg.DagsterInstance.ephemeral()
    results = [_materialize(instance, BAR0 + i * M) for i in range(2)]
    assert all(r.success for r in results)

    result = results[-1]
    (materialization,) = result.asset_materializations_for_node("portfolio_state")
    metadata = materialization.metadata
    snapshot = rows(url, PortfolioSnapshotRow, PortfolioSnapshotRow.bar_ts)[-1]
    cent = Decimal("0.01")  # money to the cent on the asset page
    assert isinstance(metadata["equity"], dg.FloatMetadataValue) and metadata["equity"].value == float(snapshot.equity.quantize(cent))
    assert isinstance(metadata["cash"], dg.FloatMetadataValue) and metadata["cash"].value == float(snapshot.cash.quantize(cent))
    assert isinstance(metadata["day_pnl"], dg.FloatMetadataValue)
    assert metadata["day_pnl"].value == float((snapshot.equity - snapshot.day_start_equity).quantize(cent))
    assert metadata["bar_open"].value.endswith("Z")
    assert metadata["cycle_status"].value == "traded"
    assert metadata["market"].value == "synthetic (SYNTHETIC prices)"

    positions = metadata["positions"]
    assert isinstance(positions, dg.TableMetadataValue)
    assert {r.data["symbol"]: r.data["quantity"] for r in positions.records} == {
        s: float(p["quantity"]) for s, p in snapshot.positions.items()
    }
    assert positions.records, "the first cycle's order filled in the second"
    signals = metadata["agent_signals"]
    assert isinstance(signals, dg.TableMetadataValue)
    assert [c.name for c in signals.schema.columns] == ["agent", "symbol", "signal", "confidence", "reason"]
    assert len(signals.records) == len(SYMBOLS) * len(DEFAULT_AGENTS)

    cycle = rows(url, TradingCycleRow, TradingCycleRow.bar_ts)[-1]
    cycle_orders = [o for o in rows(url, OrderRow) if o.cycle_id == cycle.id]
    assert metadata["orders_placed"].value == len([o for o in cycle_orders if o.status == "pending"])
    assert metadata["orders_rejected"].value == len([o for o in cycle_orders if o.status == "rejected"])
    assert metadata["fills"].value == len(rows(url, FillRow)) >= 1
    assert cycle.run_id == result.run_id

    for run in results:
        evaluations = {e.check_name: e for e in run.get_asset_check_evaluations()}
        assert set(evaluations) == {"equity_invariant", "no_double_fills"}
        assert all(e.passed for e in evaluations.values())
        assert evaluations["equity_invariant"].metadata["difference"].value == 0.0

    # A retried run for the same bar changes nothing and says so.
    before = counts(url)
    retry = _materialize(instance, BAR0 + M)
    assert retry.success
    assert retry.asset_materializations_for_node("portfolio_state")[0].metadata["cycle_status"].value == "already_done"
    assert counts(url) == before


def test_the_ledger_checks_fail_on_a_broken_ledger(migrated_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    url = migrated_url
    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", url)
    runner = TradingRunner(settings_for(url))
    runner.run_cycle(BAR0)
    runner.run_cycle(BAR0 + M)
    ledger = {"trading": TradingConfigResource.from_settings(settings_for(url)), "ledger": LedgerDatabase(url=url)}
    assert equity_invariant(**ledger).passed and no_double_fills(**ledger).passed

    with session_factory(url).begin() as session:
        snapshot = session.scalars(select(PortfolioSnapshotRow).order_by(PortfolioSnapshotRow.bar_ts.desc())).first()
        snapshot.equity += Decimal("0.000000000001")
    assert not equity_invariant(**ledger).passed

    with session_factory(url).begin() as session:
        fill = session.scalars(select(FillRow)).first()
        session.add(
            FillRow(
                order_id=fill.order_id, client_order_id=fill.client_order_id, trade_id="paper-duplicate", book=fill.book,
                symbol=fill.symbol, side=fill.side, quantity=fill.quantity, price=fill.price, fee=fill.fee,
                notional=fill.notional, ts=datetime.now(timezone.utc),
            )
        )
    check = no_double_fills(**ledger)
    assert not check.passed
    assert check.metadata["overfilled_orders"].value == [fill.client_order_id]


def test_a_sensor_request_launched_long_after_its_bar_is_not_traded(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run queued before a crash and launched minutes later must not trade at prices that are gone;
    a bar materialised by hand (no sensor tag) is the user's explicit choice and is traded."""
    from tradepipe.adapters.db.engine import upgrade

    upgrade(sqlite_url)
    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", sqlite_url)
    instance = dg.DagsterInstance.ephemeral()
    stale_bar = last_closed_bar_open(int(time.time() * 1000), "1m") - 10 * M
    late = dg.materialize(
        [portfolio_state],
        instance=instance,
        run_config={"ops": {"portfolio_state": {"config": {"bar_open_ms": stale_bar}}}},
        tags={"dagster/sensor_name": "trading_cycle_sensor"},
        resources=resources(),
    )
    (materialization,) = late.asset_materializations_for_node("portfolio_state")
    assert materialization.metadata["cycle_status"].value == "skipped_stale"
    assert rows(sqlite_url, TradingCycleRow) == []

    by_hand = _materialize(instance, stale_bar)
    (materialization,) = by_hand.asset_materializations_for_node("portfolio_state")
    assert materialization.metadata["cycle_status"].value == "traded"
    assert len(rows(sqlite_url, TradingCycleRow)) == 1
