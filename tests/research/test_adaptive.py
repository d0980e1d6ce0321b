"""The self-improvement loop uses only bars closed before each decision: cut the market at a day D and every
generation before D is the same (candidates, figures, promotions, pool); and its book differs from the
day-1 system only by what it promoted."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from tradepipe.core.agents import get_agents
from tradepipe.core.performance import BookRules
from tradepipe.core.timeframes import DAY_MS
from tradepipe.research.adaptive import LoopConfig, LoopRun, loop_summary, run_adaptive_loop
from tradepipe.research.data import MarketFrame, market_from_arrays
from tradepipe.research.regimes import slow_trend_bars
from tradepipe.research.selection import PoolRules

DAYS = 150
LOOP = LoopConfig(every_days=7, lookback_days=21, candidates=6, mutations=1, seed=3, pbo_blocks=4, rules=PoolRules(min_dsr=0.5, min_trades=2, max_pool=3))


def _market(hours: int) -> MarketFrame:
    return market_from_arrays(
        {"AAA/USDT": slow_trend_bars(hours, seed=5, drift=0.001), "BBB/USDT": slow_trend_bars(hours, seed=5, drift=0.001, symbol_offset=1)}, "1h"
    )


def _cut(market: MarketFrame, end_ms: int) -> MarketFrame:
    bars = {}
    for symbol, b in market.bars.items():
        keep = b.timestamps < end_ms
        bars[symbol] = replace(b, timestamps=b.timestamps[keep], open=b.open[keep], high=b.high[keep], low=b.low[keep], close=b.close[keep], volume=b.volume[keep])
    return replace(market, bars=bars, timeline=market.timeline[market.timeline < end_ms])


@pytest.fixture(scope="module")
def market() -> MarketFrame:
    return _market(DAYS * 24)


@pytest.fixture(scope="module")
def full(market: MarketFrame) -> LoopRun:
    """The whole loop over the market, read by both tests (about 4 CPU seconds each time it runs)."""
    return run_adaptive_loop(market, get_agents(), BookRules(), LOOP)


def test_a_run_cut_at_a_day_makes_the_same_promotions_before_it(market: MarketFrame, full: LoopRun) -> None:
    assert any(p["action"] == "promote" for p in full.promotions())  # the loop did promote on this market
    cut_day = full.generations[len(full.generations) // 2 + 1].day_ms + DAY_MS
    cut = run_adaptive_loop(_cut(market, cut_day), get_agents(), BookRules(), LOOP)
    before = [g for g in full.generations if g.day_ms < cut_day]
    assert len(cut.generations) == len(before) >= 3
    for mine, theirs in zip(cut.generations, before):
        assert (mine.day_ms, mine.trials, mine.pool, mine.changes) == (theirs.day_ms, theirs.trials, theirs.pool, theirs.changes)
        assert [(e.name, e.sharpe, e.deflated_sharpe, e.trades, e.pbo) for e in mine.evaluations] == [(e.name, e.sharpe, e.deflated_sharpe, e.trades, e.pbo) for e in theirs.evaluations]
    # the book's returns before the cut are the same too
    rows = cut.adaptive.size - 1
    assert np.array_equal(cut.adaptive[:rows], full.adaptive[:rows])


def test_the_loop_book_is_the_day_one_system_until_a_promotion(full: LoopRun) -> None:
    run = full
    first_promotion = min(p["day_ms"] for p in run.promotions() if p["action"] == "promote")
    before = run.bar_ms + 3_600_000 < first_promotion
    assert np.array_equal(run.adaptive[before], run.baseline[before])
    assert not np.array_equal(run.adaptive[~before], run.baseline[~before])
    summary = loop_summary(run, 8760, block=48)
    assert summary["trials"] == run.generations[-1].trials >= LOOP.candidates * len(run.generations)
    assert summary["promotions"] and 0.0 <= summary["pbo"] <= 1.0
