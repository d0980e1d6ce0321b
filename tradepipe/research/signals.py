"""Every agent's vote at every bar of a symbol, computed once and shared by all compared strategies.

Agent votes do not depend on the weights, the book or the fees, so a walk-forward computes them once
per (symbol, bar) and every strategy's cycles read them back through :class:`CachedAgent` (same name,
same ``Signal``; the cycle cannot tell it from the agent itself).

Two ways to fill the table, proven equal by ``tests/walkforward/test_fast_signals.py``:

* ``per_bar``: call the agent on the window the live cycle gives it (the newest ``history_bars`` rows,
  ``ReplayMarket.closed_bars``' slice). The reference; about 1.2 ms per symbol-bar for the built-ins.
* ``fast`` (default): for the built-in momentum, trend, mean_reversion and breakout agents, the same
  windows evaluated side by side. The per-bar agents compute their EMAs and Wilder averages over the
  truncated window (seeded with the SMA of the window's first values), so a whole-array EMA is *not*
  equal; here every window's recursion is run from its own start, vectorised across windows, with
  pandas' own ``ewm(adjust=False)`` update spelled out
  (``y = ((1 - a) * y + a * x) / ((1 - a) + a)``, skipped when ``y == x``) so each window gives the
  same floats. Window-local indicators (SMA, population std, Donchian edges, true range) equal the
  whole-array ones. Rows whose window is shorter than ``history_bars`` (the file's first rows) and
  agents without a fast form (sentiment, user agents) are evaluated per bar. An agent object with a
  ``whole_votes(bars, history_bars)`` method (``research.variants.VariantAgent``) fills its column itself.

A window with a defective row (NaN, non-positive price, high < low, ...) is never voted on: the cycle's
guard (``validate_history``) skips the symbol there, so those table entries are never read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tradepipe.core import agents as ag
from tradepipe.core import indicators as ind
from tradepipe.core.agents import Agent
from tradepipe.core.types import AgentContext, BarHistory, Signal
from tradepipe.research.data import MarketFrame, SymbolBars

SignalMode = Literal["fast", "per_bar"]
_CHUNK_ROWS = 2048  # windows evaluated per block: bounds the temporary matrices to a few MB


@dataclass(frozen=True)
class SignalTable:
    """Votes of every agent at every row of one symbol (rows as in ``SymbolBars``)."""

    symbol: str
    agents: tuple[str, ...]
    value: np.ndarray  # rows x agents
    confidence: np.ndarray
    abstained: np.ndarray  # bool
    valid: np.ndarray  # bool per row: the window passes validate_history (the cycle votes there)
    reasons: dict[tuple[int, int], str]  # (row, agent index) -> reason, where the agent was called per bar

    def signal(self, row: int, agent_index: int) -> Signal:
        name = self.agents[agent_index]
        reason = self.reasons.get((row, agent_index)) or f"{name}: same vote as the per-bar agent (fast path)"
        if self.abstained[row, agent_index]:
            return Signal(name, self.symbol, 0.0, 0.0, reason, True)
        return Signal(name, self.symbol, float(self.value[row, agent_index]), float(self.confidence[row, agent_index]), reason)


class CachedAgent:
    """Stands in for an agent in ``run_cycle``: returns the vote recorded for the window's last bar."""

    def __init__(self, name: str, signals: Mapping[str, SignalCache]) -> None:
        self.name = name
        self._signals = signals

    def __call__(self, history: BarHistory, context: AgentContext) -> Signal:
        return self._signals[history.symbol].get(history.last_timestamp, self.name)


class SignalCache:
    """``Signal`` objects of one symbol, built on first use and kept (a cycle per strategy reads them)."""

    def __init__(self, table: SignalTable, timestamps: np.ndarray) -> None:
        self.table = table
        self._row = {int(t): i for i, t in enumerate(timestamps.tolist())}
        self._agent = {name: k for k, name in enumerate(table.agents)}
        self._built: dict[tuple[int, int], Signal] = {}

    def get(self, bar_open_ms: int, agent: str) -> Signal:
        key = (self._row[bar_open_ms], self._agent[agent])
        signal = self._built.get(key)
        if signal is None:
            signal = self._built[key] = self.table.signal(*key)
        return signal

    def row(self, bar_open_ms: int) -> int:
        return self._row[bar_open_ms]


# --------------------------------------------------------------------------- table building


