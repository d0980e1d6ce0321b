"""The performance window of a day: the signals the ledger would hold for it, and their return streams.

``SignalHistory`` keeps every cycled (bar, symbol) vote as arrays; ``window(start, end)`` is the
analogue of ``adapters.db.analytics.load_signals(book, start, end)``. The live assets then call
``core.performance.agent_streams`` on that table, which costs 10-60 ms of pandas per day; for that
function the engine uses :func:`fast_agent_streams`, the same arithmetic on the arrays
(``tests/walkforward/test_window.py`` proves it equal on real windows). Any other streams function
is called on the table itself (:meth:`SignalWindow.frame`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from tradepipe.walkforward.data import MarketFrame
from tradepipe.walkforward.signals import SignalCache


@dataclass(frozen=True)
class _SymbolVotes:
    bar_ms: np.ndarray  # the symbol's cycled bars (its window passed the guard), sorted
    close: np.ndarray
    value: np.ndarray  # bars x agents (0 where abstained, as the ledger stores it)
    abstained: np.ndarray


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
            self._symbols[symbol] = _SymbolVotes(timestamps[rows], market.bars[symbol].close[rows], value, table.abstained[rows])

    def window(self, start_ms: int, end_ms: int) -> SignalWindow:
        """Votes of the bars opened in [start_ms, end_ms)."""
        parts = {}
        for symbol, votes in self._symbols.items():
            lo, hi = np.searchsorted(votes.bar_ms, [start_ms, end_ms], side="left")
            if hi > lo:
                parts[symbol] = _SymbolVotes(votes.bar_ms[lo:hi], votes.close[lo:hi], votes.value[lo:hi], votes.abstained[lo:hi])
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
        """The table ``load_signals`` returns (bar_ts as naive UTC datetime64: pandas groups tz-aware
        timestamps as Python objects, six times slower, and no stream function reads the zone)."""
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
                        "abstained": votes.abstained.reshape(-1),
                        "close": np.repeat(votes.close, a),
                    }
                )
            )
        if not parts:
            return pd.DataFrame(columns=["bar_ts", "symbol", "agent_name", "value", "abstained", "close"])
        frame = pd.concat(parts, ignore_index=True).sort_values(["bar_ms", "symbol", "agent_name"], kind="stable")
        frame.insert(0, "bar_ts", pd.to_datetime(frame["bar_ms"].to_numpy(), unit="ms"))
        return frame.drop(columns="bar_ms").reset_index(drop=True)

    def fast_agent_streams(self, fee_bps: float) -> pd.DataFrame:
        """``core.performance.agent_streams(self.frame, fee_bps)`` computed on the arrays.

        Per (agent, symbol): position = value (0 when abstained) at bar t times the next bar's
        return, less ``fee_bps`` on |position change| (from flat before the window's first bar), one
        value per bar but the last; an agent's stream is the mean over the symbols present at a bar.
        """
        fee = fee_bps / 1e4
        per_symbol = []
        for votes in self._symbols.values():
            if votes.bar_ms.size < 2:  # agent_streams skips a group of fewer than 2 rows
                continue
            close = votes.close
            held = votes.value[:-1]
            next_return = close[1:] / close[:-1] - 1.0
            turnover = np.abs(np.diff(held, axis=0, prepend=0.0))
            per_symbol.append((votes.bar_ms[:-1], held * next_return[:, None] - fee * turnover))
        if not per_symbol:
            return pd.DataFrame(dtype=float)
        index = np.unique(np.concatenate([bars for bars, _ in per_symbol]))
        total = np.zeros((index.size, len(self.agents)))
        count = np.zeros((index.size, 1))
        for bars, returns in per_symbol:
            at = np.searchsorted(index, bars)
            total[at] += returns
            count[at] += 1
        streams = total / count
        return pd.DataFrame(streams, index=pd.to_datetime(index, unit="ms"), columns=list(self.agents))
