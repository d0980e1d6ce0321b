"""Benchmark evaluating many strategy variants on 4 years of BTC/USDT + ETH/USDT 1h (../shared/data).

Run: ``.venv/bin/python benchmarks/bench_variants.py [--count 200] [--workers 2] [--data DIR]``.

Draws ``--count`` random variants (every family, lookbacks from hours to weeks), computes their
whole-array votes and traded streams (the live book's rules and fees, ``core.performance.simulate_books``)
and their figures (Sharpe, skew, kurtosis, holding periods), the deflated Sharpe of each against all of
them and the PBO of picking the best. Prints wall and CPU seconds and peak memory.
Target: 200 variants in at most 60 s wall on the 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

from tradepipe.config.settings import load_settings
from tradepipe.config.rules import book_rules
from tradepipe.core.timeframes import periods_per_year
from tradepipe.research.data import load_market
from tradepipe.research.evaluation import history_bars_for, stream_figures, variant_streams
from tradepipe.research.selection import deflated_sharpe, pbo_cscv
from tradepipe.research.variants import random_variants

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ohlcv" / "binance_cdd_2017_2021"
TARGET_SECONDS = 60.0


def _evaluate(chunk: list) -> np.ndarray:
    market, rules, history, variants = chunk
    return variant_streams(market, variants, rules, history).returns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if not args.data.is_dir():
        sys.exit(f"no candles at {args.data} (pass --data)")
    wall, cpu = time.perf_counter(), time.process_time()
    settings = load_settings(timeframe="1h", symbols="BTC/USDT,ETH/USDT")
    rules = book_rules(settings)
    market = load_market(args.data, ["BTC/USDT", "ETH/USDT"], "1h")
    variants = random_variants(args.count, seed=1)
    history = history_bars_for(variants)
    chunks = [[market, rules, history, variants[i :: args.workers]] for i in range(args.workers)]
    if args.workers > 1:
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(args.workers) as pool:
            parts = pool.map(_evaluate, chunks)
    else:
        parts = [_evaluate(chunks[0])]
    returns = np.hstack(parts)
    streams_wall = time.perf_counter() - wall
    figures = stream_figures(returns, periods_per_year("1h"))
    variance = float(np.var(figures["sharpe_per_period"], ddof=1))
    dsr = [
        deflated_sharpe(float(figures["sharpe_per_period"][k]), returns.shape[0], float(figures["skew"][k]), float(figures["kurtosis"][k]), returns.shape[1], variance)
        for k in range(returns.shape[1])
    ]
    pbo = pbo_cscv(returns, blocks=16)["pbo"]
    wall = time.perf_counter() - wall
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_total = time.process_time() - cpu + children.ru_utime + children.ru_stime
    peak_mb = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, children.ru_maxrss) / 1024
    bars = sum(len(b) for b in market.bars.values())
    print(f"variants: {returns.shape[1]} over {bars:,} symbol-bars ({market.timeline.size:,} bar times), workers {args.workers}")
    print(f"streams: {streams_wall:.1f} s wall; with figures, DSR and PBO (12,870 splits): {wall:.1f} s wall, {cpu_total:.1f} CPU s")
    print(f"peak memory: {peak_mb:,.0f} MB; load average {os.getloadavg()[0]:.1f}")
    print(f"best Sharpe {np.nanmax(figures['sharpe']):+.2f}, best DSR {max(dsr):.3f}, PBO {pbo:.2f}")
    print(f"target: <= {TARGET_SECONDS:.0f} s wall: {'met' if wall <= TARGET_SECONDS else 'NOT met'}")


if __name__ == "__main__":
    main()