def window_validity(bars: SymbolBars, history_bars: int) -> np.ndarray:
    """Per row: does the window ending there pass ``validate_history``? Vectorised, same checks."""
    n = len(bars)
    o, h, l, c, v = bars.open, bars.high, bars.low, bars.close, bars.volume
    prices = np.vstack([o, h, l, c])
    with np.errstate(invalid="ignore"):
        bad_row = (
            ~np.isfinite(prices).all(axis=0)
            | (prices <= 0).any(axis=0)
            | ~np.isfinite(v)
            | (v < 0)
            | (h < l)
            | (h < np.maximum(o, c))
            | (l > np.minimum(o, c))
        )
    bad_step = np.zeros(n, dtype=bool)  # bad_step[i]: row i does not come strictly after row i-1
    bad_step[1:] = np.diff(bars.timestamps) <= 0
    rows = np.arange(n)
    start = np.maximum(rows + 1 - history_bars, 0)
    bad_rows_before = np.concatenate(([0], np.cumsum(bad_row)))
    bad_steps_before = np.concatenate(([0], np.cumsum(bad_step)))
    rows_bad = bad_rows_before[rows + 1] - bad_rows_before[start]
    steps_bad = bad_steps_before[rows + 1] - bad_steps_before[start + 1]  # steps inside the window
    return (rows_bad == 0) & (steps_bad == 0)


def build_signal_table(
    bars: SymbolBars,
    agents: Sequence[Agent],
    history_bars: int,
    mode: SignalMode = "fast",
    rows: np.ndarray | None = None,
    context: Callable[[int], AgentContext] | None = None,
) -> SignalTable:
    """Votes of ``agents`` on the window ending at each of ``rows`` (default: every row).

    ``context(bar_open_ms)`` gives the agents' context (default: decision time = bar close, no
    headlines, as the live cycle without a news feed).
    """
    n = len(bars)
    names = tuple(agent.name for agent in agents)
    value = np.zeros((n, len(agents)))
    confidence = np.zeros((n, len(agents)))
    abstained = np.ones((n, len(agents)), dtype=bool)
    valid = window_validity(bars, history_bars)
    wanted = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
    wanted = wanted[valid[wanted]]
    reasons: dict[tuple[int, int], str] = {}
    make_context = context or (lambda ms: AgentContext(now_ms=ms + _step(bars)))
    for k, agent in enumerate(agents):
        whole = getattr(agent, "whole_votes", None) if mode == "fast" else None
        if whole is not None:  # an agent with its own whole-array form (a strategy variant)
            v, c, a = whole(bars, history_bars)
            value[wanted, k], confidence[wanted, k], abstained[wanted, k] = v[wanted], c[wanted], a[wanted]
            continue
        fast = _FAST.get(agent.name) if mode == "fast" and ag.AGENTS.get(agent.name) is agent else None
        per_bar = wanted if fast is None else wanted[wanted < history_bars - 1]
        vectorised = np.empty(0, dtype=np.int64) if fast is None else wanted[wanted >= history_bars - 1]
        for row in per_bar.tolist():
            signal = agent(bars.window(row, history_bars), make_context(int(bars.timestamps[row])))
            value[row, k], confidence[row, k], abstained[row, k] = signal.value, signal.confidence, signal.abstained
            reasons[(row, k)] = signal.reason
        if vectorised.size:
            assert fast is not None
            v, c, a = _vectorised(fast, bars, vectorised, history_bars)
            value[vectorised, k], confidence[vectorised, k], abstained[vectorised, k] = v, c, a
    return SignalTable(bars.symbol, names, value, confidence, abstained, valid, reasons)


def build_signal_caches(
    market: MarketFrame,
    agents: Sequence[Agent],
    history_bars: int,
    mode: SignalMode = "fast",
    first_bar_ms: int | None = None,
    last_bar_ms: int | None = None,
) -> dict[str, SignalCache]:
    """One :class:`SignalCache` per symbol; rows outside [first_bar_ms, last_bar_ms] are left unvoted."""
    caches = {}
    for symbol in market.symbols:
        bars = market.bars[symbol]
        keep = np.ones(len(bars), dtype=bool)
        if first_bar_ms is not None:
            keep &= bars.timestamps >= first_bar_ms
        if last_bar_ms is not None:
            keep &= bars.timestamps <= last_bar_ms
        rows = np.flatnonzero(keep)
        caches[symbol] = SignalCache(build_signal_table(bars, agents, history_bars, mode, rows), bars.timestamps)
    return caches


def _step(bars: SymbolBars) -> int:
    from tradepipe.core.timeframes import timeframe_ms

    return timeframe_ms(bars.timeframe)


