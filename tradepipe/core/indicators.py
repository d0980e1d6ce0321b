"""Technical indicators on numpy arrays: vectorised, pure, no I/O.

Conventions shared by every function here:

* Inputs are 1-D float arrays, oldest first. Outputs have the **same length** as the input and
  hold ``NaN`` where the indicator is not yet defined (the "warm-up"), so index ``i`` of an
  output always describes bar ``i``. ``warmup`` figures below give the first defined index.
* Exponential averages are **seeded with the simple mean of their first ``n`` values** (the
  TA-Lib / Wilder convention) rather than with the first value (pandas ``adjust=False``):
  the seed then does not depend on one arbitrary bar. Recursions run in C through
  pandas' compiled exponential weighting (``ewm(adjust=False)``), not in a Python loop (scipy.signal
  would cost seconds of import time in every trading-cycle run).
* ``ema`` uses ``alpha = 2 / (n + 1)``; Wilder smoothing (RSI, ATR) uses ``alpha = 1 / n``.
* Bollinger uses the **population** standard deviation (``ddof=0``), as John Bollinger and
  TA-Lib do.
* Donchian channels include the current bar (the textbook definition); a breakout test
  compares the close with the channel of the *previous* bars (see ``agents.breakout``).

Every function accepts anything ``np.asarray`` turns into floats. A NaN inside the data
propagates (the caller validates bars first, see ``agents.validate_history``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike, NDArray
import pandas as pd

FloatArray = NDArray[np.float64]


class Macd(NamedTuple):
    """MACD line (fast EMA - slow EMA), its signal EMA and the histogram (line - signal)."""

    line: FloatArray
    signal: FloatArray
    histogram: FloatArray


class Donchian(NamedTuple):
    """Highest high, lowest low and their midpoint over a rolling window."""

    upper: FloatArray
    lower: FloatArray
    middle: FloatArray


def _as_float(values: ArrayLike) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"expected a 1-D array, got shape {array.shape}")
    return array


def _check_period(n: int) -> None:
    if int(n) != n or n < 1:
        raise ValueError(f"period must be a positive integer, got {n!r}")


def _nan_like(array: FloatArray) -> FloatArray:
    return np.full(array.shape, np.nan)


def _windows(array: FloatArray, n: int) -> FloatArray:
    """Rolling windows ending at indices n-1 .. len-1 (a view: no copy)."""
    return sliding_window_view(array, n)


def sma(values: ArrayLike, n: int) -> FloatArray:
    """Simple moving average over ``n`` bars; warm-up ``n - 1``.

    Means of explicit windows rather than a cumulative-sum difference, so long series do not
    accumulate rounding error.
    """
    _check_period(n)
    x = _as_float(values)
    out = _nan_like(x)
    if len(x) >= n:
        out[n - 1 :] = _windows(x, n).mean(axis=1)
    return out


def smoothed(values: ArrayLike, n: int, alpha: float) -> FloatArray:
    """Exponential smoothing ``y[t] = alpha * x[t] + (1 - alpha) * y[t-1]`` seeded with an SMA.

    Leading NaNs are skipped (so an EMA of an indicator that has its own warm-up works): with
    the first finite value at index ``s``, the seed ``mean(x[s : s + n])`` sits at ``s + n - 1``.
    Values after the start must be finite.
    """
    _check_period(n)
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must be in (0, 1], got {alpha!r}")
    x = _as_float(values)
    out = _nan_like(x)
    finite = np.flatnonzero(np.isfinite(x))
    if finite.size == 0:
        return out
    seed_at = int(finite[0]) + n - 1
    if seed_at >= len(x):
        return out
    seed = x[finite[0] : seed_at + 1].mean()
    out[seed_at] = seed
    if seed_at + 1 < len(x):
        # pandas' recursive EWM (adjust=False) starts from its first value, so the seed goes first.
        seeded = np.concatenate(([seed], x[seed_at + 1 :]))
        out[seed_at:] = pd.Series(seeded).ewm(alpha=alpha, adjust=False).mean().to_numpy()
    return out


def ema(values: ArrayLike, n: int) -> FloatArray:
    """Exponential moving average, ``alpha = 2 / (n + 1)``, SMA-seeded; warm-up ``n - 1``."""
    return smoothed(values, n, 2.0 / (n + 1.0))


def wilder(values: ArrayLike, n: int) -> FloatArray:
    """Wilder's smoothing (an EMA with ``alpha = 1 / n``), SMA-seeded; warm-up ``n - 1``."""
    return smoothed(values, n, 1.0 / n)


