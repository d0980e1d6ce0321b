"""SYNTHETIC prices with a planted regime switch, for proving the learning mechanism.

Pure and seeded. Until ``switch_bar`` the market trends: the log return has a drift whose sign
flips at random intervals (``trend_bars`` on average), so trend followers earn and a
mean-reversion rule that fades moves loses. From ``switch_bar`` on it mean-reverts: the log price
is an AR(1) deviation around the level reached at the switch (coefficient ``reversion``), so fading
moves earns and following them loses. Real markets need not reward the loop; this market does, by
construction, so a loop that does not move weight here is broken.
"""

from __future__ import annotations

import numpy as np


def planted_regime_bars(
    n_bars: int,
    switch_bar: int,
    *,
    seed: int = 0,
    start_ms: int = 1_767_225_600_000,  # 2026-01-01 00:00 UTC
    timeframe_ms: int = 3_600_000,
    level: float = 100.0,
    sigma: float = 0.004,
    drift: float = 0.0025,
    trend_bars: int = 60,
    reversion: float = 0.6,
    symbol_offset: int = 0,
) -> dict[str, np.ndarray]:
    """OHLCV arrays (``timestamp``, ``open``, ``high``, ``low``, ``close``, ``volume``) of one symbol.

    ``open`` is the previous close; wicks add half a ``sigma`` beyond the body. ``symbol_offset``
    gives an independent path for another symbol from the same seed.
    """
    if not 0 < switch_bar < n_bars:
        raise ValueError(f"switch_bar must be inside (0, {n_bars}), got {switch_bar}")
    rng = np.random.default_rng([seed, symbol_offset])
    noise = rng.normal(0.0, sigma, n_bars)
    flips = rng.random(switch_bar) < 1.0 / trend_bars
    sign = np.where(np.cumsum(flips) % 2 == 0, 1.0, -1.0) * (1.0 if rng.random() < 0.5 else -1.0)
    log_close = np.empty(n_bars)
    log_close[:switch_bar] = np.log(level) + np.cumsum(drift * sign + noise[:switch_bar])
    anchor, deviation = log_close[switch_bar - 1], 0.0
    for i in range(switch_bar, n_bars):
        deviation = reversion * deviation + 2.5 * noise[i]
        log_close[i] = anchor + deviation
    close = np.exp(log_close)
    open_ = np.concatenate([[close[0]], close[:-1]])
    wick = 0.5 * sigma * np.maximum(open_, close)
    return {
        "timestamp": start_ms + timeframe_ms * np.arange(n_bars, dtype=np.int64),
        "open": open_,
        "high": np.maximum(open_, close) + wick,
        "low": np.minimum(open_, close) - wick,
        "close": close,
        "volume": np.full(n_bars, 1000.0),
    }


def slow_trend_bars(
    n_bars: int,
    *,
    seed: int = 0,
    start_ms: int = 1_767_225_600_000,  # 2026-01-01 00:00 UTC
    timeframe_ms: int = 3_600_000,
    level: float = 100.0,
    sigma: float = 0.006,
    drift: float = 0.0004,
    trend_bars: int = 240,
    symbol_offset: int = 0,
) -> dict[str, np.ndarray]:
    """SYNTHETIC OHLCV of one symbol whose only edge is a slow trend: the log return's drift keeps its sign
    for ``trend_bars`` on average (ten days of 1h bars) and flips at random; the noise is i.i.d. normal.
    Over the hours the base agents read (14 to 50 bars) the drift is a small fraction of the noise; over
    days it is not, so only a variant reading days can earn here. Same OHLCV form as
    :func:`planted_regime_bars`."""
    rng = np.random.default_rng([seed, symbol_offset, 1])
    noise = rng.normal(0.0, sigma, n_bars)
    flips = rng.random(n_bars) < 1.0 / trend_bars
    sign = np.where(np.cumsum(flips) % 2 == 0, 1.0, -1.0) * (1.0 if rng.random() < 0.5 else -1.0)
    close = level * np.exp(np.cumsum(drift * sign + noise))
    open_ = np.concatenate([[level], close[:-1]])
    wick = 0.5 * sigma * np.maximum(open_, close)
    return {
        "timestamp": start_ms + timeframe_ms * np.arange(n_bars, dtype=np.int64),
        "open": open_,
        "high": np.maximum(open_, close) + wick,
        "low": np.minimum(open_, close) - wick,
        "close": close,
        "volume": np.full(n_bars, 1000.0),
    }
