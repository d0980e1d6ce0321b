"""Benchmark the walk-forward engine on 4 years of BTC/USDT + ETH/USDT 1h (../shared/data, 2017-08 .. 2021-08).

Run: ``.venv/bin/python benchmarks/bench_walkforward.py [--workers N] [--only-adaptive] [--data DIR]``.

The full loop with its daily decisions: every bar's ``run_cycle`` per strategy, every day's streams,
performance rows and ``decide_weights`` for the default method (TRADEPIPE_OPTIMIZER_METHOD). By default
the whole comparison (the adaptive method, equal weight, each agent alone; buy-and-hold from prices);
``--only-adaptive`` runs the adaptive book alone. Prints bars per second, wall and CPU seconds, the
vote computation's share, and peak memory (max RSS of this process and its forked workers).
Target: under 60 s and 2 GB. Nothing is written (no summary files).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

from tradepipe.config.settings import load_settings
from tradepipe.research.data import load_market
from tradepipe.research.engine import config_from_settings, default_strategies, run_walk_forward

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ohlcv" / "binance_cdd_2017_2021"
TARGET_SECONDS = 60.0
TARGET_MEMORY_MB = 2048.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--only-adaptive", action="store_true")
    args = parser.parse_args()
    if not args.data.is_dir():
        sys.exit(f"no candles at {args.data} (pass --data)")

    settings = load_settings(timeframe="1h", symbols="BTC/USDT,ETH/USDT")
    config = config_from_settings(settings)
    market = load_market(args.data, config.symbols, "1h")
    strategies = default_strategies(config, [settings.optimizer_method])
    if args.only_adaptive:
        strategies = strategies[:1]
    wall, cpu = time.perf_counter(), time.process_time()
    run = run_walk_forward(market, config, strategies, workers=args.workers, progress=lambda p: print(p.line(), file=sys.stderr), progress_every_s=10)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_mb = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, children.ru_maxrss) / 1024
    print(f"walk-forward {', '.join(config.symbols)} 1h, {run.bars.size} bars, {len(run.books)} strategies, method {settings.optimizer_method}, workers {args.workers}")
    print(f"  {run.bars.size / wall:,.0f} bars/s; {wall:.1f} s wall (target < {TARGET_SECONDS:.0f} s), of which votes {run.signal_seconds:.1f} s")
    print(f"  CPU {cpu + children.ru_utime + children.ru_stime:.1f} s (this process {cpu:.1f} s, forked workers {children.ru_utime + children.ru_stime:.1f} s)")
    print(f"  peak memory {peak_mb:,.0f} MB (target < {TARGET_MEMORY_MB:,.0f} MB)")
    for key, book in run.books.items():
        print(f"  {key:24s} equity {book.equity[-1]:12,.2f}  fills {book.fills:6d}  weight changes {sum(d.updated for d in book.decisions)}")


if __name__ == "__main__":
    main()
