"""Backtest and walk-forward results as a trader reads them: per pair, exit reasons, summary, breakdown.

Pure functions over the fills a book traded (round trips from :mod:`tradepipe.core.trades`), as the
ledger recorded them (``tradepipe backtest``) or the walk-forward engine kept them, and the equity curve; the ratios come from :func:`tradepipe.core.metrics.summarize`, so a Sharpe here is the
Sharpe everywhere else.

Units of every results document (``results_document``; also what ``tradepipe results`` reads):
- keys ending ``_pct`` are percentages (``8.42`` means 8.42 %);
- keys ending ``_quote`` are money in the book's quote currency at full precision (JSON numbers);
- keys ending ``_seconds`` are seconds; times are ISO 8601 UTC strings (``...Z``);
- ``sharpe``, ``sortino`` and ``calmar`` are annualised ratios (365-day year, every bar counted);
- ``turnover_per_year`` is traded notional per year as a multiple of the mean equity.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, Literal

import numpy as np

from tradepipe.core.metrics import summarize
from tradepipe.core.timeframes import iso_utc
from tradepipe.core.trades import LedgerFill, PeriodKind, RoundTrip, period_label, period_start, round_trips

ExitReason = Literal["signal", "stop_loss", "risk_cap", "expiry"]
EXIT_REASONS: tuple[ExitReason, ...] = ("signal", "stop_loss", "risk_cap", "expiry")
EXIT_REASON_MEANING = {
    "signal": "the ensemble's target closed the position",
    "stop_loss": "the stop-loss closed the position (order reason 'stop-loss: ...')",
    "risk_cap": "a risk limit cut the closing order below what the ensemble asked for by more than 1%",
    "expiry": "still open when the data ended: valued at the last mark, not closed",
}
# Rounding an order to the exchange's amount step trims well under 1 %; a risk cap cuts more.
_RISK_CAP_CUT = Decimal("0.99")
RESULTS_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ClosingOrder:
    """The order whose fill closed a round trip, as the ledger recorded it."""

    reason: str
    requested_quantity: Decimal
    quantity: Decimal


def exit_reason(trip: RoundTrip, closing: ClosingOrder | None) -> ExitReason:
    if trip.exit_ms is None:
        return "expiry"
    if closing is None:
        return "signal"
    if closing.reason.startswith("stop-loss"):
        return "stop_loss"
    if closing.requested_quantity > 0 and closing.quantity < closing.requested_quantity * _RISK_CAP_CUT:
        return "risk_cap"
    return "signal"


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def _pct(fraction: float | None) -> float | None:
    return None if fraction is None or not math.isfinite(fraction) else fraction * 100.0


def _trip_group(trips: Sequence[RoundTrip], as_of_ms: int, starting_cash: Decimal) -> dict[str, Any]:
    """Counts and sums of a group of trips. Profit is realised P&L after fees (partial closes of open trips included)."""
    closed = [t for t in trips if t.exit_ms is not None]
    wins = sum(1 for t in closed if t.pnl > 0)
    losses = sum(1 for t in closed if t.pnl < 0)
    profit = sum((t.pnl for t in trips), Decimal(0))
    durations = [t.duration_ms(as_of_ms) / 1000 for t in closed]
    return {
        "trades": len(closed),
        "open": len(trips) - len(closed),
        "wins": wins,
        "draws": len(closed) - wins - losses,
        "losses": losses,
        "win_rate_pct": _pct(_ratio(wins, len(closed))),
        "avg_duration_seconds": sum(durations) / len(durations) if durations else None,
        "profit_quote": float(profit),
        "profit_pct": float(profit / starting_cash * 100) if starting_cash else None,
        "avg_profit_quote": float(sum((t.pnl for t in closed), Decimal(0)) / len(closed)) if closed else None,
        "fees_quote": float(sum((t.fees for t in trips), Decimal(0))),
    }


def grouped_table(
    trips: Sequence[RoundTrip], key: Callable[[RoundTrip], str], column: str, as_of_ms: int, starting_cash: Decimal
) -> list[dict[str, Any]]:
    """One row per value of ``key`` (alphabetical), named in ``column``, and a last row ``TOTAL``."""
    values = sorted({key(t) for t in trips})
    rows = [{column: v, **_trip_group([t for t in trips if key(t) == v], as_of_ms, starting_cash)} for v in values]
    return rows + [{column: "TOTAL", **_trip_group(trips, as_of_ms, starting_cash)}]


def pair_table(trips: Sequence[RoundTrip], as_of_ms: int, starting_cash: Decimal) -> list[dict[str, Any]]:
    """One row per pair (alphabetical) and a last row ``TOTAL``."""
    return grouped_table(trips, lambda t: t.symbol, "pair", as_of_ms, starting_cash)


def exit_reason_table(
    trips: Sequence[RoundTrip], reasons: Sequence[ExitReason], as_of_ms: int, starting_cash: Decimal
) -> list[dict[str, Any]]:
    """One row per exit reason (all four, in a fixed order); ``reasons[i]`` is the reason of ``trips[i]``.

    An open trip counts under ``expiry`` with ``trades`` 0 and ``open`` 1: only closed trips are trades.
    """
    return [
        {"exit_reason": r, **_trip_group([t for t, why in zip(trips, reasons, strict=True) if why == r], as_of_ms, starting_cash)}
        for r in EXIT_REASONS
    ]


def curve_returns(equity: Sequence[float] | np.ndarray, starting_cash: float) -> np.ndarray:
    """Per-bar simple returns of an equity curve that starts from ``starting_cash`` before its first bar."""
    values = np.asarray(equity, dtype=float)
    previous = np.concatenate([[starting_cash], values[:-1]])
    return values / previous - 1.0


def drawdown_span(bar_ms: Sequence[int], equity: Sequence[float], starting_cash: float) -> dict[str, Any]:
    """The deepest fall from a running peak: its size and the bars of the peak, the trough and the recovery.

    The starting cash counts as a peak before the first bar (then the peak time is the first bar's).
    """
    values = np.asarray(equity, dtype=float)
    if values.size == 0:
        return {"max_drawdown_pct": 0.0, "peak": None, "trough": None, "recovered": None}
    with_start = np.concatenate([[starting_cash], values])
    peaks = np.maximum.accumulate(with_start)
    falls = with_start / peaks - 1.0
    trough = int(np.argmin(falls))
    if falls[trough] >= 0:
        return {"max_drawdown_pct": 0.0, "peak": None, "trough": None, "recovered": None}
    peak = int(np.flatnonzero(with_start[: trough + 1] == peaks[trough])[-1])
    after = np.flatnonzero(with_start[trough:] >= peaks[trough])
    times = [int(bar_ms[0]), *map(int, bar_ms)]  # index 0 is the starting cash, before the first bar
    return {
        "max_drawdown_pct": float(falls[trough] * 100.0),
        "peak": iso_utc(times[peak]),
        "trough": iso_utc(times[trough]),
        "recovered": iso_utc(times[trough + int(after[0])]) if after.size else None,
    }


def equity_summary(
    bar_ms: Sequence[int],
    equity: Sequence[float],
    starting_cash: float,
    periods_per_year: float,
    *,
    exposed: Sequence[bool] | None,
    traded_notional: float,
    fees: float,
) -> dict[str, Any]:
    """The summary block: returns, CAGR, Sharpe, Sortino, Calmar, drawdown with dates, exposure, turnover, fees."""
    values = np.asarray(equity, dtype=float)
    n = int(values.size)
    figures = summarize(curve_returns(values, starting_cash), periods_per_year) if n else None
    total = float(values[-1] / starting_cash - 1.0) if n else 0.0
    cagr = (1.0 + total) ** (periods_per_year / n) - 1.0 if n and total > -1.0 else None
    mean_equity = float(values.mean()) if n else 0.0
    return {
        "bars": n,
        "first_bar": iso_utc(int(bar_ms[0])) if n else None,
        "last_bar": iso_utc(int(bar_ms[-1])) if n else None,
        "starting_cash_quote": starting_cash,
        "final_equity_quote": float(values[-1]) if n else starting_cash,
        "profit_quote": float(values[-1] - starting_cash) if n else 0.0,
        "total_return_pct": total * 100.0,
        "cagr_pct": _pct(cagr),
        "sharpe": figures["sharpe"] if figures else None,
        "sortino": figures["sortino"] if figures else None,
        "calmar": figures["calmar"] if figures else None,
        **drawdown_span(bar_ms, values.tolist(), starting_cash),
        "exposure_pct": _pct(float(np.mean(np.asarray(exposed, dtype=bool)))) if exposed is not None and n else None,
        "turnover_per_year": traded_notional / mean_equity * periods_per_year / n if n and mean_equity > 0 else None,
        "fees_quote": fees,
        "null_reasons": dict(figures["null_reasons"]) if figures else {},
    }


def _utc_day(ms: int) -> date:
    return datetime.fromtimestamp(ms // 1000, tz=timezone.utc).date()


def equity_breakdown(bar_ms: Sequence[int], equity: Sequence[float], starting_cash: float, kind: PeriodKind) -> list[dict[str, Any]]:
    """Profit and return per UTC day, ISO week or month, from the equity at each period's last bar."""
    ends: dict[date, float] = {}
    for ms, value in zip(bar_ms, equity, strict=True):
        ends[period_start(_utc_day(int(ms)), kind)] = float(value)
    rows = []
    before = starting_cash
    for start in sorted(ends):
        end = ends[start]
        rows.append({
            "period": period_label(start, kind), "equity_start_quote": before, "equity_end_quote": end,
            "profit_quote": end - before, "return_pct": (end / before - 1.0) * 100.0 if before else None,
        })
        before = end
    return rows


def trip_breakdown(trips: Sequence[RoundTrip], kind: PeriodKind) -> dict[str, dict[str, Any]]:
    """Per period label: trades closed in it (counted on the day they close), their wins and whole-trip profit."""
    rows: dict[str, dict[str, Any]] = {}
    for trip in trips:
        if trip.exit_ms is None:
            continue
        label = period_label(period_start(_utc_day(trip.exit_ms), kind), kind)
        row = rows.setdefault(label, {"trades": 0, "wins": 0, "closed_trades_profit_quote": 0.0})
        row["trades"] += 1
        row["wins"] += int(trip.pnl > 0)
        row["closed_trades_profit_quote"] += float(trip.pnl)
    return rows


UNITS = {
    "*_pct": "percent (8.42 means 8.42 %)",
    "*_quote": "money in the book's quote currency, full precision",
    "*_seconds": "seconds",
    "times": "ISO 8601 UTC",
    "sharpe, sortino, calmar": "annualised ratios (365-day year)",
    "turnover_per_year": "traded notional per year / mean equity",
}


def exposed_bars(bar_ms: Sequence[int], trips: Sequence[RoundTrip]) -> np.ndarray:
    """Per bar: whether the book held a position after that bar's cycle, from its round trips.

    A fill at a bar's open is applied by that bar's cycle, so a trip holds from its entry bar up to,
    not including, its exit bar (an open trip to the end)."""
    bars = np.asarray(bar_ms, dtype=np.int64)
    held = np.zeros(bars.size, dtype=bool)
    for trip in trips:
        first = int(np.searchsorted(bars, trip.entry_ms, side="left"))
        last = bars.size if trip.exit_ms is None else int(np.searchsorted(bars, trip.exit_ms, side="left"))
        held[first:last] = True
    return held


def _book_tables(
    *,
    periods_per_year: float,
    starting_cash: Decimal,
    fills: Sequence[LedgerFill],
    trips: Sequence[RoundTrip],
    closing_orders: Mapping[int, ClosingOrder],
    bar_ms: Sequence[int],
    equity: Sequence[float],
    exposed: Sequence[bool],
    as_of_ms: int,
    breakdown: PeriodKind | None,
) -> dict[str, Any]:
    """Summary, per-pair and exit-reason tables and the breakdown of one book that traded ``fills``.

    A closed trip's exit reason is read from the order of its last fill (``closing_orders`` by fill id)."""
    reasons = [exit_reason(t, closing_orders.get(t.fill_ids[-1]) if t.exit_ms is not None else None) for t in trips]
    summary = equity_summary(
        bar_ms, equity, float(starting_cash), periods_per_year, exposed=exposed,
        traded_notional=float(sum((f.fill.notional for f in fills), Decimal(0))),
        fees=float(sum((f.fill.fee for f in fills), Decimal(0))),
    )
    closed = [t for t in trips if t.exit_ms is not None]
    summary["trades"] = len(closed)
    summary["win_rate_pct"] = _pct(_ratio(sum(1 for t in closed if t.pnl > 0), len(closed)))
    rows = None
    if breakdown:
        counts = trip_breakdown(trips, breakdown)
        empty = {"trades": 0, "wins": 0, "closed_trades_profit_quote": 0.0}
        rows = [{**row, **counts.get(row["period"], empty)} for row in equity_breakdown(bar_ms, equity, float(starting_cash), breakdown)]
    return {
        "summary": summary,
        "pairs": pair_table(trips, as_of_ms, starting_cash),
        "exit_reasons": exit_reason_table(trips, reasons, as_of_ms, starting_cash),
        "breakdown_rows": rows,
    }


def book_results(
    *,
    name: str,
    book: str,
    quote_currency: str,
    timeframe: str,
    periods_per_year: float,
    starting_cash: Decimal,
    fills: Sequence[LedgerFill],
    trips: Sequence[RoundTrip],
    closing_orders: Mapping[int, ClosingOrder],
    curve: Sequence[tuple[int, Decimal, Decimal]],
    as_of_ms: int,
    breakdown: PeriodKind | None = None,
) -> dict[str, Any]:
    """The results document of a book the trading cycle wrote (``tradepipe backtest``).

    ``curve`` is (bar ms, equity, positions value) per cycle; a closed trip's exit reason is read from
    the order of its last fill (``closing_orders`` by fill id).
    """
    tables = _book_tables(
        periods_per_year=periods_per_year, starting_cash=starting_cash, fills=fills, trips=trips, closing_orders=closing_orders,
        bar_ms=[ms for ms, _, _ in curve], equity=[float(e) for _, e, _ in curve], exposed=[v != 0 for _, _, v in curve],
        as_of_ms=as_of_ms, breakdown=breakdown,
    )
    return {
        "schema_version": RESULTS_SCHEMA_VERSION,
        "kind": "backtest",
        "name": name,
        "book": book,
        "quote_currency": quote_currency,
        "timeframe": timeframe,
        "units": UNITS,
        "exit_reason_meaning": EXIT_REASON_MEANING,
        "summary": tables["summary"],
        "pairs": tables["pairs"],
        "exit_reasons": tables["exit_reasons"],
        "breakdown": {"kind": breakdown, "rows": tables["breakdown_rows"]} if breakdown else None,
    }


@dataclass(frozen=True)
class TradedBook:
    """One walk-forward book as the engine traded it: its fills in the order applied (with the order
    behind each, by fill id), its equity after each bar's cycle and the marks of what it still holds."""

    fills: Sequence[LedgerFill]
    closing_orders: Mapping[int, ClosingOrder]
    equity: Sequence[float]
    marks: Mapping[str, Decimal]


def strategy_results(
    *,
    name: str,
    quote_currency: str,
    timeframe: str,
    periods_per_year: float,
    starting_cash: Decimal,
    bar_ms: Sequence[int],
    books: Mapping[str, TradedBook],
    untraded: Mapping[str, Mapping[str, Any]],
    breakdown: PeriodKind | None = None,
) -> dict[str, Any]:
    """The results document of a walk-forward: per book, the tables ``book_results`` gives a backtest.

    ``books`` are the engine's books (their fills give the per-pair and exit-reason tables; exposure is
    read from their round trips). ``untraded[key]`` (buy-and-hold: priced, not cycled) holds ``equity``
    and ``traded`` per bar and ``fees`` in total: the summary block only, and no ``pairs`` or ``exit_reasons``.
    ``strategies``, ``pairs``, ``exit_reasons`` and the breakdown's ``rows`` are keyed by strategy.
    """
    summaries: dict[str, Any] = {}
    pairs: dict[str, Any] = {}
    exits: dict[str, Any] = {}
    periods: dict[str, Any] = {}
    as_of_ms = int(bar_ms[-1]) if len(bar_ms) else 0
    for key, book in books.items():
        trips = round_trips(book.fills, book.marks)
        tables = _book_tables(
            periods_per_year=periods_per_year, starting_cash=starting_cash, fills=book.fills, trips=trips,
            closing_orders=book.closing_orders, bar_ms=bar_ms, equity=list(map(float, book.equity)),
            exposed=exposed_bars(bar_ms, trips).tolist(), as_of_ms=as_of_ms, breakdown=breakdown,
        )
        summaries[key], pairs[key], exits[key], periods[key] = tables["summary"], tables["pairs"], tables["exit_reasons"], tables["breakdown_rows"]
    for key, s in untraded.items():
        equity = list(map(float, s["equity"]))
        summaries[key] = equity_summary(bar_ms, equity, float(starting_cash), periods_per_year, exposed=None,
                                        traded_notional=float(np.sum(s["traded"])), fees=float(s["fees"]))
        if breakdown:
            periods[key] = equity_breakdown(bar_ms, equity, float(starting_cash), breakdown)
    return {
        "schema_version": RESULTS_SCHEMA_VERSION,
        "kind": "walkforward",
        "name": name,
        "quote_currency": quote_currency,
        "timeframe": timeframe,
        "units": UNITS,
        "exit_reason_meaning": EXIT_REASON_MEANING,
        "strategies": summaries,
        "pairs": pairs,
        "exit_reasons": exits,
        "breakdown": {"kind": breakdown, "rows": periods} if breakdown else None,
    }
