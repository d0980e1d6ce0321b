"""Evidence for the self-improvement loop: the planted slow-trend market on several seeds, and the real candles.

Run: ``.venv/bin/python benchmarks/self_improvement_evidence.py [--seeds 0 1 2 3 4] [--real] [--out FILE]``.

Planted: two symbols of ``research.regimes.slow_trend_bars`` (1 year of 1h bars; the drift keeps its
sign for ten days on average), the loop (``research.adaptive``) with its default rules, against the day-1
system (the base agents at equal weights). Per seed: the first promotion of a variant whose horizon is
within [2, 20] days of hourly bars (48 to 480 bars, the planted trend lasts 240 on average), the
out-of-sample Sharpe difference to the day-1 system with its 95% block-bootstrap interval (one-week
blocks), net and gross, buy-and-hold, the best promoted DSR, the last generation's PBO and the trials.
``--real``: the same loop on 4 years of BTC/USDT + ETH/USDT 1h (../shared/data). Prints one block per
run and writes every figure as JSON to ``--out``. CPU seconds per run are printed (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from tradepipe.config.settings import load_settings
from tradepipe.core.agents import get_agents
from tradepipe.core.performance import BookRules, book_rules
from tradepipe.core.timeframes import DAY_MS, periods_per_year
from tradepipe.research.adaptive import LoopConfig, loop_summary, run_adaptive_loop
from tradepipe.research.data import MarketFrame, load_market, market_from_arrays
from tradepipe.research.regimes import slow_trend_bars

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2, 3, 4])
    parser.add_argument("--real", action="store_true")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=Path("self_improvement_evidence.json"))
    args = parser.parse_args()
    results: dict[str, Any] = {}
    loop = LoopConfig()
    for seed in args.seeds:
        hours = 365 * 24
        market = market_from_arrays({
            "AAA/USDT": slow_trend_bars(hours, seed=seed, drift=PLANTED_DRIFT),
            "BBB/USDT": slow_trend_bars(hours, seed=seed, drift=PLANTED_DRIFT, symbol_offset=1),
        }, "1h")
        results[f"planted_seed_{seed}"] = _run(f"planted seed {seed}", market, BookRules(allow_short=True), LoopConfig(seed=seed))
    if args.real:
        settings = load_settings(timeframe="1h", symbols="BTC/USDT,ETH/USDT")
        market = load_market(args.data, ["BTC/USDT", "ETH/USDT"], "1h")
        results["binance_cdd_2017_2021"] = _run("binance_cdd_2017_2021 BTC+ETH 1h", market, book_rules(settings), loop)
    args.out.write_text(json.dumps(results, indent=2, default=str))
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
