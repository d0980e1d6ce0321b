"""Benchmark: the five default agents + ensemble for 10 symbols x 500 bars (one trading cycle).

Plain script, no I/O besides printing: ``.venv/bin/python benchmarks/bench_agents.py``.
Synthetic geometric random walks (seeded) and a handful of fake headlines; best of 5 runs.
Target: well under 50 ms per cycle. The headline-score cache is cleared before every run so
VADER scoring is timed too (in production the cache makes later cycles cheaper).
"""

from __future__ import annotations

import time

import numpy as np

from tradepipe.core.agents import _vader, get_agents, headline_sentiment, run_agents, validate_history
from tradepipe.core.ensemble import combine, target_fraction
from tradepipe.core.types import AgentContext, BarHistory, Headline

SYMBOLS = ("BTC", "ETH", "SOL", "XRP", "BNB", "ADA", "DOGE", "LTC", "DOT", "AVAX")
BARS = 500
RUNS = 5
HOUR = 3_600_000
NOW = 1_700_000_000_000 - 1_700_000_000_000 % HOUR
WEIGHTS = {"momentum": 0.25, "trend": 0.25, "mean_reversion": 0.2, "breakout": 0.15, "sentiment": 0.15}
TITLES = (
    "Bitcoin soars to record high as ETF inflows surge",
    "Ethereum slumps after network outage",
    "Crypto exchange hacked, millions stolen",
    "Solana rallies on new partnership",
    "Regulators weigh new rules for crypto markets",
    "XRP plunges as lawsuit drags on",
    "Dogecoin jumps after celebrity tweet",
    "Crypto market steady ahead of Fed decision",
)


def synthetic_history(symbol: str, rng: np.random.Generator) -> BarHistory:
    """Hourly OHLCV random walk ending at the last closed bar before NOW."""
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, BARS)))
    open_ = np.concatenate([[close[0]], close[:-1]])
    high = np.maximum(open_, close) * (1.0 + rng.uniform(0.0, 0.004, BARS))
    low = np.minimum(open_, close) * (1.0 - rng.uniform(0.0, 0.004, BARS))
    timestamps = NOW - HOUR * np.arange(BARS, 0, -1, dtype=np.int64)
    return BarHistory(f"{symbol}/USDT", "1h", timestamps, open_, high, low, close, rng.uniform(10, 1000, BARS))


def one_cycle(histories: list[BarHistory], context: AgentContext) -> list[float]:
    """What a trading cycle does per symbol: validate, vote, combine, size."""
    agents = get_agents()
    targets = []
    for history in histories:
        if validate_history(history) is not None:
            continue
        decision = combine(run_agents(agents, history, context), WEIGHTS)
        targets.append(target_fraction(decision.score, 0.2))
    return targets


def main() -> None:
    rng = np.random.default_rng(42)
    histories = [synthetic_history(symbol, rng) for symbol in SYMBOLS]
    headlines = tuple(Headline(title, NOW - (i + 1) * 2 * HOUR) for i, title in enumerate(TITLES))
    context = AgentContext(now_ms=NOW, headlines=headlines)
    _vader()  # built once per process; its ~20 ms lexicon load is not per cycle

    timings = []
    for _ in range(RUNS):
        headline_sentiment.cache_clear()
        start = time.perf_counter()
        targets = one_cycle(histories, context)
        timings.append(time.perf_counter() - start)
    warm = min(_time_warm(histories, context) for _ in range(RUNS))

    print(f"{len(SYMBOLS)} symbols x {BARS} bars, agents {', '.join(a.name for a in get_agents())} + ensemble")
    print(f"best of {RUNS} (headline cache cold): {min(timings) * 1e3:.2f} ms per cycle  (all runs: {', '.join(f'{t * 1e3:.2f}' for t in timings)})")
    print(f"best of {RUNS} (headline cache warm): {warm * 1e3:.2f} ms per cycle")
    print(f"per symbol (cold): {min(timings) / len(SYMBOLS) * 1e3:.3f} ms; target fractions: {[round(t, 3) for t in targets]}")


def _time_warm(histories: list[BarHistory], context: AgentContext) -> float:
    start = time.perf_counter()
    one_cycle(histories, context)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