# --------------------------------------------------------------------------- the fast forms

_Votes = tuple[np.ndarray, np.ndarray, np.ndarray]  # value, confidence, abstained


@dataclass(frozen=True)
class _Windows:
    """The windows ending at a block of rows: matrices rows x history_bars (views into the arrays)."""

    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    true_range: np.ndarray  # column 0 is NaN: a window's first bar has no previous close


def _vectorised(fast: Callable[[_Windows], _Votes], bars: SymbolBars, rows: np.ndarray, history_bars: int) -> _Votes:
    out_v, out_c, out_a = (np.empty(rows.size), np.empty(rows.size), np.empty(rows.size, dtype=bool))
    high = sliding_window_view(bars.high, history_bars)
    low = sliding_window_view(bars.low, history_bars)
    close = sliding_window_view(bars.close, history_bars)
    true_range = np.full(len(bars), np.nan)
    true_range[1:] = ind.true_range(bars.high, bars.low, bars.close)[1:]
    tr_windows = sliding_window_view(true_range, history_bars)
    for begin in range(0, rows.size, _CHUNK_ROWS):
        block = rows[begin : begin + _CHUNK_ROWS]
        first = block - (history_bars - 1)  # window index = its first row
        tr = tr_windows[first].copy()
        tr[:, 0] = np.nan
        windows = _Windows(high[first], low[first], close[first], tr)
        v, c, a = fast(windows)
        out_v[begin : begin + block.size], out_c[begin : begin + block.size], out_a[begin : begin + block.size] = v, c, a
    return out_v, out_c, out_a


def _smoothed_columns(x: np.ndarray, start: int, n: int, alpha: float) -> np.ndarray:
    """``indicators.smoothed`` of every row of ``x`` whose first finite column is ``start``.

    Returns rows x columns with NaN before the seed at ``start + n - 1``, exactly as the per-row
    function computes it (seed = mean of the first n values, then pandas' adjust=False update).
    """
    rows, cols = x.shape
    out = np.full((rows, cols), np.nan)
    seed_at = start + n - 1
    if seed_at >= cols:
        return out
    y = x[:, start : seed_at + 1].mean(axis=1)
    out[:, seed_at] = y
    old = 1.0 - alpha
    total = old + alpha
    for j in range(seed_at + 1, cols):
        current = x[:, j]
        y = np.where(y != current, (old * y + alpha * current) / total, y)
        out[:, j] = y
    return out


def _last_smoothed(x: np.ndarray, start: int, n: int, alpha: float) -> np.ndarray:
    """Only the last column of :func:`_smoothed_columns` (no matrix kept)."""
    seed_at = start + n - 1
    y = x[:, start : seed_at + 1].mean(axis=1)
    old = 1.0 - alpha
    total = old + alpha
    for j in range(seed_at + 1, x.shape[1]):
        current = x[:, j]
        y = np.where(y != current, (old * y + alpha * current) / total, y)
    return y


def _atr_last(w: _Windows) -> np.ndarray:
    return _last_smoothed(w.true_range, 1, ag.ATR_PERIOD, 1.0 / ag.ATR_PERIOD)


def _is_flat(scale: np.ndarray, price: np.ndarray) -> np.ndarray:
    return ~(scale > ag.FLAT_TOLERANCE * np.abs(price))


def _finish(value: np.ndarray, confidence: np.ndarray, abstained: np.ndarray | None = None) -> _Votes:
    """``Agent._signal``: a non-finite vote abstains; others are clipped into range."""
    bad = ~(np.isfinite(value) & np.isfinite(confidence))
    if abstained is not None:
        bad |= abstained
    value = np.where(bad, 0.0, np.minimum(1.0, np.maximum(-1.0, value)))
    confidence = np.where(bad, 0.0, np.minimum(1.0, np.maximum(0.0, confidence)))
    return value, confidence, bad


