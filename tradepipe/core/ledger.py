"""Exact portfolio accounting: fills in, cash, positions and realised P&L out.

Pure (no Dagster, no I/O) and exact: every amount is a ``Decimal``, and every operation but one
runs in a context that *traps* inexact results, so a rounding that would break the books raises
instead of drifting. The one rounding is the average price (below), and it is booked.

Accounting choices:

* **Cash.** A buy pays ``notional + fee``; a sell receives ``notional - fee``.
* **Average cost.** Growing a position (same direction) moves its ``average_price`` to the
  quantity-weighted average of the fill prices; shrinking it leaves the average unchanged.
  A quotient like 5/3 does not terminate, so the new average is rounded to
  ``AVERAGE_PRICE_DECIMALS`` places and the difference between the cost actually paid and
  ``average_price x quantity`` is booked to realised P&L at once (at most half a unit in the 12th
  decimal per unit held). That keeps the identity below exact.
* **Fees are part of realised P&L (net P&L), on every fill.** The fee of a fill that opens or
  grows a position is realised when paid, as a fee-only :class:`Realization` (``quantity_closed``
  0); the fee of a fill that shrinks, closes or flips a position is subtracted from that trade's
  realised P&L. So, exactly, for any sequence of fills from a starting cash:
  ``cash + sum(quantity x mark) == starting cash + realized_pnl + sum((mark - average) x quantity)``
  and the realisations returned add up to ``realized_pnl``.
* **Attribution by the opening decision.** A position keeps the ``opening_contributions`` of the
  decision that opened it from flat; fills that grow or shrink it do not change them (docs/architecture.md
  attributes a trade to the ensemble signal that opened the position). Every realisation,
  fee-only ones included, carries those contributions. Flipping through zero closes the old
  position (realised against the old contributions; the whole fee of the flipping fill is charged
  there: one fill, one realisation) and opens a new one with the new contributions at the fill price.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    localcontext,
)
from typing import Literal, Mapping

from tradepipe.core.types import Fill, Position

__all__ = [
    "AVERAGE_PRICE_DECIMALS",
    "LedgerInvariantError",
    "Portfolio",
    "Realization",
    "Valuation",
    "apply_fill",
    "check_equity_invariant",
    "check_pnl_identity",
    "mark_to_market",
]

AVERAGE_PRICE_DECIMALS = 12
_AVERAGE_QUANTUM = Decimal(1).scaleb(-AVERAGE_PRICE_DECIMALS)
_EXACT = Context(prec=80, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow, Inexact])
_ROUNDING = Context(prec=80, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow])
_ZERO = Decimal(0)

RealizationKind = Literal["open", "increase", "reduce", "close", "flip"]


class LedgerInvariantError(RuntimeError):
    """The books do not balance: a bug, never a market event."""


@dataclass(frozen=True)
class Portfolio:
    """Cash and open positions (``quantity`` signed: negative is short), cumulative realised P&L and fees."""

    cash: Decimal
    positions: Mapping[str, Position] = field(default_factory=dict)
    realized_pnl: Decimal = _ZERO
    fees_paid: Decimal = _ZERO


@dataclass(frozen=True)
class Realization:
    """P&L one fill realised: ``realized_pnl = gross_pnl - fee``.

    ``gross_pnl`` is ``(price - average) x quantity_closed`` (sign flipped for a short); on a fill
    that opens or grows a position it is only the booked rounding of the new average price
    (usually 0) and ``quantity_closed`` is 0. ``opening_contributions`` are those of the decision
    that opened the position the P&L belongs to.
    """

    symbol: str
    quantity_closed: Decimal
    realized_pnl: Decimal
    opening_contributions: Mapping[str, float]
    fill_ms: int
    client_order_id: str
    gross_pnl: Decimal
    fee: Decimal
    kind: RealizationKind


@dataclass(frozen=True)
class Valuation:
    """The portfolio at given marks: ``equity = cash + positions_value``."""

    cash: Decimal
    positions_value: Decimal
    equity: Decimal
    unrealized_pnl: Decimal


@dataclass(frozen=True)
class _Trade:
    """What a fill does to one position: the position after it and the P&L it realises before fees."""

    position: Position | None
    gross_pnl: Decimal
    quantity_closed: Decimal
    kind: RealizationKind
    opening_contributions: Mapping[str, float]


def apply_fill(
    portfolio: Portfolio, fill: Fill, contributions: Mapping[str, float]
) -> tuple[Portfolio, Realization | None]:
    """The portfolio after ``fill``, and the P&L it realised (None if it realised exactly nothing).

    ``contributions`` are the ensemble contributions behind the order; they are kept only if the
    fill opens a position (from flat, or the new side of a flip). See the module docstring.
    """
    with localcontext(_EXACT):
        signed = fill.quantity if fill.side == "buy" else -fill.quantity
        cash_flow = -fill.notional - fill.fee if fill.side == "buy" else fill.notional - fill.fee
        trade = _trade(portfolio.positions.get(fill.symbol), signed, fill, contributions)
        positions = dict(portfolio.positions)
        if trade.position is None:
            positions.pop(fill.symbol, None)
        else:
            positions[fill.symbol] = trade.position
        realized = trade.gross_pnl - fill.fee
        after = Portfolio(
            cash=portfolio.cash + cash_flow,
            positions=positions,
            realized_pnl=portfolio.realized_pnl + realized,
            fees_paid=portfolio.fees_paid + fill.fee,
        )
    if trade.quantity_closed == 0 and realized == 0:
        return after, None
    return after, Realization(
        symbol=fill.symbol,
        quantity_closed=trade.quantity_closed,
        realized_pnl=realized,
        opening_contributions=dict(trade.opening_contributions),
        fill_ms=fill.fill_ms,
        client_order_id=fill.client_order_id,
        gross_pnl=trade.gross_pnl,
        fee=fill.fee,
        kind=trade.kind,
    )


def _trade(held: Position | None, signed: Decimal, fill: Fill, contributions: Mapping[str, float]) -> _Trade:
    """Average-cost bookkeeping of one signed fill quantity against the held position."""
    if held is None or held.quantity == 0:
        opened = Position(fill.symbol, signed, fill.price, dict(contributions), fill.fill_ms)
        return _Trade(opened, _ZERO, _ZERO, "open", opened.opening_contributions)
    if (held.quantity > 0) == (signed > 0):
        return _grow(held, signed, fill.price)
    closed = min(abs(signed), abs(held.quantity))
    gross = (fill.price - held.average_price) * closed * (1 if held.quantity > 0 else -1)
    remaining = held.quantity + signed
    if remaining == 0:
        return _Trade(None, gross, closed, "close", held.opening_contributions)
    if (remaining > 0) == (held.quantity > 0):
        shrunk = Position(held.symbol, remaining, held.average_price, held.opening_contributions, held.opened_ms)
        return _Trade(shrunk, gross, closed, "reduce", held.opening_contributions)
    flipped = Position(fill.symbol, remaining, fill.price, dict(contributions), fill.fill_ms)
    return _Trade(flipped, gross, closed, "flip", held.opening_contributions)


def _grow(held: Position, signed: Decimal, price: Decimal) -> _Trade:
    """Same-direction fill: weighted average price; its rounding is booked as P&L (see module docstring)."""
    quantity = held.quantity + signed
    paid = held.quantity * held.average_price + signed * price  # signed: a short's is negative
    average = _average_price(paid, quantity)
    booked = average * quantity - paid  # > 0: the basis overstates the cost, so the gain is realised now
    grown = Position(held.symbol, quantity, average, held.opening_contributions, held.opened_ms)
    return _Trade(grown, booked, _ZERO, "increase", held.opening_contributions)


def _average_price(paid: Decimal, quantity: Decimal) -> Decimal:
    """``paid / quantity``, exact if it terminates within ``AVERAGE_PRICE_DECIMALS`` places, else rounded there."""
    with localcontext(_ROUNDING):
        average = paid / quantity
        exponent = average.as_tuple().exponent
        if isinstance(exponent, int) and exponent < -AVERAGE_PRICE_DECIMALS:
            average = average.quantize(_AVERAGE_QUANTUM)
        return average


def mark_to_market(portfolio: Portfolio, marks: Mapping[str, Decimal]) -> Valuation:
    """Value the portfolio at ``marks`` (every open position needs one; ValueError otherwise)."""
    open_positions = {s: p for s, p in portfolio.positions.items() if p.quantity != 0}
    missing = sorted(s for s in open_positions if s not in marks)
    if missing:
        raise ValueError(f"no mark for open position(s) {missing}: cannot value the portfolio")
    with localcontext(_EXACT):
        value = sum((p.quantity * marks[s] for s, p in open_positions.items()), _ZERO)
        unrealized = sum(((marks[s] - p.average_price) * p.quantity for s, p in open_positions.items()), _ZERO)
        return Valuation(portfolio.cash, value, portfolio.cash + value, unrealized)


def check_equity_invariant(valuation: Valuation, portfolio: Portfolio, marks: Mapping[str, Decimal]) -> None:
    """Raise :class:`LedgerInvariantError` unless ``valuation.equity == cash + sum(quantity x mark)`` exactly."""
    with localcontext(_EXACT):
        value = sum((p.quantity * marks[s] for s, p in portfolio.positions.items() if p.quantity != 0), _ZERO)
        expected = portfolio.cash + value
        problems = []
        if valuation.equity != expected:
            problems.append(f"equity {valuation.equity} != cash {portfolio.cash} + positions {value} = {expected}")
        if valuation.cash != portfolio.cash:
            problems.append(f"valuation cash {valuation.cash} != portfolio cash {portfolio.cash}")
        if valuation.equity != valuation.cash + valuation.positions_value:
            problems.append(f"equity {valuation.equity} != its cash {valuation.cash} + positions {valuation.positions_value}")
    if problems:
        raise LedgerInvariantError("; ".join(problems))


def check_pnl_identity(portfolio: Portfolio, marks: Mapping[str, Decimal], starting_cash: Decimal) -> None:
    """Raise :class:`LedgerInvariantError` unless equity == starting cash + realised + unrealised P&L exactly.

    Holds for a book funded once with ``starting_cash`` and changed only by :func:`apply_fill`.
    """
    valuation = mark_to_market(portfolio, marks)
    with localcontext(_EXACT):
        expected = starting_cash + portfolio.realized_pnl + valuation.unrealized_pnl
    if valuation.equity != expected:
        raise LedgerInvariantError(
            f"equity {valuation.equity} != starting cash {starting_cash} + realised {portfolio.realized_pnl}"
            f" + unrealised {valuation.unrealized_pnl} = {expected}"
        )
