"""The whole self-improvement loop as a walk-forward book (``adaptive:loop``): discovery every K days on
the bars before each day, then the pool traded through the engine. A run cut at a day D makes the same
promotions and trades the same book before D; with nothing promoted the book is the hedge book; and
summary.json carries the trial count, the deflated Sharpe, the PBO and the pool over time."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm

from tradepipe.config.settings import load_settings
from tradepipe.core.timeframes import DAY_MS
from tradepipe.research.adaptive import LoopConfig
from tradepipe.research.data import MarketFrame, market_from_arrays
from tradepipe.research.engine import EngineConfig, StrategySpec, config_from_settings, default_strategies, run_walk_forward
from tradepipe.research.pool_book import LOOP_KEY, loop_record, merge_runs, run_pool_book
from tradepipe.research.regimes import slow_trend_bars
from tradepipe.research.report import render_report
from tradepipe.research.selection import PoolRules
from tradepipe.research.stats import book_returns
from tradepipe.research.summary import build_summary, strategy_series

DAYS = 120
SYMBOLS = ("AAA/USDT", "BBB/USDT")
LOOP = LoopConfig(every_days=7, lookback_days=21, candidates=6, mutations=1, seed=3, pbo_blocks=4, rules=PoolRules(min_dsr=0.5, min_trades=2, max_pool=3))


def _market(hours: int) -> MarketFrame:
    return market_from_arrays(
        {SYMBOLS[0]: slow_trend_bars(hours, seed=5, drift=0.001), SYMBOLS[1]: slow_trend_bars(hours, seed=5, drift=0.001, symbol_offset=1)}, "1h"
    )


def _cut(market: MarketFrame, end_ms: int) -> MarketFrame:
    bars = {}
    for symbol, b in market.bars.items():
        keep = b.timestamps < end_ms
        bars[symbol] = replace(b, timestamps=b.timestamps[keep], open=b.open[keep], high=b.high[keep], low=b.low[keep], close=b.close[keep], volume=b.volume[keep])
    return replace(market, bars=bars, timeline=market.timeline[market.timeline < end_ms])


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> EngineConfig:
    settings = load_settings(market_source="replay", replay_dir=tmp_path_factory.mktemp("replay"), symbols=",".join(SYMBOLS), timeframe="1h")
    return config_from_settings(settings, symbols=SYMBOLS, window_days=14)


@pytest.fixture(scope="module")
def market() -> MarketFrame:
    return _market(DAYS * 24)


def _bars(market: MarketFrame, config: EngineConfig) -> np.ndarray:
    return run_walk_forward(market, config, [StrategySpec("equal_weight", {a: 1.0 / len(config.agents) for a in config.agents})]).bars


def test_a_run_cut_at_a_day_promotes_and_trades_the_same_before_it(market: MarketFrame, config: EngineConfig) -> None:
    full = run_pool_book(market, config, LOOP, _bars(market, config))
    generations = full.discovery.generations
    cut_day = generations[len(generations) // 2].day_ms + 3 * DAY_MS  # mid-run, between two generations
    assert any(p["action"] == "promote" for p in full.discovery.promotions() if p["day_ms"] < cut_day)
    assert any(p["action"] == "promote" for p in full.discovery.promotions() if p["day_ms"] > cut_day)
    cut_market = _cut(market, cut_day)
    cut = run_pool_book(cut_market, config, LOOP, _bars(cut_market, config))

    before = [g for g in full.discovery.generations if g.day_ms < cut_day]
    assert len(cut.discovery.generations) == len(before) >= 3
    for mine, theirs in zip(cut.discovery.generations, before):
        assert (mine.day_ms, mine.trials, mine.pool, mine.changes) == (theirs.day_ms, theirs.trials, theirs.pool, theirs.changes)
    assert cut.discovery.promotions() == [p for p in full.discovery.promotions() if p["day_ms"] < cut_day]
    # the full run knows variants promoted after the cut (weightless until then); the book before it is the same
    assert len(full.run.config.agents) > len(cut.run.config.agents)
    n = cut.run.bars.size
    assert np.array_equal(cut.run.bars, full.run.bars[:n])
    assert cut.run.books[LOOP_KEY].equity == full.run.books[LOOP_KEY].equity[:n]
    full_weights = [(d.day_ms, {a: w for a, w in d.weights.items() if w > 0}) for d in full.run.books[LOOP_KEY].decisions if d.day_ms < cut_day]
    cut_weights = [(d.day_ms, {a: w for a, w in d.weights.items() if w > 0}) for d in cut.run.books[LOOP_KEY].decisions]
    assert cut_weights == full_weights
    assert any(set(w) - set(config.agents) for _, w in cut_weights)  # a promoted variant did weigh before the cut


def test_with_nothing_promoted_the_loop_book_is_the_hedge_book(market: MarketFrame, config: EngineConfig) -> None:
    never = replace(LOOP, rules=replace(LOOP.rules, min_trades=10**9))
    pool = run_pool_book(market, config, never, _bars(market, config))
    assert not pool.discovery.promotions() and pool.run.config.agents == config.agents
    wide = replace(config, history_bars=pool.run.config.history_bars)  # the window the loop's book reads
    hedge = run_walk_forward(market, wide, default_strategies(wide, ["hedge"])[:1], bars=pool.run.bars)
    assert pool.run.books[LOOP_KEY].equity == hedge.books["adaptive:hedge"].equity
    assert [d.weights for d in pool.run.books[LOOP_KEY].decisions] == [d.weights for d in hedge.books["adaptive:hedge"].decisions]


def test_summary_and_report_carry_the_loops_trials_deflated_sharpe_pbo_and_pool(market: MarketFrame, config: EngineConfig) -> None:
    main = run_walk_forward(market, config, default_strategies(config, ["hedge"]))
    pool = run_pool_book(market, config, LOOP, main.bars)
    run = merge_runs(main, pool)
    series = strategy_series(run)
    summary = build_summary(run, name="loop", data_dir="synthetic", methods=["hedge", "loop"], resamples=200, series=series, loops={LOOP_KEY: loop_record(pool)})
    assert {"adaptive:hedge", LOOP_KEY, "equal_weight", "buy_and_hold"} <= set(summary["strategies"])
    loop = summary["comparisons"][LOOP_KEY]
    assert loop["trials"] == pool.discovery.trials >= LOOP.candidates * len(pool.discovery.generations)
    promotions = [p for p in loop["promotions"] if p["action"] == "promote"]
    assert {p["name"] for p in promotions} == {v.name for v in pool.discovery.promoted()} and promotions
    assert loop["pool"][-1]["members"] == pool.discovery.generations[-1].pool
    assert 0.0 <= loop["pbo"] <= 1.0
    # the deflated Sharpe, independently: PSR against the expected maximum of `trials` skill-less Sharpe ratios
    r = np.nan_to_num(book_returns(series[LOOP_KEY]["equity"], float(config.starting_cash)))
    t, sr = r.size, r.mean() / r.std(ddof=1)
    skew = float(np.mean((r - r.mean()) ** 3) / r.std() ** 3) * math.sqrt(t * (t - 1)) / (t - 2)
    from scipy.stats import kurtosis

    kurt = float(kurtosis(r, fisher=False, bias=False))
    n, gamma = loop["trials"], 0.5772156649015329
    sr0 = math.sqrt(1.0 / (t - 1)) * ((1 - gamma) * norm.ppf(1 - 1 / n) + gamma * norm.ppf(1 - 1 / (n * math.e)))
    expected = norm.cdf((sr - sr0) * math.sqrt(t - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2))
    assert loop["deflated_sharpe"] == pytest.approx(expected, abs=1e-9)
    assert summary["comparisons"]["adaptive:hedge"]["trials"] == 1 and summary["comparisons"]["adaptive:hedge"]["promotions"] == []
    # the loop's book weighed variants, and the report shows the pool over time
    assert any(a not in config.agents and w > 0 for d in summary["decisions"][LOOP_KEY] for a, w in d["weights"].items())
    page = render_report(summary, run.bars, series)
    assert f"Pool over time, {LOOP_KEY}" in page and promotions[0]["variant"] in page


def test_a_variants_whole_array_votes_are_its_per_bar_votes_in_the_signal_table(market: MarketFrame) -> None:
    from tradepipe.research.signals import build_signal_table
    from tradepipe.research.variants import make_variant

    bars = market.bars[SYMBOLS[0]]
    agents = [
        make_variant("tsmom", {"lookback": 120, "vol_window": 48, "scale": 1.0}).agent(),
        make_variant("donchian_breakout", {"period": 30, "lean": 0.4}).agent(),
        make_variant("bollinger_reversion", {"period": 300, "width": 2.0}).agent(),  # longer than the window: abstains
    ]
    rows = np.arange(0, len(bars), 7)
    fast = build_signal_table(bars, agents, 250, "fast", rows)
    slow = build_signal_table(bars, agents, 250, "per_bar", rows)
    assert np.array_equal(fast.abstained[rows], slow.abstained[rows])
    assert np.allclose(fast.value[rows], slow.value[rows], rtol=0, atol=1e-9)
    assert np.allclose(fast.confidence[rows], slow.confidence[rows], rtol=0, atol=1e-9)
    assert fast.abstained[rows, 2].all() and not fast.abstained[rows[rows > 200], 0].any()


def test_walkforward_with_loop_writes_the_loop_entry_summary_and_report(tmp_path: Path) -> None:
    import json

    import pandas as pd

    from tradepipe.research.run import WalkForwardRequest, run_request

    data = tmp_path / "candles"
    data.mkdir()
    for k, symbol in enumerate(SYMBOLS):
        columns = slow_trend_bars(DAYS * 24, seed=5, drift=0.001, symbol_offset=k)
        frame = pd.DataFrame({"timestamp": columns["timestamp"], **{c: columns[c] for c in ("open", "high", "low", "close", "volume")}})
        frame.insert(1, "datetime", pd.to_datetime(frame["timestamp"], unit="ms", utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
        frame.to_csv(data / f"{symbol.replace('/', '_')}-1h.csv", index=False)
    settings = load_settings(home=tmp_path / "home", symbols=",".join(SYMBOLS))
    request = WalkForwardRequest(data_dir=data, name="loop", symbols=SYMBOLS, methods=("hedge", "loop"), include_agents=False, window_days=14, resamples=200, loop=LOOP)
    outcome = run_request(settings, request)
    on_disk = json.loads(outcome.summary_path.read_text())
    assert set(on_disk["strategies"]) == {"adaptive:hedge", LOOP_KEY, "equal_weight", "buy_and_hold"}
    assert on_disk["config"]["methods"] == ["hedge", "loop"]
    loop = on_disk["comparisons"][LOOP_KEY]
    assert loop["trials"] > 0 and any(p["action"] == "promote" for p in loop["promotions"]) and loop["pool"]
    assert on_disk["loop"][LOOP_KEY]["generations"] >= 3
    assert f"Pool over time, {LOOP_KEY}" in outcome.report_path.read_text()
    assert not (outcome.directory / "checkpoint_loop.pkl").exists()
