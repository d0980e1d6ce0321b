"""A day's agent streams extend the previous day's: ``IncrementalStreams`` gives, for every day, exactly
(to the last bit) the streams of a full re-simulation of that day's window (``fast_agent_streams``,
itself proven equal to ``core.performance.agent_streams``), on real candles with a gap and a defective
bar, and on random votes with uneven coverage, holding periods, hysteresis and skipped days."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tradepipe.core.agents import get_agents
from tradepipe.core.performance import BookRules
from tradepipe.core.timeframes import DAY_MS
from tradepipe.research.data import load_market
from tradepipe.research.signals import build_signal_caches
from tradepipe.research.window import IncrementalStreams, SignalHistory, SignalWindow, _SymbolVotes
from tests.walkforward.conftest import write_slice

WINDOW_DAYS = 30


def _edit(name: str, lines: list[str]) -> list[str]:
    if name.startswith("ETH"):
        return lines[:700] + lines[701:]  # ETH misses an hour
    fields = lines[1300].split(",")
    fields[5] = "nan"  # a defective BTC close: BTC is not voted on while it is in the window
    return lines[:1300] + [",".join(fields)] + lines[1301:]


def _compare(history: SignalHistory | None, incremental: IncrementalStreams, window_of, days: list[int]) -> int:
    compared = 0
    for day in days:
        start, end = day - WINDOW_DAYS * DAY_MS, day
        expected = window_of(start, end).fast_agent_streams(incremental.paths.rules)
        mine = incremental.streams(start, end)
        pd.testing.assert_frame_equal(mine, expected, check_exact=True)
        compared += len(expected)
    return compared


def test_every_day_equals_the_full_resimulation_on_real_candles(cdd_dir: Path, tmp_path: Path) -> None:
    candles = write_slice(cdd_dir, tmp_path / "slice", 12_000, 2400, _edit)  # 2019-01 .. 2019-04, 100 days
    market = load_market(candles, ("BTC/USDT", "ETH/USDT"), "1h")
    agents = get_agents(["momentum", "trend", "mean_reversion", "breakout"])
    caches = build_signal_caches(market, agents, 64)
    bars = market.timeline[64:]
    history = SignalHistory(caches, market, bars)
    rules = BookRules(fee_bps=10.0, slippage_bps=5.0, rebalance_band=0.05, stop_loss_fraction=0.05)
    incremental = history.incremental_streams(rules)
    first_day = int(bars[0]) // DAY_MS * DAY_MS
    days = [first_day + k * DAY_MS for k in range(1, int(bars[-1] - bars[0]) // DAY_MS + 2)]
    assert _compare(history, incremental, history.window, days) > 60 * 24 * WINDOW_DAYS // 2
    full = sum(max(len(history.window(d - WINDOW_DAYS * DAY_MS, d).fast_agent_streams(rules)), 0) + 1 for d in days) * len(agents)
    assert incremental.followed < full / 3  # most days follow far fewer bars than their window


def _votes(rng: np.random.Generator, bars: np.ndarray, agents: int) -> _SymbolVotes:
    n = bars.size
    # Votes that persist for hours (as real agents' do), so books hold positions across days.
    level = np.repeat(rng.uniform(-1, 1, (n // 12 + 1, agents)), 12, axis=0)[:n]
    abstained = rng.random((n, agents)) < 0.1
    value = np.where(abstained, 0.0, level)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    return _SymbolVotes(bars, close, value, abstained, np.where(abstained, 0.0, rng.uniform(0.5, 1.0, (n, agents))))


@pytest.mark.parametrize(
    "rules",
    [
        BookRules(fee_bps=10.0),
        BookRules(fee_bps=10.0, min_hold_bars=30, entry_hysteresis=0.1, rebalance_band=0.02),
        BookRules(fee_bps=0.0, slippage_bps=0.0, stop_loss_fraction=0.0, allow_short=True, max_position_fraction=1.0),
    ],
)
def test_every_day_equals_the_full_resimulation_on_random_votes(rules: BookRules) -> None:
    rng = np.random.default_rng(11)
    hour = 3_600_000
    start = 1_600_000_000_000 // DAY_MS * DAY_MS
    full = start + hour * np.arange(24 * 90)
    agents = ("b", "a", "c")
    symbols = {
        "BTC/USDT": _votes(rng, full, 3),
        "ETH/USDT": _votes(rng, np.delete(full, [5, 6, 100, 1000]), 3),
        "XRP/USDT": _votes(rng, full[24 * 40 :], 3),  # starts later
    }
    incremental = IncrementalStreams(agents, symbols, rules)

    def window_of(lo: int, hi: int) -> SignalWindow:
        parts = {}
        for symbol, votes in symbols.items():
            a, b = np.searchsorted(votes.bar_ms, [lo, hi])
            if b > a:
                parts[symbol] = _SymbolVotes(votes.bar_ms[a:b], votes.close[a:b], votes.value[a:b], votes.abstained[a:b], votes.confidence[a:b])
        return SignalWindow(agents, parts)

    days = [start + k * DAY_MS for k in range(1, 91)]
    days = days[:40] + days[40:41] + days[43:]  # one day asked twice, two days skipped
    assert _compare(None, incremental, window_of, days) > 0
