"""Timing of the metrics and attribution cores (best of 3). Run: python benchmarks/bench_metrics_attribution.py

Targets: each figure under 1 second.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from tradepipe.core.attribution import attribute_fills
from tradepipe.core.metrics import summarize, summarize_many

TARGET_SECONDS = 1.0
REPEATS = 3


def best_of(repeats: int, run: Callable[[], object]) -> float:
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        timings.append(time.perf_counter() - start)
    return min(timings)


def main() -> None:
    rng = np.random.default_rng(42)
    returns_matrix = rng.normal(0.0001, 0.01, (1_000_000, 10))  # bars x agents
    returns_matrix[rng.random(returns_matrix.shape) < 0.05] = 0.0  # flat bars
    one_series = returns_matrix[:, 0].copy()
    shares = rng.uniform(0.0, 1.0, (1_000_000, 5))
    shares[:, 4] *= -0.5  # one contrarian agent: mixed-sign contributions
    pnl_minor = rng.integers(-(10**12), 10**12, 1_000_000)

    cases = {
        "summarize_many  10 agents x 1,000,000 returns": lambda: summarize_many(returns_matrix, 8760),
        "summarize       1 series  x 1,000,000 returns": lambda: summarize(one_series, 8760),
        "attribute_fills 1,000,000 fills x 5 agents   ": lambda: attribute_fills(pnl_minor, shares),
    }
    print(f"best of {REPEATS}, target < {TARGET_SECONDS:.1f} s each")
    for name, run in cases.items():
        seconds = best_of(REPEATS, run)
        verdict = "ok" if seconds < TARGET_SECONDS else "SLOW"
        print(f"{name}  {seconds * 1000:8.1f} ms  {verdict}")


if __name__ == "__main__":
    main()
