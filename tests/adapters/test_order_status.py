"""The order lifecycle: the moves an order may make, and the ones that would double-count money."""

from __future__ import annotations

import pytest

from tradepipe.adapters.db.models import OrderRow
from tradepipe.adapters.db.order_status import OrderStatus, OrderTransitionError, move_order

S = OrderStatus
ALLOWED = {
    (S.PENDING, S.SUBMITTED),
    (S.PENDING, S.FILLED),
    (S.PENDING, S.CANCELLED),
    (S.PENDING, S.REJECTED),
    (S.SUBMITTED, S.FILLED),
    (S.SUBMITTED, S.CANCELLED),
}


def order(status: OrderStatus) -> OrderRow:
    return OrderRow(client_order_id="tp-main-1-BTCUSDT-rebalance", status=status, reason="rebalance to 0.25")


@pytest.mark.parametrize("start", list(S))
@pytest.mark.parametrize("to", list(S))
def test_only_the_lifecycles_moves_are_allowed(start: OrderStatus, to: OrderStatus) -> None:
    row = order(start)
    if (start, to) in ALLOWED:
        move_order(row, to)
        assert row.status == to
    else:
        with pytest.raises(OrderTransitionError, match=f"{start} -> {to} is not an allowed move"):
            move_order(row, to)
        assert row.status == start  # a refused move changes nothing


def test_a_filled_order_can_never_be_filled_again() -> None:
    row = order(S.SUBMITTED)
    move_order(row, S.FILLED)
    with pytest.raises(OrderTransitionError):
        move_order(row, S.FILLED)


def test_a_note_is_appended_to_the_reason() -> None:
    row = order(S.PENDING)
    move_order(row, S.CANCELLED, "cancelled: no valid bar after the decision bar to fill at")
    assert row.reason == "rebalance to 0.25; cancelled: no valid bar after the decision bar to fill at"
    assert row.status == "cancelled"  # stored as the plain text the column always held
