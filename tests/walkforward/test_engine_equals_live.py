"""The walk-forward engine trades exactly as the live cycle: ``tradepipe backtest`` (``TradingRunner.run_cycle``
into a SQLite book) and the engine, on 1,400 bars of real candles, give the same signals, orders, fills and
equity, bar by bar. The slice has a gap in one symbol and a defective bar in the other, so the skip rules are
exercised too. And the engine's daily performance window equals what the assets read from that book."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from tradepipe.adapters.db.analytics import load_signals, signal_counts
from tradepipe.adapters.db.engine import session_factory, upgrade
from tradepipe.adapters.db.ledger import datetime_to_ms, ms_to_datetime
from tradepipe.adapters.db.models import FillRow, OrderRow, PortfolioSnapshotRow, SignalRow, TradingCycleRow
from tradepipe.trading.backtest import run_backtest
from tradepipe.core.agents import get_agents
from tradepipe.core.performance import agent_streams
from tradepipe.core.timeframes import DAY_MS
from tradepipe.config.settings import load_settings
from tradepipe.research.data import load_market
from tradepipe.research.engine import StrategySpec, config_from_settings, run_walk_forward
from tradepipe.research.signals import build_signal_caches
from tradepipe.research.window import SignalHistory
from tests.walkforward.conftest import write_slice

BOOK = "wf-live"
TRADED = 1400
WARMUP = 59
GAP_ROW = 500  # ETH misses this hour: ETH is skipped there, BTC trades
BAD_ROW = 1000  # BTC's close is NaN here: BTC is skipped for the 200 bars whose window holds it


def _edit(name: str, lines: list[str]) -> list[str]:
    if name.startswith("ETH"):
        return lines[:GAP_ROW] + lines[GAP_ROW + 1 :]
    fields = lines[BAD_ROW].split(",")
    fields[5] = "nan"
    return lines[:BAD_ROW] + [",".join(fields)] + lines[BAD_ROW + 1 :]


@pytest.fixture(scope="module")
def candles(cdd_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 2018-11-18 .. 2019-01-18, rows 11,000 onward: the fall to the 2018 low, then a rise (57 orders; the 2,000
    # bars used before placed 93 and proved nothing more, at 44 instead of ~31 CPU seconds)
    return write_slice(cdd_dir, tmp_path_factory.mktemp("cdd_slice"), 11_000, WARMUP + TRADED + 1, _edit)


# 1,400 bars through the live runner, one transaction each: minutes on a busy machine, so not the default limit.
@pytest.mark.timeout(1200)
def test_engine_trades_exactly_as_the_live_cycle(candles: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'live.sqlite'}"
    upgrade(url)
    settings = load_settings(
        database_url=url, market_source="replay", replay_dir=candles, timeframe="1h", symbols="BTC/USDT,ETH/USDT",
        agent_weights="momentum=0.3,trend=0.3,mean_reversion=0.1,breakout=0.2,sentiment=0.1",
    )
    summary = run_backtest(settings, candles, BOOK, through="runner")  # the live runner, bar by bar: the reference
    assert summary.cycles == TRADED

    config = replace(config_from_settings(settings), book=BOOK)
    market = load_market(candles, config.symbols, "1h")
    seen: dict[str, list] = {"signals": [], "orders": [], "rejections": [], "fills": [], "equity": [], "skipped": []}

    def on_cycle(key: str, inputs, result) -> None:
        bar = inputs.bar_open_ms
        seen["signals"] += [(bar, s.symbol, s.agent, s.value, s.confidence, s.abstained) for s in result.signals]
        seen["orders"] += [(o.client_order_id, bar, o.symbol, o.side, o.quantity, o.reference_price) for o in result.plan.orders]
        seen["rejections"] += [(bar, r.symbol, r.kind) for r in result.plan.rejections]
        seen["fills"] += [(f.fill.client_order_id, f.fill.symbol, f.fill.side, f.fill.quantity, f.fill.price, f.fill.fee, f.fill.fill_ms) for f in result.fills]
        seen["equity"].append((bar, result.valuation.equity, result.portfolio.cash))
        seen["skipped"] += [(bar, symbol) for symbol in result.skipped]

    run = run_walk_forward(market, config, [StrategySpec("fixed", settings.default_weights)], on_cycle=on_cycle)

    with session_factory(url)() as session:
        cycles = session.scalars(select(TradingCycleRow).where(TradingCycleRow.book == BOOK).order_by(TradingCycleRow.bar_ts)).all()
        signals = session.scalars(select(SignalRow).where(SignalRow.book == BOOK).order_by(SignalRow.bar_ts, SignalRow.symbol, SignalRow.id)).all()
        orders = session.scalars(select(OrderRow).where(OrderRow.book == BOOK).order_by(OrderRow.bar_ts, OrderRow.id)).all()
        fills = session.scalars(select(FillRow).where(FillRow.book == BOOK).order_by(FillRow.ts, FillRow.id)).all()
        snapshots = session.scalars(select(PortfolioSnapshotRow).where(PortfolioSnapshotRow.book == BOOK).order_by(PortfolioSnapshotRow.bar_ts)).all()

    assert run.bars.tolist() == [datetime_to_ms(c.bar_ts) for c in cycles]
    live_skips = sorted((datetime_to_ms(c.bar_ts), s) for c in cycles for s in c.skipped if not s.startswith("weights:"))
    assert sorted(seen["skipped"]) == live_skips
    assert {s for _, s in live_skips} == {"BTC/USDT", "ETH/USDT"} and len(live_skips) == 1 + 200

    # Signals: the same votes (the fast path's floats equal the per-bar agent's to 1e-12).
    live_signals = [(datetime_to_ms(s.bar_ts), s.symbol, s.agent_name, s.value, s.confidence, s.abstained) for s in signals]
    assert len(seen["signals"]) == len(live_signals) > 0
    for mine, theirs in zip(sorted(seen["signals"], key=lambda r: r[:3]), sorted(live_signals, key=lambda r: r[:3])):
        assert mine[:3] == theirs[:3] and mine[5] == theirs[5]
        assert mine[3] == pytest.approx(theirs[3], abs=1e-12) and mine[4] == pytest.approx(theirs[4], abs=1e-12)

    # Orders, rejections and fills: identical to the last digit.
    placed = [(o.client_order_id, datetime_to_ms(o.bar_ts), o.symbol, o.side, o.quantity, o.reference_price) for o in orders if o.status != "rejected"]
    assert seen["orders"] == placed and len(placed) > 50
    assert seen["rejections"] == [(datetime_to_ms(o.bar_ts), o.symbol, o.reject_kind) for o in orders if o.status == "rejected"]
    assert seen["fills"] == [(f.client_order_id, f.symbol, f.side, f.quantity, f.price, f.fee, datetime_to_ms(f.ts)) for f in fills]
    assert seen["equity"] == [(datetime_to_ms(s.bar_ts), s.equity, s.cash) for s in snapshots]
    assert run.books["fixed"].equity[-1] == float(snapshots[-1].equity) == float(summary.final_equity)

    # The daily performance window: the engine's streams and signal counts equal the assets' on the live book.
    caches = build_signal_caches(market, get_agents(list(config.agents)), config.history_bars)
    history = SignalHistory(caches, market, run.bars)
    first_day = int(run.bars[0]) // DAY_MS * DAY_MS
    with session_factory(url)() as session:
        for day in (first_day + 2 * DAY_MS, first_day + 40 * DAY_MS, first_day + 55 * DAY_MS):
            start, end = day - config.window_days * DAY_MS, day
            table = load_signals(session, BOOK, ms_to_datetime(start), ms_to_datetime(end))
            expected = agent_streams(table, config.book_rules)
            window = history.window(start, end)
            mine = window.fast_agent_streams(config.book_rules)
            assert len(mine) == len(expected) > 0
            # equal up to the fast-path votes' 1e-16 differences from the per-bar votes the ledger stored
            assert np.allclose(mine[sorted(mine.columns)].to_numpy(), expected[sorted(expected.columns)].to_numpy(), rtol=0, atol=1e-12)
            assert window.signal_counts() == signal_counts(table)


def test_the_engine_sets_every_cycle_input_the_runner_sets() -> None:
    """A field added to CycleInputs or RiskLimits (a new setting the live runner passes) must be added to
    walkforward.engine.cycle_inputs / config_from_settings too, or the engine would trade on its default."""
    from dataclasses import fields

    from tradepipe.core.cycle import CycleInputs
    from tradepipe.core.risk import RiskLimits

    assert {f.name for f in fields(CycleInputs)} == {
        "book", "bar_open_ms", "timeframe_ms", "histories", "unavailable", "agents", "context", "weights", "portfolio",
        "pending", "rules", "limits", "fee_bps", "slippage_bps", "day_start_equity", "halted", "last_marks",
        "agent_notes", "rebalance_band", "broker_outcomes", "entry_hysteresis", "min_hold_bars",
        # History has no wall clock (each bar's decision time is its close); the engine judges each bar's
        # guard once for all its books and passes the verdicts.
        "wall_clock_ms", "guard_verdicts",
        # A trader's controls (pause, force-exit) act on the live book only: history has no trader.
        "entries_paused", "force_exit",
        # The engine's books see the same bars: one cycle casts the votes, the others reuse them.
        "signals",
    }
    assert {f.name for f in fields(RiskLimits)} == {
        "max_position_fraction", "max_gross_exposure", "max_turnover_fraction", "stop_loss_fraction",
        "daily_loss_limit_fraction", "allow_short", "cash_buffer_fraction",
    }
