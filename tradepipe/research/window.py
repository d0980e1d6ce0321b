"""The performance window of a day: the signals the ledger would hold for it, and their return streams.

``SignalHistory`` keeps every cycled (bar, symbol) vote as arrays; ``window(start, end)`` is the
analogue of ``adapters.db.analytics.load_signals(book, start, end)``. The live assets then call
``core.performance.agent_streams`` on that table, which costs pandas time per day; for that
function the engine uses :func:`fast_agent_streams`, the same simulation on the arrays
(``tests/walkforward/test_window.py`` proves it equal on real windows). Any other streams function
is called on the table itself (:meth:`SignalWindow.frame`).

Day after day the windows overlap by all but one day, so :class:`IncrementalStreams` extends the
previous day's solo books instead of re-simulating the window: a book started at the new window's
first bar is followed only until it and the previous day's book are both flat after the same bar
(``core.performance.SoloBook``: from there on their paths are equal to the last bit), then the
previous path is reused and extended by the new day. ``tests/walkforward/test_incremental_streams.py``
proves every day's streams equal to ``fast_agent_streams`` of the same window.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from tradepipe.core.performance import BookPaths, BookRules, SoloBook, returns_from, simulate_books
from tradepipe.research.data import MarketFrame
from tradepipe.research.signals import SignalCache


@dataclass(frozen=True)
class _SymbolVotes:
    bar_ms: np.ndarray  # the symbol's cycled bars (its window passed the guard), sorted
    close: np.ndarray
    value: np.ndarray  # bars x agents (0 where abstained, as the ledger stores it)
    abstained: np.ndarray
    confidence: np.ndarray


class SignalHistory:
    """Every vote the cycles cast, per symbol, from the engine's traded bars."""

    def __init__(self, caches: Mapping[str, SignalCache], market: MarketFrame, bars: np.ndarray) -> None:
        self.agents: tuple[str, ...] = ()
        self._symbols: dict[str, _SymbolVotes] = {}
        for symbol, cache in sorted(caches.items()):  # agent_streams groups symbols in sorted order
            table = cache.table
            self.agents = table.agents
            timestamps = market.bars[symbol].timestamps
            rows = np.searchsorted(timestamps, bars, side="right") - 1
            present = rows >= 0
            present[present] = timestamps[rows[present]] == bars[present]
            rows = rows[present]
            rows = rows[table.valid[rows]]
            value = np.where(table.abstained[rows], 0.0, table.value[rows])
            confidence = np.where(table.abstained[rows], 0.0, table.confidence[rows])
            self._symbols[symbol] = _SymbolVotes(timestamps[rows], market.bars[symbol].close[rows], value, table.abstained[rows], confidence)

    def incremental_streams(self, rules: BookRules) -> IncrementalStreams:
        return IncrementalStreams(self.agents, self._symbols, rules)

    def window(self, start_ms: int, end_ms: int) -> SignalWindow:
        """Votes of the bars opened in [start_ms, end_ms)."""
        parts = {}
        for symbol, votes in self._symbols.items():
            lo, hi = np.searchsorted(votes.bar_ms, [start_ms, end_ms], side="left")
            if hi > lo:
                parts[symbol] = _SymbolVotes(
                    votes.bar_ms[lo:hi], votes.close[lo:hi], votes.value[lo:hi], votes.abstained[lo:hi], votes.confidence[lo:hi]
                )
        return SignalWindow(self.agents, parts)


class SignalWindow:
    def __init__(self, agents: tuple[str, ...], symbols: dict[str, _SymbolVotes]) -> None:
        self.agents = agents
        self._symbols = symbols

    @property
    def empty(self) -> bool:
        return not self._symbols

    def signal_counts(self) -> dict[str, int]:
        """``adapters.db.analytics.signal_counts``: votes cast per agent (abstentions are not signals)."""
        counts = np.zeros(len(self.agents), dtype=np.int64)
        for votes in self._symbols.values():
            counts += (~votes.abstained).sum(axis=0)
        return {agent: int(n) for agent, n in zip(self.agents, counts) if n}

    @cached_property
    def frame(self) -> pd.DataFrame:
        """The table ``load_signals`` returns, plus each vote's ``confidence`` (bar_ts as naive UTC
        datetime64: pandas groups tz-aware timestamps as Python objects, six times slower, and no
        stream function reads the zone)."""
        parts = []
        for symbol, votes in self._symbols.items():
            n, a = votes.value.shape
            parts.append(
                pd.DataFrame(
                    {
                        "bar_ms": np.repeat(votes.bar_ms, a),
                        "symbol": symbol,
                        "agent_name": np.tile(np.array(self.agents, dtype=object), n),
                        "value": votes.value.reshape(-1),
                        "confidence": votes.confidence.reshape(-1),
                        "abstained": votes.abstained.reshape(-1),
                        "close": np.repeat(votes.close, a),
                    }
                )
            )
        if not parts:
            return pd.DataFrame(columns=["bar_ts", "symbol", "agent_name", "value", "confidence", "abstained", "close"])
        frame = pd.concat(parts, ignore_index=True).sort_values(["bar_ms", "symbol", "agent_name"], kind="stable")
        frame.insert(0, "bar_ts", pd.to_datetime(frame["bar_ms"].to_numpy(), unit="ms"))
        return frame.drop(columns="bar_ms").reset_index(drop=True)

    def fast_agent_streams(self, rules: BookRules) -> pd.DataFrame:
        """``core.performance.agent_streams(self.frame, rules)`` computed on the arrays: each agent's
        solo book (``performance.simulate_books``) over the window's bars, fills at the decision
        bar's close as the ledger-fed asset prices them."""
        if not self._symbols:
            return pd.DataFrame(dtype=float)
        symbols = sorted(self._symbols)
        index = np.unique(np.concatenate([self._symbols[s].bar_ms for s in symbols]))
        if index.size < 2:
            return pd.DataFrame(columns=sorted(self.agents), dtype=float)
        order = np.argsort(np.array(self.agents, dtype=object))  # agent_streams sorts the agents
        votes = np.full((index.size, len(self.agents), len(symbols)), np.nan)
        close = np.full((index.size, len(symbols)), np.nan)
        for j, symbol in enumerate(symbols):
            part = self._symbols[symbol]
            at = np.searchsorted(index, part.bar_ms)
            votes[at, :, j] = (part.value * part.confidence)[:, order]
            close[at, j] = part.close
        returns = simulate_books(votes, close, None, rules)
        return pd.DataFrame(returns, index=pd.to_datetime(index[:-1], unit="ms"), columns=[self.agents[k] for k in order])


