"""Timing of ``tradepipe.core.optimizer.optimize`` (plain script; prints figures).

    .venv/bin/python benchmarks/bench_optimizer.py

Each case: 10,000 bars of seeded synthetic agent returns (a common market factor, per-agent
noise with different volatilities, small positive and negative drifts), best of 3 runs of the
whole ``optimize`` call (input conversion, covariance, checks, solve). 100 agents use
``min_weight=0`` because 100 x 5% > 100%; ``max_weight`` stays 0.40 everywhere. 20 agents
with the default bounds admit exactly one portfolio (20 x 5% = 100%), so a 20-agent row with
``min_weight=0.02`` times the solver itself. The "binding" risk-parity rows use tight bounds
so the constrained path (root search + box-constrained solves) is timed too.

The matrices are small, so a multi-threaded BLAS on a busy machine mostly spins: compare
``OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_optimizer.py``.
"""

from __future__ import annotations

import os
import time

import numpy as np

from tradepipe.core.optimizer import optimize

BARS = 10_000
REPEATS = 3


def synthetic_returns(n_agents: int, bars: int = BARS, seed: int = 42) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    market = rng.normal(0.0, 0.004, bars)
    beta = rng.uniform(-0.5, 1.0, n_agents)
    vol = rng.uniform(0.002, 0.01, n_agents)
    drift = rng.normal(5e-5, 1e-4, n_agents)
    streams = market[:, None] * beta + rng.normal(0.0, 1.0, (bars, n_agents)) * vol + drift
    return {f"agent_{i:03d}": streams[:, i] for i in range(n_agents)}


def best_seconds(returns: dict[str, np.ndarray], **kwargs: object) -> tuple[float, dict[str, float]]:
    timings, weights = [], {}
    for _ in range(REPEATS):
        start = time.perf_counter()
        weights = optimize(returns, **kwargs)  # type: ignore[arg-type]
        timings.append(time.perf_counter() - start)
    return min(timings), weights


def at_bounds(weights: dict[str, float], kwargs: dict[str, object]) -> int:
    """How many weights sit on a bound (shows whether the constrained path ran)."""
    lo = float(kwargs.get("min_weight", 0.05))  # type: ignore[arg-type]
    hi = float(kwargs.get("max_weight", 0.40))  # type: ignore[arg-type]
    return sum(abs(w - lo) < 1e-12 or abs(w - hi) < 1e-12 for w in weights.values())


CASES: list[tuple[str, int, dict[str, object]]] = [
    ("max_sharpe   5 agents, bounds [0.05, 0.40]", 5, {"method": "max_sharpe"}),
    ("max_sharpe  20 agents, bounds [0.05, 0.40]", 20, {"method": "max_sharpe"}),
    ("max_sharpe  20 agents, bounds [0.02, 0.40]", 20, {"method": "max_sharpe", "min_weight": 0.02}),
    ("max_sharpe 100 agents, bounds [0.00, 0.40]", 100, {"method": "max_sharpe", "min_weight": 0.0}),
    ("risk_parity   5 agents, bounds [0.05, 0.40]", 5, {"method": "risk_parity"}),
    ("risk_parity  20 agents, bounds [0.05, 0.40]", 20, {"method": "risk_parity"}),
    ("risk_parity  20 agents, bounds [0.02, 0.40]", 20, {"method": "risk_parity", "min_weight": 0.02}),
    ("risk_parity 100 agents, bounds [0.00, 0.40]", 100, {"method": "risk_parity", "min_weight": 0.0}),
    ("risk_parity   5 agents, bounds [0.05, 0.22] (binding)", 5,
     {"method": "risk_parity", "max_weight": 0.22}),
    ("risk_parity  20 agents, bounds [0.02, 0.06] (binding)", 20,
     {"method": "risk_parity", "min_weight": 0.02, "max_weight": 0.06}),
    ("risk_parity 100 agents, bounds [0.00, 0.012] (binding)", 100,
     {"method": "risk_parity", "min_weight": 0.0, "max_weight": 0.012}),
    ("equal_weight 100 agents, bounds [0.00, 0.40]", 100, {"method": "equal_weight", "min_weight": 0.0}),
]


def main() -> None:
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"optimize(): {BARS:,} bars, best of {REPEATS}; OPENBLAS_NUM_THREADS={threads}; load {load}")
    for label, n_agents, kwargs in CASES:
        seconds, weights = best_seconds(synthetic_returns(n_agents), **kwargs)
        print(f"  {label:<56} {seconds * 1000:8.1f} ms   {at_bounds(weights, kwargs):3d} weights on a bound")


if __name__ == "__main__":
    main()
