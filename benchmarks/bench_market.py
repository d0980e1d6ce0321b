"""Time SyntheticMarket.closed_bars for 10 symbols x 500 bars (best of 5).

Run: ``.venv/bin/python benchmarks/bench_market.py``. Three cases, because the instance caches
random blocks: ``cold`` is a fresh instance (a restart, or a backfill jumping far in time),
``warm`` repeats the same window, ``next bar`` moves the window by one bar (a live cycle).
"""

from __future__ import annotations

import time
from typing import Callable

from tradepipe.adapters.market import DEFAULT_SYMBOLS, SyntheticMarket

SYMBOLS = (*DEFAULT_SYMBOLS, "ADA/USDT", "DOGE/USDT", "DOT/USDT", "LTC/USDT", "AVAX/USDT")
BARS = 500
HOUR_MS = 3_600_000
END_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def one_cycle(market: SyntheticMarket, end_ms: int) -> None:
    for symbol in SYMBOLS:
        market.closed_bars(symbol, "1h", end_ms, BARS)


def best_of(runs: int, prepare: Callable[[int], tuple[SyntheticMarket, int]]) -> float:
    """Fastest of ``runs`` timings in ms; ``prepare(run)`` (untimed) gives the market and end time."""
    timings = []
    for run in range(runs):
        market, end_ms = prepare(run)
        start = time.perf_counter()
        one_cycle(market, end_ms)
        timings.append((time.perf_counter() - start) * 1e3)
    return min(timings)


def main() -> None:
    one_cycle(SyntheticMarket(), END_MS)  # imports and first-call costs out of the way
    warm = SyntheticMarket()
    one_cycle(warm, END_MS)
    cases = {
        "cold (fresh instance)": lambda run: (SyntheticMarket(seed=100 + run), END_MS),
        "warm (same window)": lambda run: (warm, END_MS),
        "next bar (live cycle)": lambda run: (warm, END_MS + (run + 1) * HOUR_MS),
    }
    print(f"SyntheticMarket.closed_bars, {len(SYMBOLS)} symbols x {BARS} 1h bars, best of 5:")
    for label, prepare in cases.items():
        print(f"  {label:<24} {best_of(5, prepare):7.2f} ms")


if __name__ == "__main__":
    main()
