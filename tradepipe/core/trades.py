"""Round trips and profit per period, computed from the ledger's fills: pure, exact, no I/O.

The fills are replayed through :func:`tradepipe.core.ledger.apply_fill`, so every figure uses the
ledger's own accounting (average cost, fees in realised P&L on every fill, a flip closes one trade
and opens the next). Consequences a trader can rely on:

* **A round trip** runs from the fill that opens a position from flat to the fill that brings it
  back to flat (or flips it through zero). Grows and partial exits stay in the same trip.
* ``pnl`` is the trip's *realised* net P&L: the fee of every opening or growing fill (booked when
  paid), plus each exit's ``(price - average) x quantity`` minus its fee, plus the ledger's booked
  average-price rounding. The whole fee of a flipping fill belongs to the trip it closes, as in the
  ledger. So ``sum(trip.pnl) == the book's realised P&L`` exactly, open trips included.
* An open trip's ``unrealized_pnl`` is ``(mark - average) x quantity`` at the given mark, the
  ledger's definition, so the open trips' unrealised P&L adds up to the portfolio's.
* ``entry_price`` is the position's average cost (the ledger's basis) at its last fill; ``exit_price``
  is the quantity-weighted price of the exits; ``quantity`` the largest size held.
* **Periods** are UTC days, ISO weeks (Monday to Sunday, labelled ``2026-W49``) or months. A
  period's realised P&L and fees are those of the fills inside it; its trade count and win rate
  are over trips *closed* in it (a trip whose P&L after fees is > 0 is a win); its unrealised P&L
  is the book's at its last snapshot in the period (positions carried over the period's end).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Iterable, Literal, Mapping, Sequence

from tradepipe.core.ledger import LedgerInvariantError, Portfolio, apply_fill
from tradepipe.core.types import Fill

__all__ = [
    "LedgerFill",
    "PeriodKind",
    "PeriodProfit",
    "RoundTrip",
    "SnapshotPoint",
    "period_label",
    "period_profit",
    "price_places",
    "round_trips",
]

PeriodKind = Literal["daily", "weekly", "monthly"]
_ZERO = Decimal(0)


@dataclass(frozen=True)
class LedgerFill:
    """One recorded fill with the contributions of the order behind it and the P&L the ledger booked."""

    fill_id: int
    fill: Fill
    contributions: Mapping[str, float] = field(default_factory=dict)
    booked_realized_pnl: Decimal | None = None


@dataclass(frozen=True)
class RoundTrip:
    symbol: str
    side: Literal["long", "short"]
    entry_ms: int
    exit_ms: int | None
    entry_price: Decimal
    exit_price: Decimal | None
    quantity: Decimal
    open_quantity: Decimal
    pnl: Decimal
    fees: Decimal
    agents: Mapping[str, float]
    fill_ids: tuple[int, ...]
    mark: Decimal | None = None
    unrealized_pnl: Decimal | None = None

    @property
    def status(self) -> Literal["open", "closed"]:
        return "open" if self.exit_ms is None else "closed"

    def duration_ms(self, as_of_ms: int) -> int:
        return (self.exit_ms if self.exit_ms is not None else as_of_ms) - self.entry_ms

    @property
    def credited_agents(self) -> list[str]:
        """Agents whose vote opened the position (non-zero contribution), largest share first."""
        return [a for a, c in sorted(self.agents.items(), key=lambda kv: (-abs(kv[1]), kv[0])) if c != 0]


@dataclass
class _OpenTrip:
    symbol: str
    side: Literal["long", "short"]
    entry_ms: int
    agents: Mapping[str, float]
    quantity: Decimal = _ZERO
    pnl: Decimal = _ZERO
    fees: Decimal = _ZERO
    exit_quantity: Decimal = _ZERO
    exit_value: Decimal = _ZERO
    average: Decimal = _ZERO
    fill_ids: list[int] = field(default_factory=list)

    def finish(self, exit_ms: int | None, open_quantity: Decimal) -> RoundTrip:
        exit_price = self.exit_value / self.exit_quantity if self.exit_quantity else None
        return RoundTrip(
            symbol=self.symbol,
            side=self.side,
            entry_ms=self.entry_ms,
            exit_ms=exit_ms,
            entry_price=self.average,
            exit_price=exit_price,
            quantity=self.quantity,
            open_quantity=open_quantity,
            pnl=self.pnl,
            fees=self.fees,
            agents=dict(self.agents),
            fill_ids=tuple(self.fill_ids),
        )


def round_trips(fills: Sequence[LedgerFill], marks: Mapping[str, Decimal] | None = None) -> list[RoundTrip]:
    """Every round trip of a book, oldest entry first; open trips valued at ``marks`` when given.

    ``fills`` must be the book's fills in the order the ledger applied them (record order). When a
    fill carries the P&L the ledger booked and the replay disagrees, :class:`LedgerInvariantError`
    is raised: a figure that does not match the books is never shown.
    """
    portfolio = Portfolio(cash=_ZERO)
    trips: dict[str, _OpenTrip] = {}
    done: list[RoundTrip] = []
    for recorded in fills:
        fill = recorded.fill
        before = portfolio.positions.get(fill.symbol)
        portfolio, realization = apply_fill(portfolio, fill, recorded.contributions)
        realized = realization.realized_pnl if realization else _ZERO
        if recorded.booked_realized_pnl is not None and recorded.booked_realized_pnl != realized:
            raise LedgerInvariantError(
                f"fill {recorded.fill_id} ({fill.symbol} {fill.side} {fill.quantity} @ {fill.price}): the ledger booked "
                f"realised P&L {recorded.booked_realized_pnl}, replaying the fills gives {realized}"
            )
        after = portfolio.positions.get(fill.symbol)
        held = before.quantity if before else _ZERO
        trip = trips.get(fill.symbol)
        if trip is None:  # opens from flat
            trip = _new_trip(fill, recorded.contributions)
            trips[fill.symbol] = trip
        trip.fill_ids.append(recorded.fill_id)
        trip.pnl += realized
        trip.fees += fill.fee
        if realization is not None and realization.quantity_closed > 0:
            trip.exit_quantity += realization.quantity_closed
            trip.exit_value += realization.quantity_closed * fill.price
        if held != 0 and (after is None or (after.quantity > 0) != (held > 0)):
            done.append(trip.finish(fill.fill_ms, _ZERO))
            del trips[fill.symbol]
            if after is not None:  # flipped through zero: the rest opens a new trip at the fill price
                flipped = _new_trip(fill, recorded.contributions)
                flipped.fill_ids.append(recorded.fill_id)
                flipped.quantity, flipped.average = abs(after.quantity), after.average_price
                trips[fill.symbol] = flipped
            continue
        assert after is not None
        trip.quantity = max(trip.quantity, abs(after.quantity))
        trip.average = after.average_price
    for symbol, trip in trips.items():
        position = portfolio.positions[symbol]
        finished = trip.finish(None, abs(position.quantity))
        mark = (marks or {}).get(symbol)
        if mark is not None:
            finished = replace(finished, mark=mark, unrealized_pnl=(mark - position.average_price) * position.quantity)
        done.append(finished)
    return sorted(done, key=lambda t: (t.entry_ms, t.fill_ids[0]))


def _new_trip(fill: Fill, contributions: Mapping[str, float]) -> _OpenTrip:
    return _OpenTrip(
        symbol=fill.symbol,
        side="long" if fill.side == "buy" else "short",
        entry_ms=fill.fill_ms,
        agents=dict(contributions),
        average=fill.price,
    )


# --- profit per period ---------------------------------------------------------------------


@dataclass(frozen=True)
class SnapshotPoint:
    """The book after one cycle: what the ledger valued it at."""

    bar_ms: int
    equity: Decimal
    unrealized_pnl: Decimal


@dataclass(frozen=True)
class PeriodProfit:
    period: str
    start: date
    realized_pnl: Decimal
    unrealized_pnl: Decimal | None
    fees: Decimal
    trades: int
    wins: int
    equity_end: Decimal | None
    closed_trades_pnl: Decimal = _ZERO
    """Whole P&L after fees of the trades closed in the period (their earlier partial closes included)."""
    open_trades_realized_pnl: Decimal = _ZERO
    """Part of ``realized_pnl`` from trades still open at the period's end: partial closes and entry fees."""

    @property
    def win_rate(self) -> float | None:
        """Share of the trips closed in the period that won; None when none closed (no rate from nothing)."""
        return self.wins / self.trades if self.trades else None


