"""The paper broker's fill rule, pure: how an approved order would have filled.

Rule (documented because every back-test and every paper P&L depends on it):

* **Next bar's open, never the decision bar.** An order decided at the close of bar t fills at the
  OPEN of bar t+1. The caller passes that open and its time (``fill_ms``); a fill at or before the
  decision bar's own open (``order.bar_open_ms``) is refused with :class:`LookAheadError`.
* **Slippage against the trader:** ``open x (1 + slippage_bps / 1e4)`` for a buy,
  ``open x (1 - slippage_bps / 1e4)`` for a sell, then rounded to the price tick in the adverse
  direction too (a buy up, a sell down), so the simulated price is never better than the model.
* **Fee** = ``fee_bps / 1e4 x notional`` in the quote currency, exact (no rounding), where
  ``notional = quantity x price``. A buy costs ``notional + fee``; a sell brings ``notional - fee``.
* **Gap up (optional cash check).** When ``available_cash`` is given and a buy's ``notional + fee``
  exceeds it (the open gapped above the reference price the risk manager sized at), the quantity
  is cut to the most the cash pays for, rounded down to the amount step, and the fill's ``note``
  says so. If what is left is 0 or below the market's minimums, the order is rejected
  (``insufficient_cash``) rather than filled. The minimums are otherwise the risk manager's job
  (checked at the reference price); the broker re-checks only quantities it cuts itself.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Context, Decimal, localcontext

from tradepipe.core.risk import quantize_to_step
from tradepipe.core.types import Fill, MarketRules, OrderIntent, Rejection, Side

__all__ = ["Fill", "LookAheadError", "fill_order", "fill_price"]

_BPS = Decimal(10_000)
# Wide enough that price x quantity and fee arithmetic are exact; the only division (how much a
# gapped buy can afford) rounds down, so the cut quantity is always affordable.
_EXACT = Context(prec=60, rounding=ROUND_DOWN)


class LookAheadError(ValueError):
    """A fill priced from the bar the decision saw (or earlier): that would be look-ahead."""


# Paper trading on synthetic or replayed prices, live and in the walk-forward, uses Binance-spot-like
# rules (the ccxt broker reads the exchange's own): amount step 1e-5, price tick 0.01, minimum order
# cost 10 in the quote currency.
PAPER_RULES = {"amount_step": Decimal("0.00001"), "price_tick": Decimal("0.01"), "min_cost": Decimal("10")}

def fill_price(side: Side, open_price: Decimal, slippage_bps: Decimal, rules: MarketRules) -> Decimal:
    """The next bar's open moved against the trader by the slippage, on the price tick (adverse rounding)."""
    with localcontext(_EXACT):
        if side == "buy":
            raw = open_price * (1 + slippage_bps / _BPS)
            return quantize_to_step(raw, rules.price_tick, ROUND_CEILING)
        raw = open_price * (1 - slippage_bps / _BPS)
        return quantize_to_step(raw, rules.price_tick, ROUND_FLOOR)


def fill_order(
    order: OrderIntent,
    next_bar_open: Decimal,
    fee_bps: Decimal,
    slippage_bps: Decimal,
    rules: MarketRules,
    fill_ms: int,
    available_cash: Decimal | None = None,
) -> Fill | Rejection:
    """Fill ``order`` at the open of the bar after its decision bar (see the module docstring).

    Returns a :class:`Rejection` only when ``available_cash`` cannot pay for a gapped-up buy of at
    least the market's minimum size.
    """
    _check_inputs(order, next_bar_open, fee_bps, slippage_bps, fill_ms)
    price = fill_price(order.side, next_bar_open, slippage_bps, rules)
    if price <= 0:
        raise ValueError(f"slippage {slippage_bps} bps leaves no positive sell price from open {next_bar_open}")
    with localcontext(_EXACT):
        fee_rate = fee_bps / _BPS
        quantity, note = order.quantity, ""
        cost = quantity * price * (1 + fee_rate)
        if order.side == "buy" and available_cash is not None and cost > available_cash:
            quantity = quantize_to_step(available_cash / (price * (1 + fee_rate)), rules.amount_step)
            problem = _cut_problem(quantity, price, rules)
            if problem is not None:
                reason = f"gap up: {_cost_text(order.quantity, price, cost, available_cash)}; {problem}"
                return Rejection(order.symbol, order.side, order.quantity, reason, "insufficient_cash", order.client_order_id)
            note = f"reduced from {order.quantity} to {quantity}: {_cost_text(order.quantity, price, cost, available_cash)}"
        notional = quantity * price
        return Fill(
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            side=order.side,
            quantity=quantity,
            price=price,
            fee=notional * fee_rate,
            notional=notional,
            fill_ms=fill_ms,
            requested_quantity=order.quantity,
            note=note,
        )


def _check_inputs(order: OrderIntent, open_price: Decimal, fee_bps: Decimal, slippage_bps: Decimal, fill_ms: int) -> None:
    if fill_ms <= order.bar_open_ms:
        raise LookAheadError(
            f"order {order.client_order_id} was decided on the bar opening at {order.bar_open_ms}; "
            f"it can only fill at a later bar's open, not at {fill_ms}"
        )
    if not (open_price.is_finite() and open_price > 0):
        raise ValueError(f"next bar open must be a positive price, got {open_price}")
    if fee_bps < 0 or slippage_bps < 0:
        raise ValueError(f"fee and slippage must be >= 0 bps, got {fee_bps} and {slippage_bps}")
    if order.quantity <= 0:
        raise ValueError(f"order {order.client_order_id} has quantity {order.quantity}; nothing to fill")


def _cut_problem(quantity: Decimal, price: Decimal, rules: MarketRules) -> str | None:
    """Why a cash-cut quantity cannot be sent, or None if it can."""
    if quantity <= 0:
        return "the cash buys less than one amount step"
    if quantity < rules.min_amount:
        return f"the {quantity} it pays for is below the minimum amount {rules.min_amount}"
    if quantity * price < rules.min_cost:
        return f"the {quantity} it pays for costs {quantity * price}, below the minimum cost {rules.min_cost}"
    return None


def _cost_text(quantity: Decimal, price: Decimal, cost: Decimal, cash: Decimal) -> str:
    return f"{quantity} at {price} costs {cost} with fees, more than the {cash} cash available"
