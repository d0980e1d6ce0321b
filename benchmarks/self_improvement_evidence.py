"""Evidence for the self-improvement loop: the planted slow-trend market on several seeds, and the real candles.

Run: ``.venv/bin/python benchmarks/self_improvement_evidence.py [--seeds 0 1 2 3 4] [--real] [--stream-level] [--out FILE]``.

Planted: two symbols of ``research.regimes.slow_trend_bars`` (1 year of 1h bars; the drift keeps its
sign for ten days on average). By default the whole loop runs as ``tradepipe walkforward`` runs it
(``research.pool_book``): discovery every 14 days on the bars before each day (``LoopConfig()``
defaults), the pool weighted daily by hedge and traded through the engine with the live book's rules
and fees (shorting allowed: the synthetic market is not spot), against ``equal_weight`` (the day-1
system: the base agents at equal weights, the same engine). Per seed: the first promotion of a variant
whose horizon is within [2, 20] days of hourly bars (48 to 480 bars, the planted trend lasts 240 on
average), the Sharpe difference to the day-1 system with its 95% block-bootstrap interval (one-week
blocks) over the whole walk-forward and over the bars from the first generation on, net and gross,
buy-and-hold, the loop book's deflated Sharpe against every variant tried, the generations' median PBO
and the trials. ``--stream-level``: the earlier stream-level simulation (``research.adaptive``) instead.
``--real``: the same on 4 years of BTC/USDT + ETH/USDT 1h (../shared/data, long-only spot). Prints one
block per run and writes every figure as JSON to ``--out``. CPU seconds per run are printed (the machine
is shared).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import tempfile
from dataclasses import replace

import numpy as np

from tradepipe.config.settings import load_settings
from tradepipe.core.agents import get_agents
from tradepipe.config.rules import book_rules
from tradepipe.core.performance import BookRules
from tradepipe.core.metrics import summarize
from tradepipe.core.timeframes import DAY_MS, bars_per_day, periods_per_year
from tradepipe.research.adaptive import LoopConfig, loop_summary, run_adaptive_loop
from tradepipe.research.data import MarketFrame, load_market, market_from_arrays
from tradepipe.research.engine import EngineConfig, StrategySpec, config_from_settings, run_walk_forward
from tradepipe.research.pool_book import LOOP_KEY, LOOP_METHOD, loop_record, merge_runs, run_pool_book
from tradepipe.research.regimes import slow_trend_bars
from tradepipe.research.stats import book_returns, sharpe_difference_ci
from tradepipe.research.summary import build_summary, strategy_series

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ohlcv" / "binance_cdd_2017_2021"
PLANTED_DRIFT = 0.001
NEAR_HORIZON = (48, 480)


def _run(name: str, market: MarketFrame, rules: BookRules, loop: LoopConfig) -> dict[str, Any]:
    cpu = time.process_time()
    run = run_adaptive_loop(market, get_agents(), rules, loop)
    summary = loop_summary(run, periods_per_year(market.timeframe))
    start = int(run.bar_ms[run.first_row]) if run.first_row < run.bar_ms.size else None
    near = [p for p in summary["promotions"] if p["action"] == "promote" and p["horizon_bars"] and NEAR_HORIZON[0] <= p["horizon_bars"] <= NEAR_HORIZON[1]]
    summary["first_near_horizon_promotion_day"] = None if not near or start is None else (near[0]["day_ms"] - start) // DAY_MS
    summary["cpu_seconds"] = round(time.process_time() - cpu, 1)
    ci = summary["ci95"]
    print(f"{name}: OOS {summary['oos_bars']} bars, Sharpe loop {summary['adaptive']['sharpe']:+.2f} (gross {summary['adaptive']['gross_sharpe']:+.2f}) "
          f"vs day-1 {summary['equal_weight']['sharpe']:+.2f} (gross {summary['equal_weight']['gross_sharpe']:+.2f}), buy-and-hold {summary['buy_and_hold']['sharpe']:+.2f}; "
          f"difference {summary['sharpe_diff_vs_equal']:+.2f} CI95 {'-' if ci is None else f'[{ci[0]:+.2f}, {ci[1]:+.2f}]'}; "
          f"trials {summary['trials']}, best promoted DSR {summary['deflated_sharpe']}, PBO {summary['pbo']}; "
          f"first near-horizon promotion after {summary['first_near_horizon_promotion_day']} days; {summary['cpu_seconds']} CPU s")
    for p in summary["promotions"][:6]:
        print(f"    {p['action']} {p['variant']} ({p['reason']})")
    return summary


def _engine_run(name: str, market: MarketFrame, config: EngineConfig, loop: LoopConfig) -> dict[str, Any]:
    """The whole loop through the engine (as ``tradepipe walkforward --methods loop``) and its figures."""
    cpu = time.process_time()
    main_run = run_walk_forward(market, config, [StrategySpec("equal_weight", {a: 1.0 / len(config.agents) for a in config.agents})])
    pool = run_pool_book(market, config, loop, main_run.bars)
    run = merge_runs(main_run, pool)
    series = strategy_series(run)
    record = loop_record(pool)
    summary = build_summary(run, name=name.replace(" ", "_"), data_dir="-", methods=[LOOP_METHOD], series=series, loops={LOOP_KEY: record})
    ppy, cash = config.periods_per_year, float(config.starting_cash)
    first_generation = pool.discovery.generations[0].day_ms if pool.discovery.generations else None
    oos = run.bars >= (first_generation if first_generation is not None else run.bars[-1] + 1)

    def sharpe(key: str, column: str = "equity") -> float | None:
        r = book_returns(series[key][column], cash)[oos]
        return summarize(r, ppy)["sharpe"] if r.size > 2 else None

    a, b = book_returns(series[LOOP_KEY]["equity"], cash)[oos], book_returns(series["equal_weight"]["equity"], cash)[oos]
    block = int(round(7 * bars_per_day(config.timeframe)))
    after_first = sharpe_difference_ci(a, b, block, ppy) if a.size > 2 * block else {"sharpe_diff_vs_equal": None, "ci95": None}
    comparison = summary["comparisons"][LOOP_KEY]
    near = [p for p in comparison["promotions"] if p["action"] == "promote" and p["horizon_bars"] and NEAR_HORIZON[0] <= p["horizon_bars"] <= NEAR_HORIZON[1]]
    days_to_near = None
    if near and first_generation is not None:
        days_to_near = (int(np.datetime64(near[0]["day"], "ms").astype(np.int64)) - first_generation) // DAY_MS
    result = {
        "bars": int(run.bars.size), "oos_bars": int(oos.sum()),
        "first_generation": summary["comparisons"][LOOP_KEY]["pool"][0]["day"] if comparison["pool"] else None,
        "whole_run": {k: summary["strategies"][k] for k in (LOOP_KEY, "equal_weight", "buy_and_hold")},
        "sharpe_diff_vs_equal": comparison["sharpe_diff_vs_equal"], "ci95": comparison["ci95"],
        "from_first_generation": {
            "loop": {"sharpe": sharpe(LOOP_KEY), "gross_sharpe": sharpe(LOOP_KEY, "gross_equity")},
            "equal_weight": {"sharpe": sharpe("equal_weight"), "gross_sharpe": sharpe("equal_weight", "gross_equity")},
            "buy_and_hold": {"sharpe": sharpe("buy_and_hold")},
            "sharpe_diff_vs_equal": after_first.get("sharpe_diff_vs_equal"), "ci95": after_first.get("ci95"),
        },
        "trials": comparison["trials"], "deflated_sharpe": comparison["deflated_sharpe"], "pbo": comparison["pbo"],
        "best_promoted_dsr": record["best_promoted_dsr"], "generations": record["generations"],
        "promotions": comparison["promotions"], "pool": comparison["pool"],
        "first_near_horizon_promotion_day": days_to_near,
        "cpu_seconds": round(time.process_time() - cpu, 1),
    }
    w, f = result["whole_run"], result["from_first_generation"]
    ci, fci = result["ci95"], f["ci95"]
    print(f"{name}: {result['bars']} bars; whole run Sharpe loop {w[LOOP_KEY]['sharpe']:+.2f} (gross {w[LOOP_KEY]['gross_sharpe']:+.2f}) "
          f"vs day-1 {w['equal_weight']['sharpe']:+.2f} (gross {w['equal_weight']['gross_sharpe']:+.2f}), buy-and-hold {w['buy_and_hold']['sharpe']:+.2f}; "
          f"difference {result['sharpe_diff_vs_equal']:+.2f} CI95 {'-' if ci is None else f'[{ci[0]:+.2f}, {ci[1]:+.2f}]'}")
    if f["sharpe_diff_vs_equal"] is not None:
        print(f"    from the first generation ({result['oos_bars']} bars): loop {f['loop']['sharpe']:+.2f} (gross {f['loop']['gross_sharpe']:+.2f}) vs day-1 "
              f"{f['equal_weight']['sharpe']:+.2f} (gross {f['equal_weight']['gross_sharpe']:+.2f}); difference {f['sharpe_diff_vs_equal']:+.2f} "
              f"CI95 {'-' if fci is None else f'[{fci[0]:+.2f}, {fci[1]:+.2f}]'}")
    print(f"    trials {result['trials']}, loop book DSR {result['deflated_sharpe']}, generations' median PBO {result['pbo']}, best promoted DSR "
          f"{result['best_promoted_dsr']}; {len([p for p in result['promotions'] if p['action'] == 'promote'])} promotions; first near-horizon promotion "
          f"after {days_to_near} days; {result['cpu_seconds']} CPU s")
    for p in result["promotions"][:6]:
        print(f"    {p['day']} {p['action']} {p['variant']} ({p['reason']})")
    return result


def _engine_config(symbols: str, data: Path | None, allow_short: bool) -> EngineConfig:
    settings = load_settings(market_source="replay", replay_dir=data or Path(tempfile.gettempdir()), timeframe="1h", symbols=symbols)
    config = config_from_settings(settings)
    return replace(config, limits=replace(config.limits, allow_short=allow_short))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2, 3, 4])
    parser.add_argument("--real", action="store_true")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=Path("self_improvement_evidence.json"))
    parser.add_argument("--stream-level", action="store_true", help="the stream-level simulation (research.adaptive) instead of the engine")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    loop = LoopConfig()
    for seed in args.seeds:
        hours = 365 * 24
        market = market_from_arrays({
            "AAA/USDT": slow_trend_bars(hours, seed=seed, drift=PLANTED_DRIFT),
            "BBB/USDT": slow_trend_bars(hours, seed=seed, drift=PLANTED_DRIFT, symbol_offset=1),
        }, "1h")
        if args.stream_level:
            results[f"planted_seed_{seed}"] = _run(f"planted seed {seed}", market, BookRules(allow_short=True), LoopConfig(seed=seed))
        else:
            results[f"planted_seed_{seed}"] = _engine_run(f"planted seed {seed}", market, _engine_config("AAA/USDT,BBB/USDT", None, True), LoopConfig(seed=seed))
        args.out.write_text(json.dumps(results, indent=2, default=str))
    if args.real:
        settings = load_settings(timeframe="1h", symbols="BTC/USDT,ETH/USDT")
        market = load_market(args.data, ["BTC/USDT", "ETH/USDT"], "1h")
        if args.stream_level:
            results["binance_cdd_2017_2021"] = _run("binance_cdd_2017_2021 BTC+ETH 1h", market, book_rules(settings), loop)
        else:
            results["binance_cdd_2017_2021"] = _engine_run("binance_cdd_2017_2021 BTC+ETH 1h", market, _engine_config("BTC/USDT,ETH/USDT", args.data, False), loop)
    args.out.write_text(json.dumps(results, indent=2, default=str))
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
