"""Invariants of the ledger, as pure functions: orders within the risk limits, the book replayed from its
fills, attribution parts summing to each trade's P&L. Plain data in, a list of violations out (empty:
the invariant holds). Money is compared exactly (``Decimal``); caps allow a relative 1e-9 for the
rounding of a ``Decimal`` division.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from tradepipe.core.risk import RiskLimits

_TOLERANCE = Decimal("1e-9")
_ZERO = Decimal(0)


@dataclass(frozen=True)
class PlacedOrder:
    """An order the risk manager let through (``reference_price``: the mark it was sized at)."""

    symbol: str
    side: str  # "buy" | "sell"
    quantity: Decimal
    reference_price: Decimal
    reason: str = ""

    @property
    def signed(self) -> Decimal:
        return self.quantity if self.side == "buy" else -self.quantity

    @property
    def is_stop_loss(self) -> bool:
        return self.reason.startswith("stop-loss")


def _within(value: Decimal, cap: Decimal) -> bool:
    return value <= cap * (1 + _TOLERANCE)


def order_limit_violations(
    orders: Sequence[PlacedOrder],
    positions: Mapping[str, Decimal],
    marks: Mapping[str, Decimal],
    equity: Decimal,
    limits: RiskLimits,
    halted: bool = False,
) -> list[str]:
    """What in one cycle's ``orders`` breaks ``limits``, given the book they were sized on (signed
    ``positions``, ``marks`` and ``equity`` of that cycle's snapshot). Reducing a position is always
    allowed (the risk manager trims positions that outgrew a limit); stop-losses are exempt from
    the turnover cap but use it up first."""
    violations: list[str] = []
    after = dict(positions)
    for order in orders:
        after[order.symbol] = after.get(order.symbol, _ZERO) + order.signed
    for order in orders:
        before, now = positions.get(order.symbol, _ZERO), after[order.symbol]
        reducing = abs(now) <= abs(before) and now * before >= 0
        if not limits.allow_short and now < 0:
            violations.append(f"{order.symbol}: {order.side} {order.quantity} leaves a short of {now} (shorts not allowed)")
        if reducing:
            continue
        if halted:
            violations.append(f"{order.symbol}: {order.side} {order.quantity} adds risk while the book is halted")
        exposure = abs(now) * order.reference_price
        if not _within(exposure, limits.max_position_fraction * equity):
            violations.append(
                f"{order.symbol}: position after the order {exposure:.2f} exceeds max_position_fraction "
                f"{limits.max_position_fraction} x equity {equity:.2f}"
            )
    price = {**marks, **{o.symbol: o.reference_price for o in orders}}
    gross_before = sum((abs(q) * price.get(s, _ZERO) for s, q in positions.items()), _ZERO)
    gross_after = sum((abs(q) * price.get(s, _ZERO) for s, q in after.items()), _ZERO)
    if gross_after > gross_before and not _within(gross_after, limits.max_gross_exposure * equity):
        violations.append(f"gross exposure {gross_after:.2f} exceeds max_gross_exposure {limits.max_gross_exposure} x equity {equity:.2f}")
    stops = sum((o.quantity * o.reference_price for o in orders if o.is_stop_loss), _ZERO)
    others = sum((o.quantity * o.reference_price for o in orders if not o.is_stop_loss), _ZERO)
    budget = max(limits.max_turnover_fraction * equity - stops, _ZERO)
    if not _within(others, budget):
        violations.append(
            f"turnover {others:.2f} (stop-losses {stops:.2f} apart) exceeds max_turnover_fraction "
            f"{limits.max_turnover_fraction} x equity {equity:.2f}"
        )
    return violations


@dataclass(frozen=True)
class BookFill:
    symbol: str
    side: str
    quantity: Decimal
    notional: Decimal
    fee: Decimal
    realized_pnl: Decimal


@dataclass(frozen=True)
class ReplayedBook:
    cash: Decimal
    positions: dict[str, Decimal]
    realized_pnl: Decimal


def replay_fills(starting_cash: Decimal, fills: Iterable[BookFill]) -> ReplayedBook:
    """Cash, signed positions and realised P&L that ``fills`` (oldest first) give a book starting with ``starting_cash``."""
    cash, realized = starting_cash, _ZERO
    positions: dict[str, Decimal] = defaultdict(lambda: _ZERO)
    for fill in fills:
        sign = 1 if fill.side == "buy" else -1
        cash += -sign * fill.notional - fill.fee
        positions[fill.symbol] += sign * fill.quantity
        realized += fill.realized_pnl
    return ReplayedBook(cash, {s: q for s, q in positions.items() if q != 0}, realized)


def replay_differences(
    replayed: ReplayedBook, cash: Decimal, positions: Mapping[str, Decimal], realized_pnl: Decimal | None = None
) -> list[str]:
    """Where the stored book differs from the replayed one (exactly)."""
    differences = []
    if replayed.cash != cash:
        differences.append(f"cash: stored {cash}, replayed {replayed.cash} (difference {cash - replayed.cash})")
    stored = {s: q for s, q in positions.items() if q != 0}
    for symbol in sorted(set(stored) | set(replayed.positions)):
        if stored.get(symbol, _ZERO) != replayed.positions.get(symbol, _ZERO):
            differences.append(f"{symbol}: stored {stored.get(symbol, _ZERO)}, replayed {replayed.positions.get(symbol, _ZERO)}")
    if realized_pnl is not None and realized_pnl != replayed.realized_pnl:
        differences.append(f"realized P&L: stored {realized_pnl}, replayed {replayed.realized_pnl}")
    return differences


def attribution_residuals(rows: Iterable[tuple[int, Decimal, Decimal]]) -> dict[int, Decimal]:
    """Per fill id: (sum of the agents' parts) - (the trade's realised P&L), from ``(fill_id, part, trade_pnl)`` rows."""
    parts: dict[int, Decimal] = defaultdict(lambda: _ZERO)
    trade: dict[int, Decimal] = {}
    for fill_id, part, trade_pnl in rows:
        parts[fill_id] += part
        trade[fill_id] = trade_pnl
    return {fill_id: parts[fill_id] - trade[fill_id] for fill_id in trade}
