"""Benchmark the trader views' core: ``round_trips`` and ``period_profit`` over many fills.

Run: ``.venv/bin/python benchmarks/bench_trades.py``. Pure core, no database: 100,000 fills over
3 symbols (alternating opens, grows, partial exits, closes and flips), about what a 1-minute synthetic
book records in two months.
"""

from __future__ import annotations

import random
import statistics
import time
from decimal import Decimal

from tradepipe.core.types import Fill
from tradepipe.core.trades import LedgerFill, SnapshotPoint, period_profit, round_trips

FILLS = 100_000
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")
START_MS = 1_764_633_600_000


def fills() -> list[LedgerFill]:
    rng = random.Random(7)
    out = []
    for i in range(FILLS):
        symbol = SYMBOLS[i % 3]
        quantity = Decimal(rng.randint(1, 500)) / 1000
        price = Decimal(rng.randint(9_000, 11_000)) / 100
        fee = quantity * price / 1000
        side = "buy" if rng.random() < 0.5 else "sell"
        out.append(LedgerFill(i, Fill(f"c{i}", symbol, side, quantity, price, fee, quantity * price, START_MS + i * 60_000), {"momentum": 0.5, "trend": 0.2}))
    return out


def main() -> None:
    data = fills()
    snapshots = [SnapshotPoint(START_MS + i * 60_000, Decimal(10_000), Decimal(0)) for i in range(0, FILLS, 10)]
    trip_s, profit_s = [], []
    for _ in range(3):
        start = time.perf_counter()
        trips = round_trips(data)
        trip_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        periods = period_profit(data, trips, snapshots, "daily")
        profit_s.append(time.perf_counter() - start)
    print(f"round_trips, {FILLS:,} fills -> {len(trips):,} trips: median {statistics.median(trip_s) * 1e3:.0f} ms, best {min(trip_s) * 1e3:.0f} ms")
    print(f"period_profit daily ({len(periods)} days): median {statistics.median(profit_s) * 1e3:.0f} ms, best {min(profit_s) * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