def rsi(close: ArrayLike, n: int = 14) -> FloatArray:
    """Wilder's Relative Strength Index in [0, 100]; warm-up ``n`` (needs ``n + 1`` closes).

    Average gain and loss are Wilder-smoothed over ``n`` price changes. A window without
    losses gives 100, without gains 0, and without any change 50 (no direction, not a
    division by zero).
    """
    _check_period(n)
    c = _as_float(close)
    out = _nan_like(c)
    if len(c) < n + 1:
        return out
    change = np.diff(c)
    avg_gain = wilder(np.maximum(change, 0.0), n)
    avg_loss = wilder(np.maximum(-change, 0.0), n)
    total = avg_gain + avg_loss
    with np.errstate(invalid="ignore", divide="ignore"):
        # 100 - 100 / (1 + gain/loss) rewritten as 100 * gain / (gain + loss): no RS overflow.
        value = np.where(total > 0.0, 100.0 * avg_gain / total, 50.0)
    value[np.isnan(total)] = np.nan
    out[1:] = value
    return out


def macd(close: ArrayLike, fast: int = 12, slow: int = 26, signal: int = 9) -> Macd:
    """MACD of EMAs ``fast``/``slow`` and a ``signal`` EMA of the line.

    Warm-up: line ``slow - 1``; signal and histogram ``slow + signal - 2`` (33 for 12/26/9,
    i.e. 34 closes).
    """
    if fast >= slow:
        raise ValueError(f"fast period ({fast}) must be shorter than slow period ({slow})")
    c = _as_float(close)
    line = ema(c, fast) - ema(c, slow)
    signal_line = ema(line, signal)
    return Macd(line=line, signal=signal_line, histogram=line - signal_line)


def rolling_std(values: ArrayLike, n: int, ddof: int = 0) -> FloatArray:
    """Rolling standard deviation over ``n`` bars (population by default); warm-up ``n - 1``."""
    _check_period(n)
    x = _as_float(values)
    out = _nan_like(x)
    if len(x) >= n and n > ddof:
        out[n - 1 :] = _windows(x, n).std(axis=1, ddof=ddof)
    return out


def bollinger_zscore(close: ArrayLike, n: int = 20, flat_tolerance: float = 1e-12) -> FloatArray:
    """How many (population) standard deviations the close is from its ``n``-bar SMA.

    Bollinger bands at ``k`` deviations are exactly ``|z| = k``. Where the window is flat
    (std <= ``flat_tolerance`` x |mean|, i.e. rounding noise) the z-score is 0: the close
    equals the mean, and dividing rounding noise by rounding noise would give garbage.
    Warm-up ``n - 1``.
    """
    c = _as_float(close)
    mean = sma(c, n)
    std = rolling_std(c, n, ddof=0)
    flat = std <= flat_tolerance * np.abs(mean)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(flat, 0.0, (c - mean) / std)
    z[np.isnan(mean)] = np.nan
    return z


def true_range(high: ArrayLike, low: ArrayLike, close: ArrayLike) -> FloatArray:
    """max(high - low, |high - previous close|, |low - previous close|); NaN at index 0.

    The first bar has no previous close, so (as in TA-Lib) it has no true range rather than
    a range that would understate gaps.
    """
    h, l, c = _as_float(high), _as_float(low), _as_float(close)
    out = _nan_like(c)
    previous = c[:-1]
    out[1:] = np.maximum.reduce([h[1:] - l[1:], np.abs(h[1:] - previous), np.abs(l[1:] - previous)])
    return out


def atr(high: ArrayLike, low: ArrayLike, close: ArrayLike, n: int = 14) -> FloatArray:
    """Average True Range: Wilder-smoothed true range; warm-up ``n`` (needs ``n + 1`` bars)."""
    return wilder(true_range(high, low, close), n)


def donchian(high: ArrayLike, low: ArrayLike, n: int = 20) -> Donchian:
    """Highest high and lowest low of the last ``n`` bars including the current one; warm-up ``n - 1``."""
    _check_period(n)
    h, l = _as_float(high), _as_float(low)
    upper, lower = _nan_like(h), _nan_like(l)
    if len(h) >= n:
        upper[n - 1 :] = _windows(h, n).max(axis=1)
        lower[n - 1 :] = _windows(l, n).min(axis=1)
    return Donchian(upper=upper, lower=lower, middle=(upper + lower) / 2.0)