@dataclass
class _Path:
    """One agent's solo book over the bars [start, stop) of the history: equity and flat flags per bar,
    and its state after bar stop - 1."""

    start: int
    stop: int
    equity: list[float]
    flat: list[bool]
    state: SoloBook


class IncrementalStreams:
    """``SignalWindow.fast_agent_streams`` of successive windows, each extending the previous one's books."""

    def __init__(self, agents: tuple[str, ...], symbols: Mapping[str, _SymbolVotes], rules: BookRules) -> None:
        names = sorted(symbols)
        self.index = np.unique(np.concatenate([symbols[s].bar_ms for s in names])) if names else np.zeros(0, dtype=np.int64)
        order = np.argsort(np.array(agents, dtype=object))  # agent_streams sorts the agents
        self.columns = [agents[k] for k in order]
        self.symbols = len(names)
        votes = np.full((self.index.size, len(agents), len(names)), np.nan)
        close = np.full((self.index.size, len(names)), np.nan)
        for j, symbol in enumerate(names):
            part = symbols[symbol]
            at = np.searchsorted(self.index, part.bar_ms)
            votes[at, :, j] = (part.value * part.confidence)[:, order]
            close[at, j] = part.close
        # Fills at the decision bar's close, the previous bar of the whole history; a window's first bar
        # never fills (its books start flat, nothing pending), so this equals the window's own NaN row.
        self.paths = BookPaths(votes, close, None, rules)
        self.times = pd.to_datetime(self.index, unit="ms")  # converted once: each window slices it
        self._last: list[_Path | None] = [None] * len(agents)
        self.followed = 0  # book-bars simulated so far (a full re-simulation would follow every window's bars)

    def streams(self, start_ms: int, end_ms: int) -> pd.DataFrame:
        """The streams of the window [start_ms, end_ms) (``history.window(start_ms, end_ms).fast_agent_streams(rules)``)."""
        lo, hi = (int(i) for i in np.searchsorted(self.index, [start_ms, end_ms], side="left"))
        if hi == lo:
            return pd.DataFrame(dtype=float)
        if hi - lo < 2:
            return pd.DataFrame(columns=sorted(self.columns), dtype=float)
        equity = np.empty((hi - lo, len(self.columns)))
        base = np.empty_like(equity)
        for book in range(len(self.columns)):
            path = self._follow(book, lo, hi)
            equity[:, book] = path.equity
            base[:, book] = np.where(path.flat, 1.0, path.equity)
        return pd.DataFrame(returns_from(equity, base), index=self.times[lo : hi - 1], columns=self.columns)

    def _follow(self, book: int, lo: int, hi: int) -> _Path:
        last = self._last[book]
        if last is None or not (last.start <= lo < last.stop <= hi):  # nothing to extend: the whole window
            equity, flat, state = self.paths.follow(book, lo, hi, SoloBook.flat(self.symbols))
            self._counted(equity)
            path = _Path(lo, hi, equity, flat, state)
        else:
            offset = lo - last.start
            equity, flat, state = self.paths.follow(book, lo, last.stop, SoloBook.flat(self.symbols), last.flat[offset:])
            self._counted(equity)
            met = lo + len(equity)  # bars followed; if short of last.stop, both books were flat after bar met - 1
            if met < last.stop:
                equity += last.equity[met - last.start :]
                flat += last.flat[met - last.start :]
                state = last.state.copy()
            more_equity, more_flat, state = self.paths.follow(book, last.stop, hi, state)
            self._counted(more_equity)
            path = _Path(lo, hi, equity + more_equity, flat + more_flat, state)
        self._last[book] = path
        return path

    def _counted(self, equity: list[float]) -> list[float]:
        self.followed += len(equity)
        return equity
