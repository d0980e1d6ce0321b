"""Ledger: average cost, realised P&L net of fees, attribution to the opening decision, exact identities."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradepipe.core.ledger import (
    LedgerInvariantError,
    Portfolio,
    Realization,
    Valuation,
    apply_fill,
    check_equity_invariant,
    check_pnl_identity,
    mark_to_market,
)
from tradepipe.core.types import Fill, Position

BTC, ETH = "BTC/USDT", "ETH/USDT"
OPENER = {"trend": 0.6, "news": 0.2}
OTHER = {"meanrev": -0.5}


def fill(side: str, quantity: str, price: str, fee: str = "0", symbol: str = BTC, ms: int = 1) -> Fill:
    q, p = D(quantity), D(price)
    return Fill(f"tp-{ms}", symbol, side, q, p, D(fee), q * p, ms)  # type: ignore[arg-type]


def apply(portfolio: Portfolio, *fills: Fill, contributions: dict[str, float] = OPENER) -> tuple[Portfolio, list[Realization]]:
    realizations = []
    for f in fills:
        portfolio, realization = apply_fill(portfolio, f, contributions)
        if realization is not None:
            realizations.append(realization)
    return portfolio, realizations


def test_buy_pays_notional_plus_fee_and_realises_the_fee() -> None:
    portfolio, realization = apply_fill(Portfolio(D(1000)), fill("buy", "1", "100", "0.1", ms=7), OPENER)
    assert portfolio.cash == D("899.9")
    assert portfolio.positions[BTC] == Position(BTC, D(1), D(100), OPENER, 7)
    assert (portfolio.realized_pnl, portfolio.fees_paid) == (D("-0.1"), D("0.1"))
    assert realization is not None
    assert (realization.kind, realization.quantity_closed, realization.realized_pnl) == ("open", D(0), D("-0.1"))
    assert realization.opening_contributions == OPENER


def test_fee_free_open_realises_nothing() -> None:
    _, realization = apply_fill(Portfolio(D(1000)), fill("buy", "1", "100"), OPENER)
    assert realization is None


def test_average_cost_partial_close_and_full_close() -> None:
    portfolio, _ = apply(Portfolio(D(1000)), fill("buy", "1", "100", "0.1"), fill("buy", "1", "110", "0.11"))
    assert portfolio.positions[BTC].average_price == D(105)
    assert portfolio.cash == D("789.79")

    portfolio, [partial] = apply(portfolio, fill("sell", "0.5", "120", "0.06"), contributions=OTHER)
    assert (partial.kind, partial.quantity_closed, partial.gross_pnl) == ("reduce", D("0.5"), D("7.5"))
    assert partial.realized_pnl == D("7.44")  # (120 - 105) x 0.5 - 0.06
    assert partial.opening_contributions == OPENER  # the opener's, not the closing decision's
    assert portfolio.positions[BTC].quantity == D("1.5") and portfolio.positions[BTC].average_price == D(105)
    assert portfolio.cash == D("849.73")

    portfolio, [full] = apply(portfolio, fill("sell", "1.5", "90", "0.135"))
    assert (full.kind, full.realized_pnl) == ("close", D("-22.635"))  # (90 - 105) x 1.5 - 0.135
    assert BTC not in portfolio.positions
    assert portfolio.realized_pnl == D("-0.1") + D("-0.11") + D("7.44") + D("-22.635")
    assert portfolio.fees_paid == D("0.405")
    assert portfolio.cash == D(1000) + portfolio.realized_pnl  # flat again: only P&L is left


def test_growing_keeps_the_opening_contributions() -> None:
    portfolio, _ = apply(Portfolio(D(1000)), fill("buy", "1", "100", ms=1))
    portfolio, _ = apply(portfolio, fill("buy", "1", "110", ms=2), contributions=OTHER)
    assert portfolio.positions[BTC].opening_contributions == OPENER
    assert portfolio.positions[BTC].opened_ms == 1


def test_flip_closes_then_opens_with_the_new_contributions() -> None:
    portfolio, _ = apply(Portfolio(D(1000)), fill("buy", "1", "100", ms=1))
    portfolio, [flip] = apply(portfolio, fill("sell", "3", "110", "0.33", ms=2), contributions=OTHER)
    assert (flip.kind, flip.quantity_closed, flip.realized_pnl) == ("flip", D(1), D("9.67"))  # 10 - whole fee
    assert flip.opening_contributions == OPENER
    assert portfolio.positions[BTC] == Position(BTC, D(-2), D(110), OTHER, 2)
    assert portfolio.cash == D(1000) - D(100) + D(330) - D("0.33")


def test_short_profits_when_the_price_falls() -> None:
    portfolio, _ = apply(Portfolio(D(1000)), fill("sell", "2", "110"), fill("sell", "2", "100"))
    assert portfolio.positions[BTC].average_price == D(105)
    portfolio, [cover] = apply(portfolio, fill("buy", "1", "90", "0.09"))
    assert cover.realized_pnl == D("14.91")  # (105 - 90) x 1 - 0.09
    assert portfolio.positions[BTC].quantity == D(-3)


def test_unterminating_average_is_rounded_and_the_rounding_is_booked() -> None:
    portfolio, realizations = apply(Portfolio(D(100)), fill("buy", "1", "1"), fill("buy", "2", "2"))
    average = portfolio.positions[BTC].average_price
    assert average == D("1.666666666667")  # 5 / 3 to 12 places
    [rounding] = realizations
    assert (rounding.kind, rounding.realized_pnl) == ("increase", D("0.000000000001"))  # 3 x avg - 5 paid
    check_pnl_identity(portfolio, {BTC: D("1.7")}, D(100))


def test_mark_to_market() -> None:
    portfolio, _ = apply(Portfolio(D(10000)), fill("buy", "0.1", "50000", "5"), fill("sell", "2", "2500", symbol=ETH))
    valuation = mark_to_market(portfolio, {BTC: D(51000), ETH: D(2400)})
    assert valuation == Valuation(
        cash=D(10000) - D(5000) - D(5) + D(5000),
        positions_value=D(5100) - D(4800),
        equity=D(9995) + D(300),
        unrealized_pnl=D(100) + D(200),
    )
    check_equity_invariant(valuation, portfolio, {BTC: D(51000), ETH: D(2400)})
    with pytest.raises(ValueError, match="no mark"):
        mark_to_market(portfolio, {BTC: D(1)})


def test_equity_invariant_catches_a_wrong_valuation() -> None:
    portfolio, _ = apply(Portfolio(D(1000)), fill("buy", "1", "100"))
    marks = {BTC: D(100)}
    wrong = Valuation(cash=D(900), positions_value=D(100), equity=D("1000.01"), unrealized_pnl=D(0))
    with pytest.raises(LedgerInvariantError, match="equity"):
        check_equity_invariant(wrong, portfolio, marks)
    with pytest.raises(LedgerInvariantError):
        check_pnl_identity(portfolio, marks, D(999))


# --------------------------------------------------------------------------- properties

_fills = st.lists(
    st.tuples(
        st.sampled_from([BTC, ETH]),
        st.sampled_from(["buy", "sell"]),
        st.integers(min_value=1, max_value=10**6),  # quantity in 1e-5 steps
        st.integers(min_value=1, max_value=10**7),  # price in cents
        st.integers(min_value=0, max_value=100),  # fee in bps
    ),
    min_size=1,
    max_size=25,
)
_marks = st.fixed_dictionaries({BTC: st.integers(1, 10**7), ETH: st.integers(1, 10**7)})


def _fill(symbol: str, side: str, steps: int, cents: int, fee_bps: int, ms: int) -> Fill:
    quantity, price = D(steps).scaleb(-5), D(cents).scaleb(-2)
    notional = quantity * price
    return Fill(f"tp-{ms}", symbol, side, quantity, price, notional * fee_bps / 10_000, notional, ms)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(fills=_fills, marks_in_cents=_marks)
def test_books_balance_exactly_for_any_fills(fills: list, marks_in_cents: dict[str, int]) -> None:
    start = D(1_000_000)
    marks = {s: D(c).scaleb(-2) for s, c in marks_in_cents.items()}
    portfolio, realised = Portfolio(start), D(0)
    for ms, spec in enumerate(fills, start=1):
        contributions = {"agent": float(ms)}
        portfolio, realization = apply_fill(portfolio, _fill(*spec, ms=ms), contributions)
        realised += realization.realized_pnl if realization is not None else 0
        valuation = mark_to_market(portfolio, marks)
        check_equity_invariant(valuation, portfolio, marks)
        # cash + positions at marks == start + realised + unrealised, exactly
        assert valuation.equity == start + portfolio.realized_pnl + valuation.unrealized_pnl
    assert realised == portfolio.realized_pnl  # the realisations add up to the book's realised P&L
    assert all(p.quantity != 0 for p in portfolio.positions.values())


@settings(max_examples=300, deadline=None)
@given(fills=_fills)
def test_trading_at_the_mark_without_fees_creates_no_money(fills: list) -> None:
    portfolio = Portfolio(D(1_000_000))
    marks = {BTC: D(100), ETH: D(100)}
    for ms, (symbol, side, steps, cents, _) in enumerate(fills, start=1):
        f = _fill(symbol, side, steps, cents, 0, ms)
        before = mark_to_market(portfolio, {**marks, symbol: f.price}).equity
        portfolio, _ = apply_fill(portfolio, f, {})
        marks[symbol] = f.price
        assert mark_to_market(portfolio, marks).equity == before


@settings(max_examples=100, deadline=None)
@given(fills=_fills)
def test_a_fee_costs_exactly_the_fee(fills: list) -> None:
    portfolio = Portfolio(D(1_000_000))
    marks = {BTC: D(100), ETH: D(100)}
    for ms, spec in enumerate(fills, start=1):
        f = _fill(*spec, ms=ms)
        marks[f.symbol] = f.price
        before = mark_to_market(portfolio, marks).equity
        portfolio, _ = apply_fill(portfolio, f, {})
        assert mark_to_market(portfolio, marks).equity == before - f.fee
