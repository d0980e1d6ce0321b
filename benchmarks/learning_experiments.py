"""Walk-forward evidence for the learning defaults: weighting methods and turnover controls.

Replays the loop with ``tradepipe.research.learning.learn`` (live agents, live decision rules, traded
streams, next-day weights) on the candles in a data folder and prints, per strategy, net and gross
Sharpe, total return, turnover proxy (fees), weight changes, and the Sharpe difference vs equal
weight with its weekly-block bootstrap 95% interval.

    .venv/bin/python benchmarks/learning_experiments.py DATA_DIR --symbols BTC/USDT,ETH/USDT --timeframe 1h
        [--window 30] [--methods max_sharpe,hedge] [--eta 0.5] [--hysteresis 0] [--min-hold 0] [--json OUT]

Agent votes are computed once per data set with the per-bar agents and cached in /tmp.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd

from tradepipe.core.agents import get_agents
from tradepipe.research.learning import LearningConfig, VoteTable, compute_votes, learn
from tradepipe.core.metrics import sharpe_difference_ci, summarize
from tradepipe.core.performance import BookRules
from tradepipe.core.timeframes import bars_per_day, periods_per_year
from tradepipe.config.settings import DEFAULT_AGENTS


def fmt(value: float | None, places: int = 2) -> str:
    return "   -   " if value is None or not math.isfinite(value) else f"{value:.{places}f}"


def load_votes(data: Path, symbols: list[str], timeframe: str, history_bars: int) -> VoteTable:
    key = hashlib.sha1(f"{data.resolve()}|{symbols}|{timeframe}|{history_bars}".encode()).hexdigest()[:12]
    cache = Path(f"/tmp/wflearn_votes_{key}.npz")
    if cache.exists():
        z = np.load(cache, allow_pickle=False)
        return VoteTable(z["bar_ms"], tuple(z["agents"].tolist()), tuple(z["symbols"].tolist()), z["vote"], z["voted"], z["close"], z["open"])
    bars = {}
    for symbol in symbols:
        frame = pd.read_csv(data / f"{symbol.replace('/', '_')}-{timeframe}.csv")
        bars[symbol] = {c: frame[c].to_numpy() for c in ("timestamp", "open", "high", "low", "close", "volume")}
    started = time.perf_counter()
    votes = compute_votes(bars, get_agents(list(DEFAULT_AGENTS)), history_bars, timeframe)
    print(f"votes for {len(votes.bar_ms)} bars x {len(symbols)} symbols in {time.perf_counter() - started:.0f} s")
    np.savez(cache, bar_ms=votes.bar_ms, agents=np.array(votes.agents), symbols=np.array(votes.symbols), vote=votes.vote, voted=votes.voted, close=votes.close, open=votes.open)
    return votes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data", type=Path)
    parser.add_argument("--symbols", default="BTC/USDT,ETH/USDT")
    parser.add_argument("--timeframe", default="1h")
    parser.add_argument("--window", type=int, default=30)
    parser.add_argument("--methods", default="max_sharpe,hedge")
    parser.add_argument("--eta", type=float, default=0.25)
    parser.add_argument("--hysteresis", type=float, default=0.0)
    parser.add_argument("--min-hold", type=int, default=0)
    parser.add_argument("--band", type=float, default=0.05)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    symbols = args.symbols.split(",")
    ppy = periods_per_year(args.timeframe)
    votes = load_votes(args.data, symbols, args.timeframe, 200)
    rules = BookRules(entry_hysteresis=args.hysteresis, min_hold_bars=args.min_hold, rebalance_band=args.band)
    config = LearningConfig(window_days=args.window, learning_rate=args.eta, periods_per_year=ppy)
    agents = list(votes.agents)
    fixed = {"equal_weight": {a: 1 / len(agents) for a in agents}, **{f"agent:{a}": {a: 1.0} for a in agents}}
    started = time.perf_counter()
    runs = learn(votes, rules, config, args.methods.split(","), fixed)
    seconds = time.perf_counter() - started
    block = int(7 * bars_per_day(args.timeframe))
    base = runs["equal_weight"].net
    table = {}
    for name, run in runs.items():
        net, gross = summarize(run.net, ppy), summarize(run.gross, ppy)
        diff, ci = sharpe_difference_ci(run.net, base, ppy, block) if name.startswith("adaptive:") else (None, None)
        cost = float(np.sum(run.gross - run.net))
        table[name] = {
            "sharpe": net["sharpe"], "gross_sharpe": gross["sharpe"], "total_return": net["total_return"],
            "max_drawdown": net["max_drawdown"], "costs": cost, "weight_changes": run.weight_changes,
            "sharpe_diff_vs_equal": diff, "ci95": ci,
            "mean_weights": {a: round(float(v), 3) for a, v in run.weights.mean().items()} if not run.weights.empty else None,
        }
    days = len(next(iter(runs.values())).net) / bars_per_day(args.timeframe)
    print(f"{args.data.name} {args.symbols} {args.timeframe}: {days:.0f} out-of-sample days, window {args.window} d, eta {args.eta}, "
          f"hysteresis {args.hysteresis}, min hold {args.min_hold}, band {args.band} ({seconds:.0f} s)")
    print(f"{'strategy':26} {'net SR':>7} {'gross SR':>8} {'return':>8} {'maxDD':>7} {'costs':>7} {'changes':>7}  diff vs EW [95% CI]")
    for name, row in table.items():
        ci = "" if row["ci95"] is None else f"{row['sharpe_diff_vs_equal']:+.2f} [{row['ci95'][0]:+.2f}, {row['ci95'][1]:+.2f}]"
        print(f"{name:26} {fmt(row['sharpe']):>7} {fmt(row['gross_sharpe']):>8} {fmt(row['total_return'], 3):>8} {fmt(row['max_drawdown'], 3):>7} "
              f"{fmt(row['costs'], 3):>7} {row['weight_changes']:>7}  {ci}")
        if row["mean_weights"]:
            print(f"{'':26} mean weights {row['mean_weights']}")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "strategies": table}, indent=1))


if __name__ == "__main__":
    main()
