"""Per-agent return streams as the book trades them, and the per-agent performance rows built on them.

Pure: plain tables in, plain dicts out. The ``agent_performance`` and ``agent_weights`` assets and
the walk-forward engine call these with the signals (and bars) the cycles recorded.

What an agent's return stream is
--------------------------------
The per-bar return of a *solo book*: the live book's rules with that agent as its only voter
(weight 1), on every symbol the signals cover, sharing one equity. Per symbol and bar ``t``:

1. the order decided at bar ``t - 1`` fills at bar ``t``'s **open**, moved against the trader by
   ``slippage_bps``, paying ``fee_bps`` of the notional (``paper.fill_order``);
2. positions are marked at bar ``t``'s close; a position at or beyond its stop
   (``stop_loss_fraction`` from its average entry) is closed at the next open (``risk`` step 2);
3. the vote is ``value x confidence`` (0 when the agent abstains, ``ensemble.effective_vote``); the
   target is ``ensemble.target_fraction`` (dead band, ``max_position_fraction``, long-only unless
   ``allow_short``), with the opening hysteresis and minimum holding period of ``ensemble.book_target``;
4. no order when the held fraction is within ``rebalance_band`` of the target (``cycle._within_band``:
   closing to flat is never suppressed); else the order is ``target x equity / close - held``.

The stream at row ``t`` is ``equity(close t+1) / equity(close t) - 1`` (indexed by the bar whose
position earned it, like before). What the solo book leaves out, because it binds rarely and depends
on the rest of the book: the gross-exposure, turnover and cash caps, the daily-loss halt, exchange
minimums and amount-step rounding. ``tests/core/test_traded_streams.py`` proves the stream equal to
a solo-agent book run through ``cycle.run_cycle`` on real candles.

The live ledger keeps each signal's bar close but not the next bar's open: without an ``open``
column the fill is priced at the decision bar's close (on a 24/7 market the next open is that
close to within a tick; exactly so in the CDD candles before 2020-08).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Any

import numpy as np
import pandas as pd

from tradepipe.core.attribution import DEFAULT_QUANTUM, split_pnl
from tradepipe.core.ensemble import DEFAULT_DEADBAND
from tradepipe.core.metrics import MIN_DAYS, classify_agents, summarize_many

SIGNAL_COLUMNS = ("bar_ts", "symbol", "agent_name", "value", "confidence", "abstained", "close")


@dataclass(frozen=True)
class BookRules:
    """The terms on which the book trades a signal: the same for the live cycle, the streams and
    the walk-forward (``tradepipe.config.rules.book_rules`` builds them from the settings)."""

    max_position_fraction: float = 0.25
    allow_short: bool = False
    deadband: float = DEFAULT_DEADBAND
    rebalance_band: float = 0.05
    fee_bps: float = 10.0
    slippage_bps: float = 5.0
    stop_loss_fraction: float = 0.05
    entry_hysteresis: float = 0.0
    min_hold_bars: int = 0

    def __post_init__(self) -> None:
        checks = {
            "max_position_fraction": 0 <= self.max_position_fraction <= 1,
            "deadband": 0 <= self.deadband < 1,
            "rebalance_band": 0 <= self.rebalance_band < 1,
            "fee_bps": 0 <= self.fee_bps,
            "slippage_bps": 0 <= self.slippage_bps < 1e4,
            "stop_loss_fraction": 0 <= self.stop_loss_fraction < 1,
            "entry_hysteresis": 0 <= self.entry_hysteresis < 1,
            "min_hold_bars": self.min_hold_bars >= 0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"BookRules out of range: {', '.join(f'{n}={getattr(self, n)!r}' for n in bad)}")


def simulate_books(
    votes: np.ndarray, close: np.ndarray, open_: np.ndarray | None, rules: BookRules, *, costs: bool = True
) -> np.ndarray:
    """Per-bar returns of independent books, one per column of ``votes``, each trading the symbols.

    ``votes`` is bars x books x symbols of scores in [-1, 1] (NaN: the symbol has no bar, so it is
    neither traded nor re-marked); ``close`` and ``open_`` are bars x symbols (``open_`` None: fills
    at the decision bar's close). Returns bars-1 x books (see the module docstring for the rules);
    ``costs=False`` drops fees and slippage (the gross stream).

    What does not depend on the path (targets before hysteresis, fill prices) is computed over whole
    arrays; the band, stops, hysteresis and holding period depend on what each book holds, so one pass
    over the bars follows each book with plain floats (on arrays this small, numpy's per-call cost is
    ~50x the arithmetic).
    """
    n_bars, n_books, n_symbols = votes.shape
    if close.shape != (n_bars, n_symbols) or (open_ is not None and open_.shape != close.shape):
        raise ValueError(f"votes {votes.shape} do not match close {close.shape}" + ("" if open_ is None else f" / open {open_.shape}"))
    paths = BookPaths(votes, close, open_, rules, costs=costs)
    equity_curve = np.empty((n_bars, n_books))
    base = np.empty((n_bars, n_books))
    for book in range(n_books):
        equity, flat, _ = paths.follow(book, 0, n_bars, SoloBook.flat(n_symbols))
        equity_curve[:, book] = equity
        base[:, book] = np.where(flat, 1.0, equity)
    return returns_from(equity_curve, base)


def returns_from(equity: np.ndarray, base: np.ndarray) -> np.ndarray:
    """Per-bar returns of an equity path: ``equity[t+1] / base[t] - 1`` (``base``: the equity after bar
    t, or 1.0 where the book was reset to 1.0 in cash, see :class:`SoloBook`)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return equity[1:] / base[:-1] - 1.0


@dataclass
class SoloBook:
    """One solo book between two bars: cash, and per symbol the quantity held, its average entry, the
    bar it was opened at, the last mark and the order waiting for the next bar's fill.

    A book that is flat (holds nothing, nothing pending, equity > 0) after a bar is reset to 1.0 in
    cash: its future returns do not depend on how much cash it has, and the reset makes them equal
    to the last bit whatever the book did before. So two books of one agent that started at
    different bars trade identically from the first bar after which both are flat; that is what
    lets a day's streams extend the previous day's (``walkforward.window.IncrementalStreams``)."""

    cash: float
    qty: list[float]
    avg: list[float]
    opened: list[int]
    mark: list[float]
    pending: list[float]

    @classmethod
    def flat(cls, symbols: int) -> SoloBook:
        return cls(1.0, [0.0] * symbols, [0.0] * symbols, [0] * symbols, [0.0] * symbols, [0.0] * symbols)

    def copy(self) -> SoloBook:
        return SoloBook(self.cash, list(self.qty), list(self.avg), list(self.opened), list(self.mark), list(self.pending))


class BookPaths:
    """The path-independent inputs of ``simulate_books`` (targets, hysteresis flags, prices as lists),
    for following one book over any range of bars."""

    def __init__(self, votes: np.ndarray, close: np.ndarray, open_: np.ndarray | None, rules: BookRules, *, costs: bool = True) -> None:
        n_symbols = close.shape[1]
        self.rules = rules
        self.fee = rules.fee_bps / 1e4 if costs else 0.0
        self.slip = rules.slippage_bps / 1e4 if costs else 0.0
        with np.errstate(invalid="ignore"):
            strength = np.minimum(1.0, np.abs(votes))
            raw = np.where(strength <= rules.deadband, 0.0, np.copysign((strength - rules.deadband) / (1.0 - rules.deadband) * rules.max_position_fraction, votes))
            if not rules.allow_short:
                raw = np.where(votes < 0, 0.0, raw)
            opens_needed = strength > rules.deadband + rules.entry_hysteresis
        fill_base = open_ if open_ is not None else np.vstack([np.full((1, n_symbols), np.nan), close[:-1]])
        self.closes: list[list[float]] = np.where(np.isnan(close), -1.0, close).tolist()  # -1: no bar
        self.fills: list[list[float]] = np.where(np.isnan(fill_base), -1.0, fill_base).tolist()
        self.targets = [np.where(np.isnan(votes[:, book]), np.nan, raw[:, book]).tolist() for book in range(votes.shape[1])]
        self.may_open = [opens_needed[:, book].tolist() for book in range(votes.shape[1])]

    def follow(
        self, book: int, start: int, stop: int, state: SoloBook, sync: list[bool] | None = None
    ) -> tuple[list[float], list[bool], SoloBook]:
        """Follow ``book`` from ``state`` over bars [start, stop): the equity after each bar, whether
        the book was flat (and reset) after it, and the state after the last bar followed. With
        ``sync`` (flags of another run of the same book from bar ``start`` on), it stops after the
        first bar where both were flat: from there on that run's path is this one's."""
        return _follow_book(
            self.targets[book][start:stop], self.may_open[book][start:stop], self.closes[start:stop], self.fills[start:stop],
            self.rules, self.fee, self.slip, state, start, sync,
        )


def _follow_book(
    targets: list[list[float]], may_open: list[list[bool]], closes: list[list[float]], fills: list[list[float]],
    rules: BookRules, fee: float, slip: float, state: SoloBook, first_t: int = 0, sync: list[bool] | None = None,
) -> tuple[list[float], list[bool], SoloBook]:
    """Equity after each bar of one book and its flat flags; see ``simulate_books`` and ``BookPaths.follow``.
    ``state`` is updated in place."""
    symbols = range(len(state.qty))
    cash, qty, avg, opened, mark, pending = state.cash, state.qty, state.avg, state.opened, state.mark, state.pending
    stop, band, min_hold = rules.stop_loss_fraction, rules.rebalance_band, rules.min_hold_bars
    equity_after: list[float] = []
    flat_after: list[bool] = []
    synced = len(sync) if sync is not None else 0
    for t, (target_row, open_row, close_row, fill_row) in enumerate(zip(targets, may_open, closes, fills), start=first_t):
        for s in symbols:  # 1. last bar's orders fill at this bar's open (cancelled if it has no bar)
            order = pending[s]
            if order == 0.0:
                continue
            pending[s] = 0.0
            if close_row[s] < 0 or fill_row[s] < 0:
                continue
            price = fill_row[s] * (1.0 + slip if order > 0 else 1.0 - slip)
            held, after = qty[s], qty[s] + order
            if held == 0.0 or (after != 0.0 and (after > 0) != (held > 0)):
                avg[s], opened[s] = price, t
            elif (order > 0) == (held > 0):
                avg[s] = (held * avg[s] + order * price) / after
            cash -= order * price + abs(order * price) * fee
            qty[s] = 0.0 if abs(after) <= 1e-12 * abs(held) else after
        value = cash
        for s in symbols:  # 2. mark at the close (a symbol without a bar keeps its last mark)
            if close_row[s] > 0:
                mark[s] = close_row[s]
            value += qty[s] * mark[s]
        equity_after.append(value)
        if value <= 0:
            flat_after.append(False)
            continue
        for s in symbols:  # 3-4. stop-loss, target, band
            target, held = target_row[s], qty[s]
            if close_row[s] < 0 or math.isnan(target):  # no bar, or no vote
                continue
            if held > 0 and mark[s] <= avg[s] * (1.0 - stop) and stop > 0 or held < 0 and mark[s] >= avg[s] * (1.0 + stop) and stop > 0:
                pending[s] = -held
                continue
            if held != 0.0 and t - opened[s] + 1 < min_hold:
                continue
            held_sign = (held > 0) - (held < 0)
            if target != 0.0 and ((target > 0) - (target < 0)) != held_sign and not open_row[s]:
                target = 0.0  # opening hysteresis (ensemble.book_target)
            if held == 0.0:
                if abs(target) < band:
                    continue
            elif target != 0.0 and abs(target - held * mark[s] / value) < band:
                continue
            pending[s] = target * value / mark[s] - held
        flat = not any(qty) and not any(pending)
        if flat:
            cash = 1.0  # see SoloBook: the reset that makes paths of different starts meet
        flat_after.append(flat)
        if flat and t - first_t < synced and sync[t - first_t]:  # type: ignore[index]
            break
    state.cash = cash
    return equity_after, flat_after, state


def agent_streams(signals: pd.DataFrame, rules: BookRules, *, costs: bool = True) -> pd.DataFrame:
    """Bars x agents table of each agent's solo-book return per bar (see the module docstring).

    ``signals`` has one row per (bar_ts, symbol, agent_name) with the signal ``value``,
    ``confidence``, whether the agent ``abstained`` and the bar's ``close`` (optionally its
    ``open``). An agent without a row for a symbol's bar makes no decision there (holds).
    Rows are indexed by the bar whose position earned the return; ``costs=False`` gives the
    stream before fees and slippage.
    """
    missing = set(SIGNAL_COLUMNS) - set(signals.columns)
    if missing:
        raise ValueError(f"signals table lacks columns {sorted(missing)}")
    if signals.empty:
        return pd.DataFrame(dtype=float)
    bars = pd.Index(sorted(signals["bar_ts"].unique()))
    symbols = sorted(signals["symbol"].unique())
    agents = sorted(str(a) for a in signals["agent_name"].unique())
    prices = signals.drop_duplicates(["bar_ts", "symbol"]).set_index(["bar_ts", "symbol"])
    close = _price_table(prices["close"], bars, symbols, "close")
    open_ = _price_table(prices["open"], bars, symbols, "open") if "open" in signals.columns else None
    abstained = signals["abstained"].astype(bool).to_numpy()
    value = pd.to_numeric(signals["value"], errors="coerce").to_numpy(dtype=float)
    confidence = pd.to_numeric(signals["confidence"], errors="coerce").to_numpy(dtype=float)
    vote = np.where(abstained, 0.0, value * confidence)
    bad = ~np.isfinite(vote)
    if bad.any():
        row = signals.iloc[int(np.argmax(bad))]
        raise ValueError(f"agent {row['agent_name']!r}, {row['symbol']}: non-finite value or confidence at bar {pd.Timestamp(row['bar_ts']).isoformat()}")
    cube = np.full((len(bars), len(agents), len(symbols)), np.nan)
    cube[bars.get_indexer(signals["bar_ts"]), pd.Index(agents).get_indexer(signals["agent_name"].astype(str)), pd.Index(symbols).get_indexer(signals["symbol"])] = vote
    if len(bars) < 2:
        return pd.DataFrame(columns=agents, dtype=float)
    returns = simulate_books(cube, close, open_, rules, costs=costs)
    return pd.DataFrame(returns, index=bars[:-1], columns=agents)


def _price_table(prices: pd.Series, bars: pd.Index, symbols: list[str], what: str) -> np.ndarray:
    """bars x symbols of one price column; NaN where a symbol has no bar. A present but missing,
    non-finite or non-positive price raises, naming the symbol and the bar."""
    numbers = pd.to_numeric(prices, errors="coerce")
    bad = ~(np.isfinite(numbers.to_numpy(dtype=float)) & (numbers.to_numpy(dtype=float) > 0))
    if bad.any():
        bar_ts, symbol = prices.index[int(np.argmax(bad))]
        raise ValueError(f"{symbol}: {what} {prices.iloc[int(np.argmax(bad))]!r} is not a positive price at bar {pd.Timestamp(bar_ts).isoformat()}")
    return numbers.unstack("symbol").reindex(index=bars, columns=symbols).to_numpy(dtype=float)


def trade_stats(parts: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per agent: attributed P&L (exact), trade count, trade win rate and profit factor.

    ``parts`` has ``agent_name`` and ``pnl`` (Decimal), one row per (realised fill, agent), and
    optionally ``closing``: False marks an entry fee, which counts in the attributed P&L but is not
    a trade won or lost.
    """
    stats: dict[str, dict[str, Any]] = {}
    if parts.empty:
        return stats
    for agent, group in parts.groupby("agent_name", sort=True):
        pnl = [Decimal(v) for v in group["pnl"]]
        closing = group["closing"].astype(bool).tolist() if "closing" in group else [True] * len(pnl)
        trades = [p for p, is_trade in zip(pnl, closing) if is_trade]
        wins = [p for p in trades if p > 0]
        losses = [p for p in trades if p < 0]
        decided = len(wins) + len(losses)
        stats[str(agent)] = {
            "attributed_pnl": sum(pnl, Decimal(0)),
            "trade_count": decided,
            "trade_win_rate": len(wins) / decided if decided else None,
            "trade_profit_factor": float(sum(wins) / -sum(losses)) if losses else None,
        }
    return stats


def streams_table(streams: pd.DataFrame, agents: Sequence[str]) -> pd.DataFrame:
    """``streams.reindex(columns=agents).fillna(0.0)``: one column per agent, in ``agents``' order, 0 where
    an agent has no stream. Built from the array (equal to pandas' result): the walk-forward decides
    every day, and pandas' reindex and fillna cost more than the rest of the day's table work."""
    values = streams.to_numpy(dtype=float)
    position = {name: k for k, name in enumerate(streams.columns)}
    table = np.zeros((len(streams), len(agents)))
    for j, agent in enumerate(agents):
        k = position.get(agent)
        if k is not None:
            column = values[:, k]
            table[:, j] = np.where(np.isnan(column), 0.0, column)
    return pd.DataFrame(table, index=streams.index, columns=list(agents))


def evaluate_agents(
    agents: list[str],
    streams: pd.DataFrame,
    signal_counts: Mapping[str, int],
    trades: Mapping[str, Mapping[str, Any]],
    periods_per_year: float,
    risk_free: float = 0.0,
    min_returns: int = 2,
    min_days: int = MIN_DAYS,
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Performance row per agent plus the ranking, top performers and underperformers.

    Ratios from fewer than ``min_returns`` returns are ``None`` with the reason (metrics module)."""
    frame = streams_table(streams, agents) if len(streams) else pd.DataFrame(columns=agents, dtype=float)
    summaries = summarize_many(
        frame.to_numpy(dtype=float).reshape(len(frame), len(agents)), periods_per_year, risk_free, names=agents,
        min_returns=min_returns, bar_times=frame.index, min_days=min_days,  # bars shorter than a day: metrics.daily_rule
    )
    rows: dict[str, dict[str, Any]] = {}
    for agent in agents:
        trade = trades.get(agent, {})
        rows[agent] = {
            **summaries[agent],
            "returns": len(frame),
            "signal_count": int(signal_counts.get(agent, 0)),
            "trade_count": int(trade.get("trade_count", 0)),
            "attributed_pnl": trade.get("attributed_pnl", Decimal(0)),
            "trade_win_rate": trade.get("trade_win_rate"),
            "trade_profit_factor": trade.get("trade_profit_factor"),
        }
    classification = classify_agents(rows)
    ranking = classification["ranking"]
    for agent in agents:
        rows[agent]["rank"] = ranking.index(agent) + 1
        rows[agent]["is_top_performer"] = agent in classification["top_performers"]
        rows[agent]["is_underperformer"] = agent in classification["underperformers"]
    return rows, dict(classification)


def split_exact(
    pnl: Decimal, contributions: Mapping[str, float], quantum: Decimal = DEFAULT_QUANTUM
) -> dict[str, Decimal]:
    """``attribution.split_pnl`` for a P&L of any precision: the ledger's average-cost P&L can carry
    more decimals than ``quantum``. The whole-quantum part is split as usual and the sub-quantum
    residue goes to the agent with the largest absolute contribution, so the parts sum exactly.
    """
    whole = pnl.quantize(quantum, rounding=ROUND_DOWN)
    parts = split_pnl(whole, contributions, quantum)
    residue = pnl - whole
    if residue:
        biggest = max(parts, key=lambda agent: (abs(contributions.get(agent, 0.0)), agent))
        parts[biggest] += residue
    return parts
