"""An agent's return stream is what the book earns trading it alone (core.performance.agent_streams).

Proved against an independent computation: a solo-agent book run bar by bar through the live
``cycle.run_cycle`` (risk manager, paper fills at the next open, exact Decimal ledger) on real
candles. Tolerance: each bar's return within 2e-5 and the final equity within 1e-3 relative; the
differences left are the ledger's rounding to the exchange's amount step and price tick (a fill
priced up to one 0.01 tick worse: about 3e-6 of equity per trade).
"""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tradepipe.core.agents import get_agents
from tradepipe.core.cycle import CycleInputs, PendingOrder, run_cycle
from tradepipe.core.ledger import Portfolio, mark_to_market
from tradepipe.core.performance import BookRules, agent_streams, simulate_books
from tradepipe.core.risk import RiskLimits
from tradepipe.core.types import AgentContext, BarHistory, MarketRules

H = 3_600_000
SYMBOLS = ("BTC/USDT", "ETH/USDT")
RULES = {s: MarketRules(s, amount_step=D("0.00001"), price_tick=D("0.01"), min_cost=D(10)) for s in SYMBOLS}


def _candles(shared_data: Path, symbol: str, bars: int) -> pd.DataFrame:
    path = shared_data / "ohlcv" / "binance_2018_octobot" / f"{symbol.replace('/', '_')}-1h.csv"
    return pd.read_csv(path).iloc[:bars]


def _solo_book(frames: dict[str, pd.DataFrame], agent_name: str, rules: BookRules, warmup: int, min_hold: int = 0):
    """Run the agent alone (weight 1) through run_cycle; return the signals table and the equity per bar."""
    agent = get_agents([agent_name])[0]
    limits = RiskLimits(
        max_position_fraction=D(repr(rules.max_position_fraction)),
        max_gross_exposure=D(1),
        max_turnover_fraction=D(2),
        stop_loss_fraction=D(repr(rules.stop_loss_fraction)),
        daily_loss_limit_fraction=D(0),
        allow_short=rules.allow_short,
        cash_buffer_fraction=D(0),
    )
    portfolio, pending, marks = Portfolio(cash=D(100000)), [], {}
    rows, equity = [], []
    n = len(next(iter(frames.values())))
    for i in range(warmup, n):
        histories = {
            s: BarHistory(s, "1h", f["timestamp"].to_numpy(np.int64)[: i + 1], *(f[c].to_numpy(float)[: i + 1] for c in ("open", "high", "low", "close", "volume")))
            for s, f in frames.items()
        }
        bar = int(frames[SYMBOLS[0]]["timestamp"].iloc[i])
        result = run_cycle(
            CycleInputs(
                book="solo", bar_open_ms=bar, timeframe_ms=H, histories=histories, unavailable={}, agents=[agent],
                context=AgentContext(now_ms=bar + H), weights={agent_name: 1.0}, portfolio=portfolio, pending=pending,
                rules=RULES, limits=limits, fee_bps=D(repr(rules.fee_bps)), slippage_bps=D(repr(rules.slippage_bps)),
                day_start_equity=D(100000), halted=False, last_marks=marks, rebalance_band=rules.rebalance_band,
                entry_hysteresis=rules.entry_hysteresis, min_hold_bars=min_hold,
            )
        )
        portfolio, marks = result.portfolio, result.marks
        pending = [PendingOrder(order, bar) for order in result.plan.orders]
        equity.append(float(mark_to_market(portfolio, marks).equity))
        for signal in result.signals:
            frame = frames[signal.symbol]
            rows.append((pd.Timestamp(bar, unit="ms", tz="UTC"), signal.symbol, signal.agent, signal.value, signal.confidence, signal.abstained, float(frame["close"].iloc[i]), float(frame["open"].iloc[i])))
    signals = pd.DataFrame(rows, columns=["bar_ts", "symbol", "agent_name", "value", "confidence", "abstained", "close", "open"])
    return signals, np.asarray(equity)


