"""Indicators against hand-computed small examples and independent pandas / plain-Python versions."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tradepipe.core import indicators as ind

NAN = np.nan


def random_bars(n: int = 300, seed: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Geometric random walk with consistent high >= close, open >= low."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    previous = np.concatenate([[close[0]], close[:-1]])
    high = np.maximum(close, previous) * (1.0 + rng.uniform(0.0, 0.005, n))
    low = np.minimum(close, previous) * (1.0 - rng.uniform(0.0, 0.005, n))
    return high, low, close


# --------------------------------------------------------------------- independent references


def pandas_ema_sma_seeded(values: pd.Series, n: int, alpha: float) -> pd.Series:
    """SMA seed at index n-1, then pandas' recursive (adjust=False) EWM over the rest."""
    seed = values.iloc[:n].mean()
    tail = pd.concat([pd.Series([seed]), values.iloc[n:]], ignore_index=True)
    smoothed = tail.ewm(alpha=alpha, adjust=False).mean().to_numpy()
    return pd.Series(np.concatenate([np.full(n - 1, NAN), smoothed]))


def loop_rsi(close: list[float], n: int) -> list[float]:
    """Wilder's RSI as in his 1978 book: plain Python, one bar at a time."""
    out = [NAN] * len(close)
    gains = [max(b - a, 0.0) for a, b in zip(close, close[1:])]
    losses = [max(a - b, 0.0) for a, b in zip(close, close[1:])]
    avg_gain, avg_loss = sum(gains[:n]) / n, sum(losses[:n]) / n
    for i in range(n, len(close)):
        if i > n:
            avg_gain = (avg_gain * (n - 1) + gains[i - 1]) / n
            avg_loss = (avg_loss * (n - 1) + losses[i - 1]) / n
        out[i] = 50.0 if avg_gain + avg_loss == 0 else 100.0 - 100.0 / (1.0 + avg_gain / avg_loss) if avg_loss else 100.0
    return out


# --------------------------------------------------------------------- hand-computed


def test_sma_hand_computed() -> None:
    np.testing.assert_allclose(ind.sma([1, 2, 3, 4, 5], 3), [NAN, NAN, 2, 3, 4])


def test_ema_hand_computed() -> None:
    # alpha = 2/(3+1) = 0.5; seed mean(2,4,6) = 4; then 0.5*8 + 0.5*4 = 6; 0.5*12 + 0.5*6 = 9.
    np.testing.assert_allclose(ind.ema([2, 4, 6, 8, 12], 3), [NAN, NAN, 4, 6, 9])


def test_wilder_hand_computed() -> None:
    # alpha = 1/2; seed mean(1, 3) = 2; then (5 + 2) / 2 = 3.5.
    np.testing.assert_allclose(ind.wilder([1, 3, 5], 2), [NAN, 2, 3.5])


def test_ema_skips_leading_nans() -> None:
    np.testing.assert_allclose(ind.ema([NAN, NAN, 2, 4, 6, 8], 3), [NAN, NAN, NAN, NAN, 4, 6])


def test_rsi_hand_computed() -> None:
    # changes +1 +1 -1 +2. Seed (n=2): gain 1, loss 0 -> 100. Then gain (1+0)/2 = .5, loss (0+1)/2 = .5
    # -> 50. Then gain (.5+2)/2 = 1.25, loss .5/2 = .25, RS = 5 -> 100 - 100/6.
    np.testing.assert_allclose(ind.rsi([1, 2, 3, 2, 4], 2), [NAN, NAN, 100, 50, 100 - 100 / 6])


def test_rsi_without_any_change_is_50_not_nan() -> None:
    np.testing.assert_allclose(ind.rsi(np.full(20, 7.0), 14)[14:], 50.0)


def test_rsi_all_losses_is_zero() -> None:
    assert ind.rsi(np.arange(20.0, 0.0, -1.0), 14)[-1] == 0.0


def test_bollinger_zscore_hand_computed() -> None:
    # window (1,2,3): mean 2, population std sqrt(2/3); window (3,4,10): mean 17/3,
    # squared deviations (8/3)^2 + (5/3)^2 + (13/3)^2 = 258/9, variance 258/27.
    expected_2 = 1.0 / math.sqrt(2.0 / 3.0)
    expected_4 = (10 - 17 / 3) / math.sqrt(258 / 27)
    z = ind.bollinger_zscore([1, 2, 3, 4, 10], 3)
    np.testing.assert_allclose(z, [NAN, NAN, expected_2, expected_2, expected_4])


def test_bollinger_zscore_flat_window_is_zero() -> None:
    # 0.1 is not exactly representable: a naive (c - mean) / std divides rounding noise.
    assert np.all(ind.bollinger_zscore(np.full(25, 0.1), 20)[19:] == 0.0)


def test_true_range_and_atr_hand_computed() -> None:
    high, low, close = [10, 11, 12, 11], [8, 9, 10, 7], [9, 10, 11.5, 8]
    # TR1 = max(2, |11-9|, |9-9|) = 2; TR2 = max(2, |12-10|, |10-10|) = 2;
    # TR3 = max(4, |11-11.5|, |7-11.5|) = 4.5. ATR(2): seed (2+2)/2 = 2, then (2 + 4.5)/2.
    np.testing.assert_allclose(ind.true_range(high, low, close), [NAN, 2, 2, 4.5])
    np.testing.assert_allclose(ind.atr(high, low, close, 2), [NAN, NAN, 2, 3.25])


def test_donchian_hand_computed() -> None:
    channel = ind.donchian([5, 7, 6, 9, 8], [1, 3, 2, 4, 6], 3)
    np.testing.assert_allclose(channel.upper, [NAN, NAN, 7, 9, 9])
    np.testing.assert_allclose(channel.lower, [NAN, NAN, 1, 2, 2])
    np.testing.assert_allclose(channel.middle, [NAN, NAN, 4, 5.5, 5.5])


