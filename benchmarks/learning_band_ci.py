"""Rebalance band: equal-weight book at each band vs the 0.02 band, same bars, weekly-block bootstrap CI.

    .venv/bin/python benchmarks/learning_band_ci.py DATA_DIR --symbols BTC/USDT,ETH/USDT --timeframe 1h [--skip-days 30]

Uses the vote cache of benchmarks/learning_experiments.py; the first ``--skip-days`` are left out so
the bars are those of the walk-forward's out-of-sample days.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from benchmarks.learning_experiments import load_votes
from tradepipe.research.learning import DAY_MS, ensemble_scores
from tradepipe.core.metrics import sharpe_difference_ci, summarize
from tradepipe.core.performance import BookRules, simulate_books
from tradepipe.core.timeframes import bars_per_day, periods_per_year


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data", type=Path)
    parser.add_argument("--symbols", default="BTC/USDT,ETH/USDT")
    parser.add_argument("--timeframe", default="1h")
    parser.add_argument("--skip-days", type=int, default=30)
    parser.add_argument("--bands", default="0.02,0.03,0.05,0.08")
    args = parser.parse_args()
    votes = load_votes(args.data, args.symbols.split(","), args.timeframe, 200)
    start = int(np.searchsorted(votes.bar_ms, (int(votes.bar_ms[0]) // DAY_MS + 1 + args.skip_days) * DAY_MS))
    weights = np.full((votes.bar_ms.size - start, len(votes.agents)), 1 / len(votes.agents))
    tail = type(votes)(votes.bar_ms[start:], votes.agents, votes.symbols, votes.vote[start:], votes.voted[start:], votes.close[start:], votes.open[start:])
    scores = ensemble_scores(tail, weights)[:, None, :]
    ppy, block = periods_per_year(args.timeframe), int(7 * bars_per_day(args.timeframe))
    runs = {band: simulate_books(scores, tail.close, tail.open, BookRules(rebalance_band=band))[:, 0] for band in map(float, args.bands.split(","))}
    gross = {band: simulate_books(scores, tail.close, tail.open, BookRules(rebalance_band=band), costs=False)[:, 0] for band in runs}
    base = runs[0.02]
    print(f"{args.data.name}: equal weight, {len(base) / bars_per_day(args.timeframe):.0f} days")
    for band, net in runs.items():
        diff, ci = sharpe_difference_ci(net, base, ppy, block)
        ci_text = "" if ci is None or band == 0.02 else f"{diff:+.2f} [{ci[0]:+.2f}, {ci[1]:+.2f}]"
        print(f"band {band:.2f}: net SR {summarize(net, ppy)['sharpe']:.2f}, gross SR {summarize(gross[band], ppy)['sharpe']:.2f}, costs {np.sum(gross[band] - net):.3f}  {ci_text}")


if __name__ == "__main__":
    main()