@pytest.mark.parametrize(
    ("agent", "rules", "min_hold"),
    [
        ("trend", BookRules(), 0),  # long-only spot book, the defaults
        # shorts, stops that fire. Band 0.02: at 0.05 this slice hits a live-book defect the stream does not
        # model (a dust remainder below min_cost whose stop-loss is refused each bar keeps the symbol in
        # stop-loss cooldown, so the book never re-opens it; reported for the risk manager).
        ("mean_reversion", BookRules(allow_short=True, stop_loss_fraction=0.02, rebalance_band=0.02), 0),
        ("momentum", BookRules(allow_short=True, entry_hysteresis=0.1, min_hold_bars=6), 6),  # the turnover controls
    ],
)
def test_stream_equals_a_solo_agent_book_through_run_cycle(shared_data: Path, agent: str, rules: BookRules, min_hold: int) -> None:
    frames = {s: _candles(shared_data, s, 460) for s in SYMBOLS}
    signals, equity = _solo_book(frames, agent, rules, warmup=60, min_hold=min_hold)
    streams = agent_streams(signals, rules)
    book_returns = equity[1:] / equity[:-1] - 1.0
    assert list(streams.columns) == [agent]
    assert len(streams) == len(book_returns) == 399
    assert np.count_nonzero(book_returns) > 100  # the book traded: the comparison is not of two flat lines
    np.testing.assert_allclose(streams[agent].to_numpy(), book_returns, atol=2e-5, rtol=0)
    assert np.prod(1 + streams[agent].to_numpy()) == pytest.approx(equity[-1] / equity[0], rel=1e-3)


def test_gross_stream_has_no_costs_and_fees_scale_with_turnover() -> None:
    # One symbol, the vote goes long in full, holds, then closes: two fills of 25% of equity each.
    close = np.array([[100.0], [100.0], [110.0], [110.0], [110.0]])
    votes = np.array([1.0, 1.0, 0.0, 0.0, 0.0])[:, None, None]
    rules = BookRules(fee_bps=10, slippage_bps=5, stop_loss_fraction=0)
    net = simulate_books(votes, close, close, rules)[:, 0]
    gross = simulate_books(votes, close, close, rules, costs=False)[:, 0]
    # bought 0.0025 units at the bar-1 open 100 (gross), +10% on 25% of equity: +2.5%
    assert gross.tolist() == pytest.approx([0.0, 0.025, 0.0, 0.0])
    # net: buy at 100.05 plus 0.1% fee; sell at the bar-3 open 110 x 0.9995, 0.1% fee
    qty = 0.25 / 100.0
    cash = 1 - qty * 100.05 * 1.001
    eq2 = cash + qty * 110
    cash3 = cash + qty * 110 * 0.9995 * (1 - 0.001)
    assert net.tolist() == pytest.approx([cash + qty * 100 - 1, eq2 / (cash + qty * 100) - 1, cash3 / eq2 - 1, 0.0], rel=1e-12)


def test_rebalance_band_dead_band_and_long_only() -> None:
    close = np.full((4, 1), 100.0)
    rules = BookRules(fee_bps=0, slippage_bps=0, stop_loss_fraction=0)
    # score 0.1 asks for (0.1 - 0.05) / 0.95 * 25% = 1.3% < the 2% band: never traded
    small = simulate_books(np.full((4, 1, 1), 0.1), close * np.array([[1], [1.1], [1.2], [1.3]]), None, rules)
    assert small.tolist() == [[0.0], [0.0], [0.0]]
    # a short score on a long-only book holds nothing, with shorts allowed it earns the fall
    falling = close * np.array([[1.0], [1.0], [0.9], [0.9]])
    assert simulate_books(np.full((4, 1, 1), -1.0), falling, falling, rules).tolist() == [[0.0], [0.0], [0.0]]
    shorted = simulate_books(np.full((4, 1, 1), -1.0), falling, falling, BookRules(fee_bps=0, slippage_bps=0, stop_loss_fraction=0, allow_short=True))
    assert shorted[:, 0].tolist() == pytest.approx([0.0, 0.025, 0.0])


def test_signals_with_a_bad_close_or_vote_name_the_bar() -> None:
    t0 = pd.Timestamp("2026-01-12T00:00:00Z")
    signals = pd.DataFrame(
        [(t0, "BTC/USDT", "trend", 1.0, 1.0, False, 100.0), (t0 + pd.Timedelta(hours=1), "BTC/USDT", "trend", 1.0, 1.0, False, float("nan"))],
        columns=["bar_ts", "symbol", "agent_name", "value", "confidence", "abstained", "close"],
    )
    with pytest.raises(ValueError, match=r"BTC/USDT.*close.*2026-01-12T01:00:00\+00:00"):
        agent_streams(signals, BookRules())
    signals.loc[1, "close"] = 101.0
    signals.loc[0, "value"] = float("nan")
    with pytest.raises(ValueError, match=r"'trend'.*2026-01-12T00:00:00\+00:00"):
        agent_streams(signals, BookRules())
    signals.loc[0, "abstained"] = True  # an abstained row's value is never used
    assert agent_streams(signals, BookRules())["trend"].tolist() == [0.0]
    with pytest.raises(ValueError, match="confidence"):
        agent_streams(signals.drop(columns=["confidence"]), BookRules())
