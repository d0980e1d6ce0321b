"""Candles for a walk-forward: the shared CSV/Parquet files, read by ``ReplayMarket``, as arrays.

Every symbol keeps its own rows (a missing hour is missing for that symbol only). The engine trades
the union of the symbols' bar times; at a bar a symbol lacks, that symbol is skipped for the cycle
(the live cycle's own rule: its newest closed bar is not the cycle's bar) and the others trade.
``coverage_notes`` says so in the summary. The files' last rows are dropped by default, as
``tradepipe backtest`` does: an exchange dump ends with the candle that was still forming.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tradepipe.adapters.market import ReplayMarket
from tradepipe.core.timeframes import timeframe_ms
from tradepipe.core.types import BarHistory
from tradepipe.core.timeframes import iso_utc


class WalkForwardInputError(ValueError):
    """The request cannot be evaluated (no data in the range, unknown file, ...): one readable line."""


@dataclass(frozen=True)
class SymbolBars:
    """One symbol's rows, oldest first (defective rows kept: the cycle's guard skips them)."""

    symbol: str
    timeframe: str
    timestamps: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return int(self.timestamps.shape[0])

    def window(self, end_row: int, history_bars: int) -> BarHistory:
        """The ``history_bars`` rows up to and including ``end_row``: what ``ReplayMarket.closed_bars``
        gives the live cycle (views, no copy)."""
        take = slice(max(end_row + 1 - history_bars, 0), end_row + 1)
        return BarHistory(
            self.symbol, self.timeframe, self.timestamps[take], self.open[take], self.high[take],
            self.low[take], self.close[take], self.volume[take],
        )


@dataclass(frozen=True)
class MarketFrame:
    """The candles of every symbol plus the bar times the engine steps through."""

    symbols: tuple[str, ...]
    timeframe: str
    bars: dict[str, SymbolBars]
    timeline: np.ndarray  # union of the symbols' bar open times (ms), sorted
    notes: tuple[str, ...]

    @property
    def step_ms(self) -> int:
        return timeframe_ms(self.timeframe)

    def row_at(self, symbol: str, bar_open_ms: int) -> int:
        """Index of the symbol's newest row opened at or before ``bar_open_ms`` (-1: none yet)."""
        return int(np.searchsorted(self.bars[symbol].timestamps, bar_open_ms, side="right")) - 1


def load_market(directory: str | Path, symbols: Sequence[str], timeframe: str, drop_last_bar: bool = True) -> MarketFrame:
    """Read ``BASE_QUOTE-TIMEFRAME`` files of ``symbols`` from ``directory`` (see ``ReplayMarket``)."""
    timeframe_ms(timeframe)  # a bad timeframe fails here, with the accepted spellings
    if not symbols:
        raise WalkForwardInputError("no symbols given")
    if len(set(symbols)) != len(symbols):
        raise WalkForwardInputError(f"symbols listed more than once: {list(symbols)}")
    market = ReplayMarket(directory, mode="stepped", drop_last_bar=drop_last_bar)
    unreadable = market.unreadable(symbols, timeframe)
    if len(unreadable) == len(symbols):
        raise WalkForwardInputError("; ".join(unreadable.values()))
    left_out = [f"{symbol} left out: {reason}" for symbol, reason in unreadable.items()]
    symbols = [symbol for symbol in symbols if symbol not in unreadable]
    bars: dict[str, SymbolBars] = {}
    for symbol in symbols:
        stamps, *values = market.columns(symbol, timeframe)
        timestamps = np.asarray(stamps, dtype=np.int64)
        columns = [np.ascontiguousarray(column, dtype=np.float64) for column in values]
        bars[symbol] = SymbolBars(symbol, timeframe, timestamps, *columns)
    timeline = np.unique(np.concatenate([b.timestamps for b in bars.values()]))
    notes = (*left_out, *market.warnings, *coverage_notes(bars, timeline, timeframe))
    return MarketFrame(tuple(symbols), timeframe, bars, timeline, notes)


def coverage_notes(bars: dict[str, SymbolBars], timeline: np.ndarray, timeframe: str) -> list[str]:
    """One line per symbol whose rows do not cover every bar of the union timeline."""
    notes = []
    for symbol, b in bars.items():
        missing = int(timeline.size - b.timestamps.size)
        if missing:
            notes.append(
                f"{symbol}: {missing} of {timeline.size} {timeframe} bars missing "
                f"(first {_iso(int(b.timestamps[0]))}, last {_iso(int(b.timestamps[-1]))}); "
                "the symbol is skipped at those bars, the others trade"
            )
    return notes


def _iso(ms: int) -> str:
    return iso_utc(ms, timespec="minutes")


def market_from_arrays(columns_by_symbol: dict[str, dict[str, np.ndarray]], timeframe: str, notes: Sequence[str] = ()) -> MarketFrame:
    """A market from in-memory OHLCV arrays (``timestamp``, ``open``, ``high``, ``low``, ``close``,
    ``volume`` per symbol), e.g. a synthetic one from ``research.regimes``."""
    timeframe_ms(timeframe)
    bars = {
        symbol: SymbolBars(
            symbol, timeframe, np.asarray(c["timestamp"], dtype=np.int64),
            *(np.ascontiguousarray(c[k], dtype=np.float64) for k in ("open", "high", "low", "close", "volume")),
        )
        for symbol, c in columns_by_symbol.items()
    }
    timeline = np.unique(np.concatenate([b.timestamps for b in bars.values()]))
    return MarketFrame(tuple(bars), timeframe, bars, timeline, tuple(notes))