def test_macd_small_periods_hand_computed() -> None:
    # fast 2 (alpha 2/3), slow 3 (alpha 1/2), signal 2 (alpha 2/3) on 1, 2, 4, 8, 16.
    # fast: seed 1.5 @1, then 2/3*4 + 1/3*1.5 = 19/6, 2/3*8 + 1/3*19/6 = 115/18, then 2/3*16 + 115/54 = 691/54
    # slow: seed 7/3 @2, then (8 + 7/3)/2 = 31/6, then (16 + 31/6)/2 = 127/12
    # line @2.. = 19/6 - 7/3 = 5/6, 115/18 - 31/6 = 11/9, 691/54 - 127/12 = 239/108
    # signal: seed (5/6 + 11/9)/2 = 37/36 @3, then 2/3*239/108 + 1/3*37/36 = 589/324
    result = ind.macd([1, 2, 4, 8, 16], fast=2, slow=3, signal=2)
    np.testing.assert_allclose(result.line, [NAN, NAN, 5 / 6, 11 / 9, 239 / 108])
    np.testing.assert_allclose(result.signal, [NAN, NAN, NAN, 37 / 36, 589 / 324])
    np.testing.assert_allclose(result.histogram, [NAN, NAN, NAN, 11 / 9 - 37 / 36, 239 / 108 - 589 / 324])


def test_short_input_is_all_nan() -> None:
    assert np.isnan(ind.sma([1.0, 2.0], 3)).all()
    assert np.isnan(ind.ema([1.0, 2.0], 3)).all()
    assert np.isnan(ind.rsi([1.0, 2.0], 2)).all()
    assert np.isnan(ind.atr([2.0, 2.0], [1.0, 1.0], [1.5, 1.5], 2)).all()
    assert np.isnan(ind.donchian([1.0], [1.0], 2).upper).all()
    assert ind.sma([], 3).shape == (0,)


@pytest.mark.parametrize("period", [0, -1, 2.5])
def test_bad_period_is_rejected(period: float) -> None:
    with pytest.raises(ValueError, match="period"):
        ind.sma([1.0, 2.0, 3.0], period)  # type: ignore[arg-type]


def test_macd_rejects_fast_not_shorter_than_slow() -> None:
    with pytest.raises(ValueError, match="shorter"):
        ind.macd(np.arange(50.0), fast=26, slow=12)


# --------------------------------------------------------------------- against pandas


@pytest.fixture(scope="module")
def bars() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return random_bars()


def test_sma_matches_pandas(bars) -> None:
    close = bars[2]
    np.testing.assert_allclose(ind.sma(close, 20), pd.Series(close).rolling(20).mean(), rtol=1e-12)


@pytest.mark.parametrize("n", [3, 12, 26])
def test_ema_matches_pandas(bars, n: int) -> None:
    close = bars[2]
    expected = pandas_ema_sma_seeded(pd.Series(close), n, 2.0 / (n + 1))
    np.testing.assert_allclose(ind.ema(close, n), expected, rtol=1e-12)


def test_rsi_matches_plain_python_wilder(bars) -> None:
    close = bars[2]
    np.testing.assert_allclose(ind.rsi(close, 14), loop_rsi(list(close), 14), rtol=1e-10)


def test_macd_matches_pandas(bars) -> None:
    close = pd.Series(bars[2])
    line = pandas_ema_sma_seeded(close, 12, 2 / 13) - pandas_ema_sma_seeded(close, 26, 2 / 27)
    signal = pd.concat([line.iloc[:25], pandas_ema_sma_seeded(line.iloc[25:].reset_index(drop=True), 9, 0.2)], ignore_index=True)
    result = ind.macd(close.to_numpy())
    np.testing.assert_allclose(result.line, line, rtol=1e-10)
    np.testing.assert_allclose(result.signal, signal, rtol=1e-10)
    np.testing.assert_allclose(result.histogram, line - signal, rtol=1e-9, atol=1e-12)
    assert np.isnan(result.histogram[:33]).all() and np.isfinite(result.histogram[33:]).all()


def test_bollinger_zscore_matches_pandas(bars) -> None:
    close = pd.Series(bars[2])
    rolling = close.rolling(20)
    expected = (close - rolling.mean()) / rolling.std(ddof=0)
    np.testing.assert_allclose(ind.bollinger_zscore(close.to_numpy(), 20), expected, rtol=1e-9)


def test_atr_matches_pandas(bars) -> None:
    high, low, close = (pd.Series(a) for a in bars)
    previous = close.shift(1)
    tr = pd.concat([high - low, (high - previous).abs(), (low - previous).abs()], axis=1).max(axis=1, skipna=False)
    expected = pd.concat([pd.Series([NAN]), pandas_ema_sma_seeded(tr.iloc[1:].reset_index(drop=True), 14, 1 / 14)], ignore_index=True)
    np.testing.assert_allclose(ind.true_range(*bars), tr, rtol=1e-12)
    np.testing.assert_allclose(ind.atr(*bars, 14), expected, rtol=1e-10)


def test_donchian_matches_pandas(bars) -> None:
    high, low, _ = bars
    channel = ind.donchian(high, low, 20)
    np.testing.assert_allclose(channel.upper, pd.Series(high).rolling(20).max())
    np.testing.assert_allclose(channel.lower, pd.Series(low).rolling(20).min())


def test_rolling_std_sample_matches_pandas(bars) -> None:
    close = bars[2]
    np.testing.assert_allclose(ind.rolling_std(close, 20, ddof=1), pd.Series(close).rolling(20).std(), rtol=1e-9)
