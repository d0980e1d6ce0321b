"""Variant families: bounded parameters, one-line errors, the generator within bounds, and the whole-array
votes and traded streams equal to the per-bar agents and ``core.performance.agent_streams`` on real candles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tradepipe.core.agents import AGENTS
from tradepipe.core.performance import BookRules, agent_streams
from tradepipe.core.types import AgentContext
from tradepipe.research.data import MarketFrame, load_market
from tradepipe.research.evaluation import history_bars_for, holding_periods, variant_streams
from tradepipe.research.signals import window_validity
from tradepipe.research.variants import (
    FAMILIES,
    VariantError,
    grid_variants,
    make_variant,
    mutate,
    random_variants,
    variant_votes,
)

POOL = [
    make_variant("tsmom", {"lookback": 6, "vol_window": 24, "scale": 1.0}),
    make_variant("tsmom", {"lookback": 168, "vol_window": 72, "scale": 0.5}),
    make_variant("sma_cross", {"fast": 10, "slow": 120, "vol_window": 48, "scale": 1.5}),
    make_variant("bollinger_reversion", {"period": 20, "width": 2.0}),
    make_variant("bollinger_reversion", {"period": 72, "width": 1.0}),
    make_variant("donchian_breakout", {"period": 48, "lean": 0.5}),
]


@pytest.mark.parametrize(
    ("family", "params", "message"),
    [
        ("nope", {}, "unknown family 'nope'; known families: bollinger_reversion, donchian_breakout, sma_cross, tsmom"),
        ("tsmom", {"lookback": 1, "vol_window": 24, "scale": 1.0}, "tsmom.lookback=1 is outside its bounds [2, 1008]"),
        ("tsmom", {"lookback": 2.5, "vol_window": 24, "scale": 1.0}, "tsmom.lookback must be an integer, got 2.5"),
        ("tsmom", {"lookback": 5, "vol_window": 24}, "tsmom: missing parameter(s) scale"),
        ("tsmom", {"lookback": 5, "vol_window": 24, "scale": 1, "x": 1}, "tsmom: unknown parameter(s) x; parameters: lookback, scale, vol_window"),
        ("sma_cross", {"fast": 50, "slow": 20, "vol_window": 24, "scale": 1.0}, "sma_cross: fast=50 must be below slow=20"),
        ("bollinger_reversion", {"period": 20, "width": "2"}, "bollinger_reversion.width must be a number, got '2'"),
    ],
)
def test_a_bad_variant_is_one_clear_line(family: str, params: dict, message: str) -> None:
    with pytest.raises(VariantError) as caught:
        make_variant(family, params)
    assert str(caught.value) == message
    assert "\n" not in str(caught.value)


def test_generator_stays_within_bounds_and_is_deterministic() -> None:
    drawn = random_variants(300, seed=7)
    assert [v.name for v in drawn] == [v.name for v in random_variants(300, seed=7)]
    assert len({v.name for v in drawn}) == 300
    assert {v.family for v in drawn} == set(FAMILIES)
    for variant in drawn:
        for p in variant.spec.parameters:
            assert p.low <= variant.params[p.name] <= p.high
    lookbacks = [v.params["lookback"] for v in drawn if v.family == "tsmom"]
    assert min(lookbacks) < 12 and max(lookbacks) > 336  # hours to weeks
    for k, variant in enumerate(drawn[:50]):
        child = mutate(variant, seed=k)
        assert child.family == variant.family
        make_variant(child.family, dict(child.params))  # within bounds by construction
    grid = grid_variants("sma_cross", {"fast": [5, 50], "slow": [20, 200], "vol_window": [24], "scale": [1.0]})
    assert sorted((v.params["fast"], v.params["slow"]) for v in grid) == [(5, 20), (5, 200), (50, 200)]
    with pytest.raises(VariantError, match="sma_cross.slow=2000 is outside"):
        grid_variants("sma_cross", {"fast": [5], "slow": [2000], "vol_window": [24], "scale": [1.0]})


def test_bollinger_family_at_20_and_2_is_the_mean_reversion_agent(cdd_dir: Path) -> None:
    bars = load_market(cdd_dir, ["BTC/USDT"], "1h").bars["BTC/USDT"]
    agent = make_variant("bollinger_reversion", {"period": 20, "width": 2.0}).agent()
    for row in range(5_000, 5_300):
        window = bars.window(row, 60)
        context = AgentContext(now_ms=int(bars.timestamps[row]) + 3_600_000)
        mine, theirs = agent(window, context), AGENTS["mean_reversion"](window, context)
        assert (mine.value, mine.confidence) == pytest.approx((theirs.value, theirs.confidence), abs=1e-12)


def test_whole_array_votes_equal_the_per_bar_agents_on_real_candles(cdd_dir: Path) -> None:
    bars = load_market(cdd_dir, ["BTC/USDT"], "1h").bars["BTC/USDT"]  # from the first row: short windows too
    history = history_bars_for(POOL)
    valid = window_validity(bars, history)
    rows = np.arange(0, 1_200)
    for variant in POOL:
        votes = variant_votes(variant, bars, history)
        agent = variant.agent()
        per_bar = np.array([
            np.nan if not valid[r] else (lambda s: 0.0 if s.abstained else s.value * s.confidence)(agent(bars.window(r, history), AgentContext(now_ms=0)))
            for r in rows
        ])
        assert np.array_equal(np.isnan(per_bar), np.isnan(votes[rows])), variant.describe()
        both = ~np.isnan(per_bar)
        assert np.max(np.abs(per_bar[both] - votes[rows][both])) <= 1e-9, variant.describe()
        assert np.count_nonzero(per_bar[both]) > 0.3 * both.sum(), variant.describe()  # really voting


def _signal_table(market: MarketFrame, history: int) -> pd.DataFrame:
    """The table the live cycle would record: one row per voted (bar, symbol, variant), per-bar agents."""
    rows = []
    for symbol in market.symbols:
        bars = market.bars[symbol]
        valid = window_validity(bars, history)
        for r in range(len(bars)):
            if not valid[r]:
                continue
            for variant in POOL:
                s = variant.agent()(bars.window(r, history), AgentContext(now_ms=0))
                rows.append({
                    "bar_ts": pd.Timestamp(int(bars.timestamps[r]), unit="ms", tz="UTC"), "symbol": symbol,
                    "agent_name": variant.name, "value": s.value, "confidence": s.confidence,
                    "abstained": s.abstained, "close": bars.close[r], "open": bars.open[r],
                })
    return pd.DataFrame(rows)


def test_traded_streams_equal_agent_streams_on_real_candles(cdd_dir: Path, tmp_path: Path) -> None:
    from tests.research.conftest import write_slice

    # 2020-08 to 2020-10 (open != previous close from here on), both symbols, with a 2-hour ETH gap.
    directory = write_slice(cdd_dir, tmp_path / "slice", 29_500, 1_500)
    market = load_market(directory, ["BTC/USDT", "ETH/USDT"], "1h")
    rules = BookRules(max_position_fraction=0.5, allow_short=True, fee_bps=10.0, slippage_bps=5.0, rebalance_band=0.05, stop_loss_fraction=0.05, entry_hysteresis=0.05, min_hold_bars=3)
    history = history_bars_for(POOL)
    fast = variant_streams(market, POOL, rules, history, gross=True)
    table = _signal_table(market, history)
    for costs, mine in ((True, fast.returns), (False, fast.gross)):
        reference = agent_streams(table, rules, costs=costs)
        index = np.array([t.value // 1_000_000 for t in reference.index])
        at = np.searchsorted(fast.bar_ms[:-1], index)
        assert np.array_equal(fast.bar_ms[:-1][at], index)
        assert mine is not None
        for k, variant in enumerate(POOL):
            theirs = reference[variant.name].to_numpy()
            ours = mine[at, k]
            assert np.max(np.abs(np.nan_to_num(theirs) - np.nan_to_num(ours))) <= 1e-9, variant.describe()
        assert (holding_periods(mine) >= 1).all()  # every variant traded in the slice


def test_holding_periods_count_entries_from_cash() -> None:
    returns = np.array([[0.0, 0.01], [0.01, 0.0], [-0.02, 0.0], [0.0, 0.03], [0.03, 0.01]])
    assert holding_periods(returns).tolist() == [2, 2]
