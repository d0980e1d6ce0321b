"""Risk manager: hand-computed sizing, every cap in its documented order, halts, stop-losses, ids."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradepipe.core.risk import CLIENT_ORDER_ID_MAX_LENGTH, CLIENT_ORDER_ID_PATTERN, RiskLimits, RiskPlan, client_order_id, equity, is_dust, plan_orders, quantize_to_step
from tradepipe.core.types import EnsembleDecision, MarketRules, Position

BTC, ETH, SOL = "BTC/USDT", "ETH/USDT", "SOL/USDT"
BAR = 1_700_000_000_000
RULES = {
    BTC: MarketRules(BTC, amount_step=D("0.00001"), price_tick=D("0.01"), min_amount=D("0.00001"), min_cost=D("10")),
    ETH: MarketRules(ETH, amount_step=D("0.0001"), price_tick=D("0.01"), min_amount=D("0.0001"), min_cost=D("10")),
    SOL: MarketRules(SOL, amount_step=D("0.01"), price_tick=D("0.01"), min_amount=D("0.01"), min_cost=D("10")),
}
MARKS = {BTC: D(50000), ETH: D(2500), SOL: D(100)}
# Caps that never bind, so a test can switch on exactly the one it is about.
LOOSE = dict(max_position_fraction=1, max_gross_exposure=10, max_turnover_fraction=10, cash_buffer_fraction=0)


def pos(symbol: str, quantity: str, average: str) -> Position:
    return Position(symbol, D(quantity), D(average))


def plan(**overrides: Any) -> RiskPlan:
    args: dict[str, Any] = dict(
        book="main",
        bar_open_ms=BAR,
        targets={},
        decisions={},
        positions={},
        cash=D(10000),
        marks=MARKS,
        rules=RULES,
        limits=RiskLimits(),
        day_start_equity=None,
        halted=False,
    )
    args.update(overrides)
    if args["day_start_equity"] is None:  # default: no loss today
        args["day_start_equity"] = equity(args["cash"], args["positions"], args["marks"])
    return plan_orders(**args)


def by_symbol(result: RiskPlan) -> dict[str, Any]:
    return {order.symbol: order for order in result.orders}


# --------------------------------------------------------------------------- sizing and rounding


def test_quarter_of_10000_at_50000_buys_0_05_btc() -> None:
    decision = EnsembleDecision(BTC, 0.5, {"trend": 0.3, "meanrev": 0.2}, ("trend", "meanrev"), ())
    result = plan(targets={BTC: 0.25}, decisions={BTC: decision})
    [order] = result.orders
    assert (order.symbol, order.side, order.quantity) == (BTC, "buy", D("0.05"))
    assert order.reference_price == D(50000) and order.requested_quantity == D("0.05")
    assert order.reason == "rebalance BTC/USDT from 0.0% to 25.0% of equity (target 25.0%)"
    assert order.contributions == {"trend": 0.3, "meanrev": 0.2}
    assert order.contributions is not decision.contributions
    assert order.client_order_id == client_order_id("main", BAR, BTC)
    assert (order.purpose, order.bar_open_ms) == ("rebalance", BAR)
    assert result.rejections == [] and result.adjustments == [] and not result.halted
    assert result.equity == D(10000)


def test_quantity_rounds_down_to_the_amount_step() -> None:
    [order] = plan(targets={BTC: 0.25}, marks={**MARKS, BTC: D(30000)}).orders
    assert order.quantity == D("0.08333")  # 2500 / 30000 = 0.083333...


def test_float_target_is_read_through_repr_not_its_binary_expansion() -> None:
    [order] = plan(targets={BTC: 0.1}).orders
    assert order.quantity == D("0.02")


def test_order_below_min_cost_is_rejected_with_numbers() -> None:
    result = plan(targets={ETH: 0.00042}, marks={**MARKS, ETH: D(2100)})  # 4.20 USDT = 0.002 ETH
    assert result.orders == []
    [rejection] = result.rejections
    assert (rejection.kind, rejection.side, rejection.requested_quantity) == ("min_cost", "buy", D("0.002"))
    assert rejection.reason == "below exchange minimum cost 10 USDT (order 4.20)"
    assert rejection.client_order_id == client_order_id("main", BAR, ETH)


def test_order_below_min_amount_is_rejected() -> None:
    rules = {**RULES, SOL: MarketRules(SOL, amount_step=D("0.01"), min_amount=D("1"))}
    [rejection] = plan(targets={SOL: 0.005}, rules=rules).rejections  # 50 USDT = 0.5 SOL
    assert rejection.kind == "min_amount"
    assert rejection.reason == "below exchange minimum amount 1 SOL (order 0.5)"


def test_order_smaller_than_one_step_is_rejected() -> None:
    [rejection] = plan(targets={BTC: 0.0000001}).rejections  # 0.001 USDT = 2e-8 BTC
    assert rejection.kind == "below_amount_step"
    assert "rounds down to 0 at the amount step 0.00001" in rejection.reason


def test_target_already_met_sends_nothing_and_records_nothing() -> None:
    result = plan(targets={BTC: 0.25}, positions={BTC: pos(BTC, "0.05", "50000")}, cash=D(7500))
    assert result.orders == [] and result.rejections == [] and result.adjustments == []


# --------------------------------------------------------------------------- per-symbol clips


def test_target_above_max_position_is_clipped_and_recorded() -> None:
    result = plan(targets={BTC: 0.4})
    assert by_symbol(result)[BTC].quantity == D("0.05")
    [adjustment] = result.adjustments
    assert (adjustment.kind, adjustment.requested_quantity, adjustment.adjusted_quantity) == ("max_position", D("0.08"), D("0.05"))
    assert adjustment.reason == "target 40.0% clipped to max position 25.0% of equity"


def test_max_position_trims_an_outgrown_position_even_if_the_target_wants_more() -> None:
    result = plan(targets={BTC: 0.5}, positions={BTC: pos(BTC, "0.06", "40000")}, cash=D(7000))
    [order] = result.orders
    assert (order.side, order.quantity) == ("sell", D("0.01"))  # 3000 held -> 2500
    [adjustment] = result.adjustments
    assert adjustment.side == "sell" and "the buy became a sell" in adjustment.reason


def test_long_only_sells_what_is_held_and_never_goes_short() -> None:
    result = plan(targets={ETH: -0.5}, positions={ETH: pos(ETH, "1", "2500")}, cash=D(7500))  # -5000 asked: sell 3
    [order] = result.orders
    assert (order.side, order.quantity) == ("sell", D("1"))
    [adjustment] = result.adjustments
    assert (adjustment.kind, adjustment.requested_quantity, adjustment.adjusted_quantity) == ("long_only", D("3"), D("1"))


def test_long_only_short_target_when_flat_is_rejected() -> None:
    result = plan(targets={ETH: -0.2})
    assert result.orders == []
    assert [r.kind for r in result.rejections] == ["long_only"]


def test_allow_short_opens_a_short() -> None:
    [order] = plan(targets={ETH: -0.2}, limits=RiskLimits(allow_short=True)).orders
    assert (order.side, order.quantity) == ("sell", D("0.8"))


# --------------------------------------------------------------------------- book-wide caps


def test_gross_exposure_cap_scales_increases_proportionally() -> None:
    limits = RiskLimits(**{**LOOSE, "max_position_fraction": 0.6, "max_gross_exposure": 0.8})
    result = plan(
        targets={BTC: 0.5, ETH: 0.4, SOL: 0.2},  # BTC already at 50%; +4000 ETH, +2000 SOL
        positions={BTC: pos(BTC, "0.1", "50000")},
        cash=D(5000),
        limits=limits,
    )
    orders = by_symbol(result)
    assert set(orders) == {ETH, SOL}  # room 8000 - 5000 = 3000 for 6000 of increases: x 0.5
    assert orders[ETH].quantity == D("0.8") and orders[SOL].quantity == D("10")
    assert [(a.symbol, a.kind, a.requested_quantity, a.adjusted_quantity) for a in result.adjustments] == [
        (ETH, "gross_exposure", D("1.6"), D("0.8")),
        (SOL, "gross_exposure", D("20"), D("10")),
    ]
    assert "room 3000.00 for 6000.00" in result.adjustments[0].reason


def test_turnover_cap_scales_down() -> None:
    limits = RiskLimits(**{**LOOSE, "max_turnover_fraction": 0.4})
    result = plan(targets={BTC: 0.25, ETH: 0.25}, limits=limits)  # 5000 wanted, 4000 allowed
    orders = by_symbol(result)
    assert orders[BTC].quantity == D("0.04") and orders[ETH].quantity == D("0.8")
    assert {a.kind for a in result.adjustments} == {"turnover_cap"}


def test_turnover_cap_serves_reductions_before_increases() -> None:
    limits = RiskLimits(**{**LOOSE, "max_turnover_fraction": 0.4})
    result = plan(targets={BTC: 0, ETH: 0.25}, positions={BTC: pos(BTC, "0.1", "50000")}, cash=D(5000), limits=limits)
    [order] = result.orders
    assert (order.symbol, order.side, order.quantity) == (BTC, "sell", D("0.08"))  # 4000 of the 5000
    [rejection] = result.rejections
    assert (rejection.symbol, rejection.kind) == (ETH, "turnover_cap")


def test_stop_loss_is_exempt_from_the_turnover_cap_but_uses_it_up() -> None:
    # BTC 0.1 bought at 50000 marks 47000 (stop 47500): equity 5000 + 4700 = 9700, budget 4850.
    result = plan(
        targets={ETH: 0.25},
        positions={BTC: pos(BTC, "0.1", "50000")},
        cash=D(5000),
        marks={**MARKS, BTC: D(47000)},
        limits=RiskLimits(max_turnover_fraction=D("0.5")),
    )
    orders = by_symbol(result)
    assert (orders[BTC].side, orders[BTC].quantity, orders[BTC].purpose) == ("sell", D("0.1"), "stop_loss")
    assert orders[ETH].quantity == D("0.06")  # 150 of turnover left / 2500


def test_cash_limits_buys_after_the_gross_cap() -> None:
    limits = RiskLimits(max_position_fraction=1)
    result = plan(targets={ETH: 0.9, BTC: 0.25}, positions={ETH: pos(ETH, "3.6", "2500")}, cash=D(1000), limits=limits)
    [order] = result.orders
    assert (order.symbol, order.quantity) == (BTC, D("0.01996"))  # 1000 x (1 - 0.2%) = 998 spendable
    assert [(a.kind, a.requested_quantity, a.adjusted_quantity) for a in result.adjustments] == [
        ("gross_exposure", D("0.05"), D("0.02")),
        ("insufficient_cash", D("0.02"), D("0.01996")),
    ]


def test_sale_proceeds_pay_for_buys_and_sells_come_first() -> None:
    limits = RiskLimits(**{**LOOSE, "cash_buffer_fraction": 0.002})
    result = plan(
        targets={SOL: 0.2, ETH: 0.5, BTC: 0},
        positions={BTC: pos(BTC, "0.2", "50000")},
        cash=D(0),
        limits=limits,
    )
    assert [(o.side, o.symbol, o.quantity) for o in result.orders] == [
        ("sell", BTC, D("0.2")),
        ("buy", ETH, D("2")),
        ("buy", SOL, D("20")),
    ]


def test_rejected_sell_does_not_pay_for_buys() -> None:
    # 0.0001 BTC is worth 5 USDT: below the minimum cost, so it stays and its proceeds do not exist.
    result = plan(
        targets={BTC: 0, ETH: 0.5}, positions={BTC: pos(BTC, "0.0001", "50000")}, cash=D(0), limits=RiskLimits(**LOOSE)
    )
    assert result.orders == []
    assert sorted((r.symbol, r.kind) for r in result.rejections) == [(BTC, "min_cost"), (ETH, "insufficient_cash")]


# --------------------------------------------------------------------------- stop-losses and halts


def test_stop_loss_closes_a_long_whose_mark_fell_below_its_stop() -> None:
    result = plan(
        targets={BTC: 0.25},
        positions={BTC: pos(BTC, "0.1", "10000")},
        cash=D(10000),
        marks={**MARKS, BTC: D(9412)},
    )
    [order] = result.orders
    assert (order.side, order.quantity, order.purpose, order.contributions) == ("sell", D("0.1"), "stop_loss", {})
    assert order.reason == "stop-loss: mark 9412 <= stop 9500 (5.0% from average entry 10000)"
    assert order.client_order_id == client_order_id("main", BAR, BTC, "stop_loss")
    [rejection] = result.rejections  # the target would re-open it in the same cycle
    assert (rejection.kind, rejection.side) == ("stop_loss_cooldown", "buy")


def test_no_stop_loss_above_the_stop() -> None:
    result = plan(positions={BTC: pos(BTC, "0.1", "10000")}, marks={**MARKS, BTC: D(9501)})
    assert result.orders == []


def test_stop_loss_covers_a_short_whose_mark_rose_above_its_stop() -> None:
    result = plan(
        positions={ETH: pos(ETH, "-1", "2000")},
        cash=D(12000),
        marks={**MARKS, ETH: D(2100)},
        limits=RiskLimits(allow_short=True),
    )
    [order] = result.orders
    assert (order.side, order.quantity, order.purpose) == ("buy", D("1"), "stop_loss")
    assert order.reason.startswith("stop-loss: mark 2100 >= stop 2100")


def test_cooldown_symbol_may_shrink_but_not_grow() -> None:
    positions = {BTC: pos(BTC, "0.02", "50000")}
    grow = plan(targets={BTC: 0.25}, positions=positions, cash=D(9000), cooldown={BTC})
    assert grow.orders == [] and [r.kind for r in grow.rejections] == ["stop_loss_cooldown"]
    [order] = plan(targets={BTC: 0}, positions=positions, cash=D(9000), cooldown={BTC}).orders
    assert (order.side, order.quantity) == ("sell", D("0.02"))


# --------------------------------------------------------------------------- dust


@pytest.mark.parametrize(
    ("quantity", "mark", "dust"),
    [
        ("0.000009", "50000", True),  # rounds down to 0 at the 0.00001 step (0.45 USDT)
        ("0.00019", "50000", True),  # costs 9.50 < min_cost 10
        ("0.0002", "50000", False),  # costs exactly 10: the exchange takes it
        ("-0.00019", "50000", True),  # a short remainder is dust the same way
        ("0.00047", "6316", True),  # the remainder that locked a real book: 2.97 USDT
        ("0.00047", "25000", False),  # the same coins are an order again once worth 11.75
        ("0", "50000", False),
    ],
)
def test_dust_is_a_position_the_exchange_would_refuse_to_close(quantity: str, mark: str, dust: bool) -> None:
    assert is_dust(D(quantity), D(mark), RULES[BTC]) is dust


def test_dust_by_minimum_amount_and_without_rules_or_mark() -> None:
    rules = MarketRules(SOL, amount_step=D("0.01"), min_amount=D("0.1"), min_cost=D("0"))
    assert is_dust(D("0.09"), D("1000"), rules) and not is_dust(D("0.1"), D("1000"), rules)
    assert not is_dust(D("0.00001"), D("50000"), None)  # no rules: cannot tell, a normal position
    assert not is_dust(D("0.00001"), None, RULES[BTC])


def test_dust_below_its_stop_is_not_stop_lossed_and_a_buy_target_sweeps_it_in() -> None:
    # 0.00047 BTC bought at 6316 marks 5900 (stop 6000.20) and is worth 2.773 USDT < min_cost 10.
    dust = pos(BTC, "0.00047", "6316")
    marks = {**MARKS, BTC: D(5900)}
    assert plan(positions={BTC: dust}, marks=marks).orders == []
    result = plan(targets={BTC: 0.25}, positions={BTC: dust}, cash=D(10000), marks=marks)
    assert result.rejections == [] and result.adjustments == []
    [order] = result.orders
    book_equity = D(10000) + D("0.00047") * D(5900)
    wanted = D("0.25") * book_equity / D(5900) - D("0.00047")  # the target less the dust already held
    assert (order.side, order.purpose) == ("buy", "rebalance")
    assert abs(order.requested_quantity - wanted) < D("1e-20")
    assert order.quantity == D("0.42337") == wanted.quantize(D("0.00001"), rounding="ROUND_DOWN")


def test_a_stop_still_closes_a_position_the_exchange_can_sell() -> None:
    result = plan(positions={BTC: pos(BTC, "0.0002", "60000")}, marks={**MARKS, BTC: D(50000)})
    [order] = result.orders  # 0.0002 x 50000 = 10 USDT: exactly the minimum, so it is sold
    assert (order.side, order.quantity, order.purpose) == ("sell", D("0.0002"), "stop_loss")


def test_daily_loss_halt_allows_reductions_only() -> None:
    # equity 7200 + 1 ETH x 2400 = 9600 <= 10000 x (1 - 3%) = 9700
    result = plan(
        targets={BTC: 0.25, ETH: 0.1},
        positions={ETH: pos(ETH, "1", "2450")},
        cash=D(7200),
        marks={**MARKS, ETH: D(2400)},
        day_start_equity=D(10000),
    )
    assert result.halted
    assert result.halt_reason is not None and "equity 9600.00 <= 9700.00" in result.halt_reason
    [order] = result.orders
    assert (order.symbol, order.side, order.quantity) == (ETH, "sell", D("0.6"))  # 960 / 2400 = 0.4 kept
    [rejection] = result.rejections
    assert (rejection.symbol, rejection.kind) == (BTC, "halted_daily_loss")


def test_halt_from_earlier_today_persists() -> None:
    result = plan(targets={BTC: 0.25}, halted=True)
    assert result.halted and result.orders == []
    assert [r.kind for r in result.rejections] == ["halted_daily_loss"]


def test_halted_flip_keeps_only_the_closing_part() -> None:
    result = plan(
        targets={ETH: -0.1},
        positions={ETH: pos(ETH, "1", "2500")},
        cash=D(7500),
        limits=RiskLimits(allow_short=True),
        halted=True,
    )
    [order] = result.orders
    assert (order.side, order.quantity) == ("sell", D("1"))  # not the extra 0.4 short
    [adjustment] = result.adjustments
    assert (adjustment.kind, adjustment.requested_quantity, adjustment.adjusted_quantity) == ("halted_daily_loss", D("1.4"), D("1"))


def test_not_halted_just_above_the_floor() -> None:
    assert not plan(cash=D("9700.01"), day_start_equity=D(10000)).halted
    assert plan(cash=D("9700"), day_start_equity=D(10000)).halted


# --------------------------------------------------------------------------- unusable inputs


def test_missing_mark_rejects_the_symbol_and_values_the_position_at_cost() -> None:
    xrp = "XRP/USDT"
    result = plan(targets={xrp: 0.1}, positions={xrp: pos(xrp, "100", "0.5")}, cash=D(1000), day_start_equity=D(1050))
    assert result.equity == D(1050)
    [rejection] = result.rejections
    assert (rejection.kind, rejection.side, rejection.requested_quantity) == ("no_price", None, D(0))


def test_missing_rules_and_invalid_targets_are_rejected() -> None:
    result = plan(targets={BTC: 0.1, ETH: float("nan")}, rules={})
    assert sorted((r.symbol, r.kind) for r in result.rejections) == [(BTC, "no_market_rules"), (ETH, "invalid_target")]


def test_limits_accept_floats_and_refuse_nonsense() -> None:
    assert RiskLimits(max_position_fraction=0.3).max_position_fraction == D("0.3")
    with pytest.raises(ValueError, match="stop_loss_fraction"):
        RiskLimits(stop_loss_fraction=1.5)
    with pytest.raises(ValueError, match="max_gross_exposure"):
        RiskLimits(max_gross_exposure=-1)


# --------------------------------------------------------------------------- ids, equity, determinism


def test_client_order_id_is_deterministic_and_fits_binance() -> None:
    first = client_order_id("main", BAR, BTC)
    assert first == client_order_id("main", BAR, BTC)
    assert first.startswith("tp-") and len(first) <= CLIENT_ORDER_ID_MAX_LENGTH
    assert CLIENT_ORDER_ID_PATTERN.match(first)
    others = {
        client_order_id("other", BAR, BTC),
        client_order_id("main", BAR + 1, BTC),
        client_order_id("main", BAR, ETH),
        client_order_id("main", BAR, BTC, "stop_loss"),
    }
    assert first not in others and len(others) == 4


def test_same_inputs_give_the_same_plan() -> None:
    kwargs: dict[str, Any] = dict(targets={BTC: 0.3, ETH: 0.25, SOL: 0.2}, positions={SOL: pos(SOL, "5", "90")}, cash=D(9500))
    assert plan(**kwargs) == plan(**kwargs)


def test_equity_is_cash_plus_marked_positions() -> None:
    positions = {BTC: pos(BTC, "0.1", "40000"), ETH: pos(ETH, "-2", "2000")}
    assert equity(D(1000), positions, MARKS) == D(1000) + D(5000) - D(5000)
    with pytest.raises(ValueError, match="no mark"):
        equity(D(1000), positions, {BTC: D(1)})


def test_quantize_to_step() -> None:
    assert quantize_to_step(D("0.0833333"), D("0.00001")) == D("0.08333")
    assert quantize_to_step(D("-0.0833333"), D("0.00001")) == D("-0.08333")


# --------------------------------------------------------------------------- properties

_quantity = st.integers(min_value=0, max_value=300)
_price = st.integers(min_value=50, max_value=200)
_target = st.floats(min_value=-1, max_value=1, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(
    held=st.tuples(_quantity, _quantity, _quantity),
    prices=st.tuples(_price, _price, _price),
    averages=st.tuples(_price, _price, _price),
    targets=st.tuples(_target, _target, _target),
    cash=st.integers(min_value=0, max_value=50_000),
    halted=st.booleans(),
)
def test_plans_respect_the_limits(held: tuple, prices: tuple, averages: tuple, targets: tuple, cash: int, halted: bool) -> None:
    symbols = ("A/USDT", "B/USDT", "C/USDT")
    step = D("0.01")
    rules = {s: MarketRules(s, amount_step=step, min_amount=step, min_cost=D(10)) for s in symbols}
    marks = {s: D(p) for s, p in zip(symbols, prices)}
    positions = {s: Position(s, D(q), D(a)) for s, q, a in zip(symbols, held, averages) if q}
    limits = RiskLimits()
    result = plan(
        targets=dict(zip(symbols, targets)), positions=positions, cash=D(cash), marks=marks, rules=rules,
        limits=limits, halted=halted,
    )
    book_equity = result.equity
    after = {s: positions[s].quantity if s in positions else D(0) for s in symbols}
    for order in result.orders:
        assert order.quantity > 0 and order.quantity % step == 0 and order.quantity * order.reference_price >= 10
        after[order.symbol] += order.quantity if order.side == "buy" else -order.quantity
    assert all(quantity >= 0 for quantity in after.values())  # long-only: never sell more than held
    sells = sum((o.quantity * o.reference_price for o in result.orders if o.side == "sell"), D(0))
    buys = sum((o.quantity * o.reference_price for o in result.orders if o.side == "buy"), D(0))
    assert buys <= (D(cash) + sells) * (1 - limits.cash_buffer_fraction)
    stops = sum((o.quantity * o.reference_price for o in result.orders if o.purpose == "stop_loss"), D(0))
    assert sells + buys - stops <= max(limits.max_turnover_fraction * book_equity - stops, D(0))
    if result.halted:
        assert all(o.side == "sell" for o in result.orders)
    if buys > 0:  # something grew: it stayed within its per-symbol and the gross limits
        gross = sum((after[s] * marks[s] for s in symbols), D(0))
        assert gross <= limits.max_gross_exposure * book_equity + sum((step * m for m in marks.values()), D(0))
        for order in result.orders:
            if order.side == "buy":
                assert after[order.symbol] * marks[order.symbol] <= limits.max_position_fraction * book_equity
