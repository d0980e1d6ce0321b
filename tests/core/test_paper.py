"""Paper fill rule: next bar's open, adverse slippage and tick rounding, exact fees, gap-up cash cut."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from tradepipe.core.paper import LookAheadError, fill_order, fill_price
from tradepipe.core.types import Fill, MarketRules, OrderIntent, Rejection

BTC = "BTC/USDT"
RULES = MarketRules(BTC, amount_step=D("0.00001"), price_tick=D("0.01"), min_amount=D("0.00001"), min_cost=D("10"))
DECISION_BAR = 1_700_000_000_000
NEXT_BAR = DECISION_BAR + 3_600_000


def order(side: str = "buy", quantity: str = "0.05") -> OrderIntent:
    return OrderIntent(
        symbol=BTC,
        side=side,  # type: ignore[arg-type]
        quantity=D(quantity),
        reference_price=D(50000),
        client_order_id="tp-test",
        reason="test",
        requested_quantity=D(quantity),
        bar_open_ms=DECISION_BAR,
    )


def test_buy_fills_at_next_open_plus_slippage_with_exact_fee() -> None:
    fill = fill_order(order("buy"), D(50000), fee_bps=D(10), slippage_bps=D(10), rules=RULES, fill_ms=NEXT_BAR)
    assert isinstance(fill, Fill)
    assert fill.price == D("50050.00")  # 50000 x 1.001
    assert fill.notional == D("2502.5")  # 0.05 x 50050
    assert fill.fee == D("2.5025")  # 10 bps of the notional
    assert (fill.quantity, fill.side, fill.fill_ms, fill.client_order_id, fill.note) == (D("0.05"), "buy", NEXT_BAR, "tp-test", "")


def test_sell_fills_at_next_open_minus_slippage() -> None:
    fill = fill_order(order("sell"), D(50000), fee_bps=D(10), slippage_bps=D(10), rules=RULES, fill_ms=NEXT_BAR)
    assert isinstance(fill, Fill)
    assert (fill.price, fill.notional, fill.fee) == (D("49950.00"), D("2497.5"), D("2.4975"))


def test_price_rounds_to_the_tick_against_the_trader() -> None:
    # 50000.123 x 1.0007 = 50035.1230861 ; 50000.123 x 0.9993 = 49965.1229139
    assert fill_price("buy", D("50000.123"), D(7), RULES) == D("50035.13")
    assert fill_price("sell", D("50000.123"), D(7), RULES) == D("49965.12")


def test_no_slippage_no_fee_fills_at_the_open() -> None:
    fill = fill_order(order("buy"), D("50000.01"), fee_bps=D(0), slippage_bps=D(0), rules=RULES, fill_ms=NEXT_BAR)
    assert isinstance(fill, Fill)
    assert (fill.price, fill.fee) == (D("50000.01"), D(0))


@pytest.mark.parametrize("fill_ms", [DECISION_BAR, DECISION_BAR - 1])
def test_fill_on_the_decision_bar_is_look_ahead(fill_ms: int) -> None:
    with pytest.raises(LookAheadError):
        fill_order(order(), D(50000), fee_bps=D(10), slippage_bps=D(10), rules=RULES, fill_ms=fill_ms)


def test_gap_up_cuts_the_buy_to_what_cash_pays_for() -> None:
    # 0.05 at 50050 costs 2502.5 + 2.5025 fee > 2500: 2500 / (50050 x 1.001) = 0.049900... -> 0.0499
    fill = fill_order(
        order("buy"), D(50000), fee_bps=D(10), slippage_bps=D(10), rules=RULES, fill_ms=NEXT_BAR, available_cash=D(2500)
    )
    assert isinstance(fill, Fill)
    assert (fill.quantity, fill.requested_quantity) == (D("0.0499"), D("0.05"))
    assert (fill.notional, fill.fee) == (D("2497.495"), D("2.497495"))
    assert fill.notional + fill.fee <= D(2500)
    assert fill.note.startswith("reduced from 0.05 to 0.04990")


def test_gap_up_below_the_minimum_is_rejected() -> None:
    result = fill_order(
        order("buy"), D(50000), fee_bps=D(10), slippage_bps=D(10), rules=RULES, fill_ms=NEXT_BAR, available_cash=D(5)
    )
    assert isinstance(result, Rejection)
    assert (result.kind, result.requested_quantity, result.client_order_id) == ("insufficient_cash", D("0.05"), "tp-test")
    assert "below the minimum cost 10" in result.reason


def test_cash_check_does_not_touch_sells_or_affordable_buys() -> None:
    sell = fill_order(order("sell"), D(50000), D(10), D(10), RULES, NEXT_BAR, available_cash=D(0))
    buy = fill_order(order("buy"), D(50000), D(10), D(10), RULES, NEXT_BAR, available_cash=D("2505.0025"))
    assert isinstance(sell, Fill) and sell.quantity == D("0.05")
    assert isinstance(buy, Fill) and buy.quantity == D("0.05")


def test_fill_refuses_inconsistent_numbers() -> None:
    with pytest.raises(ValueError, match="notional"):
        Fill("id", BTC, "buy", D("0.05"), D(50000), D(0), D(2501), NEXT_BAR)
    with pytest.raises(ValueError):
        Fill("id", BTC, "buy", D(0), D(50000), D(0), D(0), NEXT_BAR)
