"""An order's status and the only moves it may make, enforced here and nowhere else.

    pending ──► submitted ──► filled
       │            └───────► cancelled
       ├──► filled              (paper: filled at the next bar's open)
       ├──► cancelled           (no bar to fill at; never sent before its bar passed)
       └──► rejected            (risk rules when decided; the exchange when sent)

``filled``, ``cancelled`` and ``rejected`` are final: a final order never changes again, so a fill
can never be booked twice and a cancelled order never comes back to life.
"""

from __future__ import annotations

from enum import StrEnum

from tradepipe.adapters.db.models import OrderRow


class OrderStatus(StrEnum):
    PENDING = "pending"  # recorded by its cycle, not (known to be) at the exchange yet
    SUBMITTED = "submitted"  # the exchange holds it
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


OPEN_STATUSES = (OrderStatus.PENDING, OrderStatus.SUBMITTED)
_ALLOWED: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING: frozenset(
        {OrderStatus.SUBMITTED, OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED}
    ),
    OrderStatus.SUBMITTED: frozenset({OrderStatus.FILLED, OrderStatus.CANCELLED}),
    OrderStatus.FILLED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
    OrderStatus.REJECTED: frozenset(),
}


class OrderTransitionError(RuntimeError):
    """A move the order lifecycle forbids (e.g. filling a cancelled order): a bug, never data to keep."""


def move_order(order: OrderRow, to: OrderStatus, note: str | None = None) -> None:
    """Set ``order``'s status to ``to`` if the lifecycle allows it; ``note`` is appended to its reason."""
    order.status, order.reason = moved(order.client_order_id, order.status, order.reason, to, note)


def moved(client_order_id: str, status: str, reason: str, to: OrderStatus, note: str | None = None) -> tuple[OrderStatus, str]:
    """The (status, reason) of an order in ``status`` moved to ``to``; a move the lifecycle forbids raises."""
    current = OrderStatus(status)
    if to not in _ALLOWED[current]:
        raise OrderTransitionError(f"order {client_order_id}: {current} -> {to} is not an allowed move")
    return to, f"{reason}; {note}" if note else reason