def _momentum(w: _Windows) -> _Votes:
    close = w.close
    change = np.diff(close, axis=1)
    n = ag.RSI_PERIOD
    gain = _last_smoothed(np.maximum(change, 0.0), 0, n, 1.0 / n)
    loss = _last_smoothed(np.maximum(-change, 0.0), 0, n, 1.0 / n)
    total = gain + loss
    with np.errstate(invalid="ignore", divide="ignore"):
        rsi_now = np.where(total > 0.0, 100.0 * gain / total, 50.0)
    fast = _smoothed_columns(close, 0, ag.MACD_FAST, 2.0 / (ag.MACD_FAST + 1.0))
    slow = _smoothed_columns(close, 0, ag.MACD_SLOW, 2.0 / (ag.MACD_SLOW + 1.0))
    line = fast - slow
    signal = _smoothed_columns(line, ag.MACD_SLOW - 1, ag.MACD_SIGNAL, 2.0 / (ag.MACD_SIGNAL + 1.0))
    hist_now = line[:, -1] - signal[:, -1]
    atr_now = _atr_last(w)
    flat = _is_flat(atr_now, close[:, -1])
    rsi_term = np.minimum(1.0, np.maximum(-1.0, (rsi_now - 50.0) / ag.RSI_SPAN))
    with np.errstate(invalid="ignore", divide="ignore"):
        macd_term = np.tanh(hist_now / (ag.MACD_ATR_SCALE * atr_now))
    value = np.where(flat, 0.0, (rsi_term + macd_term) / 2.0)
    confidence = np.where(flat, 0.0, 1.0 - np.abs(rsi_term - macd_term) / 2.0)
    return _finish(value, confidence)


def _trend(w: _Windows) -> _Votes:
    close = w.close
    persistence = ag.TREND_PERSISTENCE_BARS
    tail = close.shape[1] - persistence  # SMAs at the window's last `persistence` bars
    fast = np.stack([close[:, tail + j - ag.TREND_FAST + 1 : tail + j + 1].mean(axis=1) for j in range(persistence)], axis=1)
    slow = np.stack([close[:, tail + j - ag.TREND_SLOW + 1 : tail + j + 1].mean(axis=1) for j in range(persistence)], axis=1)
    gap = fast - slow
    atr_now = _atr_last(w)
    flat = _is_flat(atr_now, close[:, -1])
    with np.errstate(invalid="ignore", divide="ignore"):
        gap_atr = gap[:, -1] / atr_now
    side = np.sign(gap[:, -1])
    held = np.mean(np.sign(gap) == side[:, None], axis=1)
    value = np.where(flat, 0.0, np.tanh(gap_atr / ag.TREND_ATR_SCALE))
    confidence = np.where(flat, 0.0, held)
    return _finish(value, confidence)


def _mean_reversion(w: _Windows) -> _Votes:
    period = ag.BOLLINGER_PERIOD
    last = w.close[:, -period:]
    mean = last.mean(axis=1)
    std = last.std(axis=1, ddof=0)
    close = w.close[:, -1]
    flat_band = std <= 1e-12 * np.abs(mean)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(flat_band, 0.0, (close - mean) / std)
    flat = (z == 0.0) & (np.ptp(last, axis=1) == 0.0)
    value = np.where(flat, 0.0, -z / ag.BOLLINGER_WIDTH)
    confidence = np.where(flat, 0.0, np.minimum(1.0, np.abs(z) / ag.BOLLINGER_WIDTH))
    return _finish(value, confidence)


def _breakout(w: _Windows) -> _Votes:
    period = ag.DONCHIAN_PERIOD
    close = w.close[:, -1]
    upper = w.high[:, -period - 1 : -1].max(axis=1)
    lower = w.low[:, -period - 1 : -1].min(axis=1)
    atr_now = _atr_last(w)
    flat = _is_flat(atr_now, close) | _is_flat(upper - lower, close)
    above, below = close > upper, close < lower
    with np.errstate(invalid="ignore", divide="ignore"):
        beyond = np.where(above, close - upper, lower - close) / atr_now
        strength = 0.5 + 0.5 * np.minimum(1.0, beyond)
        position = (close - lower) / (upper - lower)
    side = np.where(above, 1.0, -1.0)
    broke = above | below
    value = np.where(broke, side * strength, ag.INSIDE_CHANNEL_MAX * (2.0 * position - 1.0))
    confidence = np.where(broke, strength, ag.INSIDE_CHANNEL_CONFIDENCE)
    return _finish(np.where(flat, 0.0, value), np.where(flat, 0.0, confidence))


_FAST: dict[str, Callable[[_Windows], _Votes]] = {
    "momentum": _momentum,
    "trend": _trend,
    "mean_reversion": _mean_reversion,
    "breakout": _breakout,
}
FAST_AGENTS = frozenset(_FAST)

__all__ = [
    "FAST_AGENTS",
    "CachedAgent",
    "SignalCache",
    "SignalMode",
    "SignalTable",
    "build_signal_caches",
    "build_signal_table",
    "window_validity",
]