def _utc_day(ms: int) -> date:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).date()


def period_start(day: date, kind: PeriodKind) -> date:
    if kind == "daily":
        return day
    if kind == "weekly":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def period_label(start: date, kind: PeriodKind) -> str:
    if kind == "daily":
        return start.isoformat()
    if kind == "weekly":
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    return start.strftime("%Y-%m")


def period_profit(
    fills: Sequence[LedgerFill], trips: Iterable[RoundTrip], snapshots: Sequence[SnapshotPoint], kind: PeriodKind
) -> list[PeriodProfit]:
    """Profit per period, oldest first, for every period with a fill, a closed trip or a snapshot.

    ``trips`` are :func:`round_trips` of the same fills; ``snapshots`` in bar order. Summed over the
    periods, ``realized_pnl`` equals the book's realised P&L and ``fees`` its fees, exactly.
    """
    realized_by_fill = _realized_by_fill(fills)
    realized: dict[date, Decimal] = {}
    fees: dict[date, Decimal] = {}
    for recorded in fills:
        key = period_start(_utc_day(recorded.fill.fill_ms), kind)
        realized[key] = realized.get(key, _ZERO) + realized_by_fill[recorded.fill_id]
        fees[key] = fees.get(key, _ZERO) + recorded.fill.fee
    closed: dict[date, list[RoundTrip]] = {}
    trip_of: dict[int, RoundTrip] = {}
    for trip in trips:
        if trip.exit_ms is not None:
            closed.setdefault(period_start(_utc_day(trip.exit_ms), kind), []).append(trip)
        for fill_id in trip.fill_ids:
            trip_of.setdefault(fill_id, trip)  # a flipping fill realises for the trip it closes
    still_open: dict[date, Decimal] = {}
    for recorded in fills:
        key = period_start(_utc_day(recorded.fill.fill_ms), kind)
        owner = trip_of.get(recorded.fill_id)
        if owner is None or owner.exit_ms is None or period_start(_utc_day(owner.exit_ms), kind) != key:
            still_open[key] = still_open.get(key, _ZERO) + realized_by_fill[recorded.fill_id]
    last_snapshot: dict[date, SnapshotPoint] = {}
    for point in snapshots:
        last_snapshot[period_start(_utc_day(point.bar_ms), kind)] = point
    periods = sorted(set(realized) | set(closed) | set(last_snapshot))
    result = []
    for start in periods:
        snapshot = last_snapshot.get(start)
        in_period = closed.get(start, [])
        result.append(
            PeriodProfit(
                period=period_label(start, kind),
                start=start,
                realized_pnl=realized.get(start, _ZERO),
                unrealized_pnl=snapshot.unrealized_pnl if snapshot else None,
                fees=fees.get(start, _ZERO),
                trades=len(in_period),
                wins=sum(1 for t in in_period if t.pnl > 0),
                equity_end=snapshot.equity if snapshot else None,
                closed_trades_pnl=sum((t.pnl for t in in_period), _ZERO),
                open_trades_realized_pnl=still_open.get(start, _ZERO),
            )
        )
    return result


def _realized_by_fill(fills: Sequence[LedgerFill]) -> dict[int, Decimal]:
    """Realised P&L of each fill by the ledger's rules (replayed, so it needs no booked column)."""
    portfolio = Portfolio(cash=_ZERO)
    booked: dict[int, Decimal] = {}
    for recorded in fills:
        portfolio, realization = apply_fill(portfolio, recorded.fill, recorded.contributions)
        booked[recorded.fill_id] = realization.realized_pnl if realization else _ZERO
    return booked


def price_places(prices: Iterable[Decimal], at_least: int = 2) -> int:
    """Decimal places of the finest price seen: fill prices sit on the market's tick, so this is the tick."""
    places = at_least
    for price in prices:
        exponent = price.normalize().as_tuple().exponent
        if isinstance(exponent, int):
            places = max(places, -exponent)
    return places
