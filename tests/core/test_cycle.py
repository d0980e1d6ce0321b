"""The pure trading cycle: next-bar fills, per-symbol skips, agent failures, the rebalance band, exact equity."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as D
from typing import Any, Sequence

import numpy as np
import pytest

from tradepipe.core.agents import Agent, Vote
from tradepipe.core.cycle import CycleInputs, CycleResult, PendingOrder, run_cycle
from tradepipe.core.ledger import Portfolio
from tradepipe.core.risk import RiskLimits, client_order_id
from tradepipe.core.types import AgentContext, BarHistory, MarketRules, OrderIntent, Position

H = 3_600_000
T = 1_704_110_400_000  # 2024-01-01 12:00 UTC, the bar this cycle trades (its open time)
BTC, ETH, SOL = "BTC/USDT", "ETH/USDT", "SOL/USDT"
RULES = {
    s: MarketRules(s, amount_step=D("0.00001"), price_tick=D("0.01"), min_cost=D("10")) for s in (BTC, ETH, SOL)
}
# Caps that never bind, so the numbers below are the fill rule's and the band's alone.
LIMITS = RiskLimits(
    max_position_fraction=D("0.25"),
    max_gross_exposure=D("1"),
    max_turnover_fraction=D("2"),
    stop_loss_fraction=D("0.5"),
    daily_loss_limit_fraction=D("0.5"),
    cash_buffer_fraction=D("0"),
)


def history(symbol: str, closes: Sequence[float], last_ms: int = T, opens: Sequence[float] | None = None) -> BarHistory:
    """Bars ending with the bar opening at ``last_ms``; open = previous close unless given; wicks bracket the body."""
    closes_a = np.asarray(closes, dtype=np.float64)
    if opens is None:
        opens_a = np.concatenate([[closes_a[0]], closes_a[:-1]])
    else:
        opens_a = np.asarray(opens, dtype=np.float64)
    n = len(closes_a)
    with np.errstate(invalid="ignore"):
        high = np.fmax(opens_a, closes_a) + 0.5
        low = np.fmin(opens_a, closes_a) - 0.5
    return BarHistory(
        symbol=symbol,
        timeframe="1h",
        timestamps=np.arange(last_ms - (n - 1) * H, last_ms + 1, H, dtype=np.int64),
        open=opens_a,
        high=high,
        low=low,
        close=closes_a,
        volume=np.full(n, 10.0),
    )


def voter(name: str, value: float, confidence: float = 1.0) -> Agent:
    return Agent(name, 0, lambda h, c: Vote(value, confidence, f"{name} says {value}"))


def abstainer(name: str = "quiet") -> Agent:
    return Agent(name, 0, lambda h, c: Vote(0.0, 0.0, "nothing to say", abstained=True))


def score_for(target: float, max_fraction: float = 0.25, deadband: float = 0.05) -> float:
    """The ensemble score whose target (ensemble.target_fraction) is ``target`` of equity."""
    return deadband + target / max_fraction * (1 - deadband)


def inputs(**overrides: Any) -> CycleInputs:
    agents = overrides.pop("agents", [abstainer()])
    args: dict[str, Any] = dict(
        book="main",
        bar_open_ms=T,
        timeframe_ms=H,
        histories={},
        unavailable={},
        agents=agents,
        context=AgentContext(now_ms=T + H),
        weights={a.name: 1.0 for a in agents},
        portfolio=Portfolio(cash=D(10000)),
        pending=[],
        rules=RULES,
        limits=LIMITS,
        fee_bps=D(10),
        slippage_bps=D(5),
        day_start_equity=D(10000),
        halted=False,
        last_marks={},
    )
    args.update(overrides)
    return CycleInputs(**args)


def pending_order(symbol: str, side: str, quantity: str, decided_ms: int, reference: str = "100") -> PendingOrder:
    intent = OrderIntent(
        symbol=symbol,
        side=side,  # type: ignore[arg-type]
        quantity=D(quantity),
        reference_price=D(reference),
        client_order_id=client_order_id("main", decided_ms, symbol),
        reason="test",
        requested_quantity=D(quantity),
        contributions={"a": 0.5},
        bar_open_ms=decided_ms,
    )
    return PendingOrder(intent=intent, decided_bar_ms=decided_ms)


def assert_equity_exact(result: CycleResult) -> None:
    positions_value = sum((p.quantity * result.marks[s] for s, p in result.portfolio.positions.items()), D(0))
    assert result.valuation.cash == result.portfolio.cash
    assert result.valuation.positions_value == positions_value
    assert result.valuation.equity == result.portfolio.cash + positions_value


# --------------------------------------------------------------------------- fills at the next bar's open


def test_a_buy_decided_last_bar_fills_at_this_bars_open_plus_slippage_not_at_the_decision_bars_prices() -> None:
    # Decision bar T-1: open 99, close 100. This bar T opens at 100.5 (a gap) and closes at 101.
    bars = history(BTC, [98, 100, 101], opens=[97, 99, 100.5])
    result = run_cycle(inputs(histories={BTC: bars}, pending=[pending_order(BTC, "buy", "0.5", T - H)]))

    assert len(result.fills) == 1 and result.cancelled == []
    fill = result.fills[0].fill
    # 100.5 x (1 + 5 bps) = 100.55025, rounded UP to the 0.01 tick for a buy.
    assert fill.price == D("100.56")
    assert fill.fill_ms == T
    assert fill.notional == D("50.28")  # 0.5 x 100.56
    assert fill.fee == D("0.05028")  # 10 bps of the notional
    assert result.portfolio.cash == D("9949.66972")  # 10000 - 50.28 - 0.05028
    assert result.portfolio.positions[BTC].quantity == D("0.5")
    assert result.portfolio.positions[BTC].average_price == D("100.56")
    assert result.portfolio.realized_pnl == D("-0.05028")  # the fee, realised when paid
    assert result.marks[BTC] == D("101")
    assert result.valuation.equity == D("10000.16972")  # cash + 0.5 x 101
    assert_equity_exact(result)


def test_a_sell_fills_at_the_next_open_minus_slippage_rounded_down() -> None:
    bars = history(ETH, [50, 52, 53], opens=[49, 51, 52.37])
    held = Portfolio(cash=D(1000), positions={ETH: Position(ETH, D("2"), D("50"))})
    result = run_cycle(
        inputs(histories={ETH: bars}, portfolio=held, pending=[pending_order(ETH, "sell", "2", T - H, "52")])
    )

    fill = result.fills[0].fill
    # 52.37 x (1 - 5 bps) = 52.343815, rounded DOWN to the tick for a sell.
    assert fill.price == D("52.34")
    assert fill.fee == D("0.10468")  # 10 bps of 104.68
    assert result.portfolio.cash == D("1104.57532")  # 1000 + 104.68 - 0.10468
    assert ETH not in result.portfolio.positions
    realization = result.fills[0].realization
    assert realization is not None and realization.realized_pnl == D("4.57532")  # (52.34 - 50) x 2 - fee
    assert_equity_exact(result)


def test_after_downtime_an_order_expires_instead_of_filling_at_a_price_that_is_gone() -> None:
    # Decided at T-3; the cycles of T-2 and T-1 never ran. Filling at T-2's open (77) two bars later
    # would book a price nobody could trade at any more: the order expires and this cycle decides afresh.
    bars = history(BTC, [70, 75, 80, 90, 101], opens=[70, 75, 77, 88, 100])
    result = run_cycle(inputs(histories={BTC: bars}, pending=[pending_order(BTC, "buy", "1", T - 3 * H)]))
    assert result.fills == []
    (intent, reason), = result.cancelled
    assert intent.client_order_id == client_order_id("main", T - 3 * H, BTC)
    assert reason.startswith(f"expired: the bar it was to fill at ({T - 2 * H}) was missed")
    assert result.portfolio.cash == D(10000)
    assert BTC in result.decisions  # voted on afresh in the same cycle


def test_an_order_fills_at_the_open_of_the_bar_right_after_its_decision() -> None:
    bars = history(BTC, [70, 75, 80, 90, 101], opens=[70, 75, 77, 88, 100])
    result = run_cycle(inputs(histories={BTC: bars}, pending=[pending_order(BTC, "buy", "1", T - H)]))
    fill = result.fills[0].fill
    assert (fill.fill_ms, fill.price) == (T, D("100.05"))  # 100 x 1.0005


def test_an_order_decided_on_this_very_bar_is_never_filled_at_its_own_prices() -> None:
    bars = history(BTC, [98, 100, 101], opens=[97, 99, 100.5])
    result = run_cycle(inputs(histories={BTC: bars}, pending=[pending_order(BTC, "buy", "0.5", T)]))
    assert result.fills == []
    assert [i.client_order_id for i, _ in result.cancelled] == [client_order_id("main", T, BTC)]
    assert result.portfolio.cash == D(10000)


def test_the_pending_order_of_a_skipped_symbol_is_cancelled_with_a_reason_not_filled() -> None:
    bars = history(BTC, [98, 100, float("nan")], opens=[97, 99, 100.5])
    result = run_cycle(inputs(histories={BTC: bars}, pending=[pending_order(BTC, "buy", "0.5", T - H)]))
    assert result.fills == []
    (intent, reason), = result.cancelled
    assert intent.symbol == BTC and "no valid bar" in reason
    assert result.portfolio.cash == D(10000)


# --------------------------------------------------------------------------- bad input skips one symbol


@pytest.mark.parametrize(
    ("bad", "expected_reason"),
    [
        (history(ETH, [50, 51, float("nan")]), "null_value"),
        (history(ETH, [50, 51, 0.0]), "non_positive_price"),
        (history(ETH, [50, 51, -3.0]), "non_positive_price"),
        (history(ETH, [50, 51, 52], last_ms=T + H), f"newest closed bar is {T + H}, expected {T}"),  # a future bar
        (history(ETH, [50, 51, 52], last_ms=T - H), f"newest closed bar is {T - H}, expected {T}"),  # stale
    ],
    ids=["nan-close", "zero-close", "negative-close", "future-bar", "stale-bar"],
)
def test_a_symbol_with_a_bad_last_bar_is_skipped_with_its_reason_while_the_others_trade(
    bad: BarHistory, expected_reason: str
) -> None:
    good = history(BTC, [98, 99, 100])
    result = run_cycle(inputs(histories={BTC: good, ETH: bad}, agents=[voter("bull", 1.0)]))

    assert set(result.skipped) == {ETH}
    assert expected_reason in result.skipped[ETH]
    assert {s.symbol for s in result.signals} == {BTC}
    assert ETH not in result.decisions and ETH not in result.targets
    assert [(o.symbol, o.side) for o in result.plan.orders] == [(BTC, "buy")]
    # Full conviction: 25% of 10000 at the mark 100 = 25 BTC.
    assert result.plan.orders[0].quantity == D("25")
    assert result.plan.orders[0].bar_open_ms == T


def test_a_symbol_the_market_could_not_serve_is_skipped_with_the_adapters_reason() -> None:
    result = run_cycle(
        inputs(
            histories={BTC: history(BTC, [98, 99, 100])},
            unavailable={ETH: "market data: binance fetch_ohlcv failed 5 times"},
            agents=[voter("bull", 1.0)],
        )
    )
    assert result.skipped == {ETH: "market data: binance fetch_ohlcv failed 5 times"}
    assert [o.symbol for o in result.plan.orders] == [BTC]


def test_a_held_position_in_a_skipped_symbol_is_marked_at_its_last_good_mark() -> None:
    held = Portfolio(cash=D(5000), positions={ETH: Position(ETH, D("10"), D("40"))})
    result = run_cycle(
        inputs(
            histories={BTC: history(BTC, [98, 99, 100]), ETH: history(ETH, [50, 51, float("nan")])},
            portfolio=held,
            last_marks={ETH: D("51")},
        )
    )
    assert result.marks[ETH] == D("51")
    assert result.valuation.equity == D("5510")  # 5000 + 10 x 51
    # No order for the skipped symbol, even though the (abstaining) ensemble's target would be flat.
    assert all(o.symbol != ETH for o in result.plan.orders)
    assert_equity_exact(result)


# --------------------------------------------------------------------------- agent failures


def test_an_agent_that_raises_abstains_with_agent_error_and_the_others_still_decide() -> None:
    def broken(h: BarHistory, c: AgentContext) -> Vote:
        raise ZeroDivisionError("division by zero in my indicator")

    agents = [Agent("broken", 0, broken), voter("bull", 1.0)]
    result = run_cycle(inputs(histories={BTC: history(BTC, [98, 99, 100]), ETH: history(ETH, [48, 49, 50])}, agents=agents))

    by_key = {(s.agent, s.symbol): s for s in result.signals}
    assert len(by_key) == 4
    for symbol in (BTC, ETH):
        failed = by_key[("broken", symbol)]
        assert failed.abstained and failed.value == 0.0 and failed.confidence == 0.0
        assert failed.reason == "agent error: ZeroDivisionError: division by zero in my indicator"
        assert not by_key[("bull", symbol)].abstained
        decision = result.decisions[symbol]
        assert decision.voters == ("bull",) and decision.abstainers == ("broken",)
        assert decision.score == 1.0  # the broken agent's weight went to the agent that voted
    assert sorted(o.symbol for o in result.plan.orders) == [BTC, ETH]


def test_an_abstention_carries_the_runners_note_for_that_agent() -> None:
    result = run_cycle(
        inputs(
            histories={BTC: history(BTC, [98, 99, 100])},
            agents=[abstainer("sentiment")],
            agent_notes={"sentiment": "headline feed failed: cannot read /nonexistent"},
        )
    )
    (signal,) = result.signals
    assert signal.abstained
    assert "headline feed failed: cannot read /nonexistent" in signal.reason


# --------------------------------------------------------------------------- rebalance band


def _held_at(fraction: str, mark: float = 100.0) -> Portfolio:
    """A 10000 book holding ``fraction`` of its equity in BTC at ``mark``."""
    quantity = D(fraction) * D(10000) / D(repr(mark))
    return Portfolio(cash=D(10000) - quantity * D(repr(mark)), positions={BTC: Position(BTC, quantity, D(repr(mark)))})


def test_a_rebalance_smaller_than_the_band_is_suppressed() -> None:
    # Held 10% of equity; the ensemble asks for 11%: a 1% change is inside the default 2% band.
    result = run_cycle(
        inputs(histories={BTC: history(BTC, [100, 100.0, 100.0])}, portfolio=_held_at("0.10"), agents=[voter("bull", score_for(0.11))])
    )
    assert result.targets == {}
    assert result.plan.orders == [] and result.plan.rejections == []


def test_a_rebalance_larger_than_the_band_trades() -> None:
    result = run_cycle(
        inputs(histories={BTC: history(BTC, [100, 100.0, 100.0])}, portfolio=_held_at("0.10"), agents=[voter("bull", score_for(0.15))])
    )
    assert result.targets[BTC] == pytest.approx(0.15)
    (order,) = result.plan.orders
    assert order.side == "buy"
    assert order.quantity == D("5")  # from 10 BTC (10%) to 15 BTC (15%) at 100


def test_a_new_position_below_the_band_is_not_opened() -> None:
    result = run_cycle(inputs(histories={BTC: history(BTC, [100, 100.0, 100.0])}, agents=[voter("bull", score_for(0.01))]))
    assert result.targets == {} and result.plan.orders == []


@pytest.mark.parametrize("held", ["0.10", "0.015"], ids=["large", "smaller-than-the-band"])
def test_closing_to_flat_is_never_suppressed_by_the_band(held: str) -> None:
    portfolio = _held_at(held)
    result = run_cycle(
        inputs(histories={BTC: history(BTC, [100, 100.0, 100.0])}, portfolio=portfolio, agents=[voter("bear", -1.0)])
    )
    assert result.targets == {BTC: 0.0}
    (order,) = result.plan.orders
    assert order.side == "sell"
    assert order.quantity == portfolio.positions[BTC].quantity  # all of it


def test_a_wider_band_suppresses_what_the_default_band_would_trade() -> None:
    base = inputs(histories={BTC: history(BTC, [100, 100.0, 100.0])}, portfolio=_held_at("0.10"), agents=[voter("bull", score_for(0.15))])
    assert run_cycle(replace(base, rebalance_band=0.06)).plan.orders == []
    assert len(run_cycle(base).plan.orders) == 1


# --------------------------------------------------------------------------- equity


def test_equity_is_cash_plus_positions_at_this_bars_closes_exactly_after_several_fills() -> None:
    # Awkward prices, so any float in the books would show in the last digits.
    btc = history(BTC, [60123.37, 60222.91, 60001.13], opens=[60000.01, 60150.77, 60210.29])
    eth = history(ETH, [3001.07, 2999.99, 3010.33], opens=[3000.11, 3002.37, 2998.71])
    sol = history(SOL, [150.0, 151.0, float("nan")])
    held = Portfolio(
        cash=D("7000.123456789"),
        positions={ETH: Position(ETH, D("0.33333"), D("2950.5")), SOL: Position(SOL, D("3"), D("140"))},
    )
    result = run_cycle(
        inputs(
            histories={BTC: btc, ETH: eth, SOL: sol},
            portfolio=held,
            pending=[pending_order(BTC, "buy", "0.03331", T - H), pending_order(ETH, "buy", "0.11111", T - H)],
            last_marks={SOL: D("151")},
            agents=[voter("bull", 0.3, 0.7), abstainer()],
        )
    )
    assert len(result.fills) == 2
    assert result.marks == {BTC: D("60001.13"), ETH: D("3010.33"), SOL: D("151")}
    expected = result.portfolio.cash + sum(
        (p.quantity * result.marks[s] for s, p in result.portfolio.positions.items()), D(0)
    )
    assert result.valuation.equity == expected
    assert_equity_exact(result)
    # And the P&L identity the ledger promises: equity = funding + realised + unrealised, exactly.
    funding = held.cash + sum((p.quantity * p.average_price for p in held.positions.values()), D(0))
    assert result.valuation.equity == funding + result.portfolio.realized_pnl + result.valuation.unrealized_pnl
    # The risk manager sized against the same equity (the skipped SOL at its last mark, not its cost).
    assert result.plan.equity == result.valuation.equity


def test_a_skipped_symbol_is_valued_at_its_last_mark_by_the_risk_manager_too() -> None:
    # A big winner (bought at 100, last marked at 200) whose feed breaks this bar. Valuing it at its
    # cost instead of its last mark would show a 25% "loss" and halt the book for the rest of the day.
    held = Portfolio(cash=D(5000), positions={SOL: Position(SOL, D("25"), D("100"))})
    result = run_cycle(
        inputs(
            histories={BTC: history(BTC, [98, 99, 100]), SOL: history(SOL, [190, 200, float("nan")])},
            portfolio=held,
            last_marks={SOL: D("200")},
            day_start_equity=D(10000),
            limits=replace(LIMITS, daily_loss_limit_fraction=D("0.03")),
            agents=[voter("bull", 1.0)],
        )
    )
    assert result.valuation.equity == D(10000)
    assert result.plan.equity == D(10000)
    assert not result.plan.halted, result.plan.halt_reason
    assert [(o.symbol, o.side) for o in result.plan.orders] == [(BTC, "buy")]


# --------------------------------------------------------------------------- dust


def _dust_book() -> Portfolio:
    """0.00047 BTC bought at 6316 (2.97 USDT, under the 10 USDT minimum order) and 9000 USDT."""
    return Portfolio(cash=D(9000), positions={BTC: Position(BTC, D("0.00047"), D("6316"), {"old": 1.0}, T - 500 * H)})


def test_dust_below_its_stop_does_not_lock_the_symbol_the_next_buy_sweeps_it_in() -> None:
    # The mark 5900 is 6.6% under the dust's cost: the old rule fired a stop-loss every cycle (refused
    # as min_cost) and refused the buy as stop_loss_cooldown.
    limits = replace(LIMITS, stop_loss_fraction=D("0.05"))
    decide = inputs(
        histories={BTC: history(BTC, [5900.0, 5900.0, 5900.0])},
        portfolio=_dust_book(),
        limits=limits,
        agents=[voter("bull", score_for(0.25))],
    )
    decided = run_cycle(decide)
    assert decided.targets == {BTC: pytest.approx(0.25)}
    assert [r.kind for r in decided.plan.rejections] == []
    (order,) = decided.plan.orders
    book_equity = D(9000) + D("0.00047") * D(5900)
    assert (order.side, order.purpose) == ("buy", "rebalance")
    assert order.quantity == (D("0.25") * book_equity / D(5900) - D("0.00047")).quantize(D("0.00001"), rounding="ROUND_DOWN")

    # Next bar: it fills at the open 6000 + 5 bps and grows the dust into one position.
    filled = run_cycle(
        replace(
            decide,
            bar_open_ms=T + H,
            histories={BTC: history(BTC, [5900.0, 5900.0, 5900.0, 6000.0], last_ms=T + H, opens=[5900, 5900, 5900, 6000])},
            pending=[PendingOrder(order, T)],
            agents=[abstainer()],
            weights={"quiet": 1.0},
        )
    )
    (fill,) = filled.fills
    price = D("6003.00")
    assert fill.fill.price == price
    position = filled.portfolio.positions[BTC]
    assert position.quantity == D("0.00047") + order.quantity  # swept in: one position, nothing written off
    paid = D("0.00047") * D("6316") + order.quantity * price
    assert abs(position.average_price - paid / position.quantity) < D("1e-12")
    fee = order.quantity * price * D("0.001")
    assert filled.portfolio.cash == D(9000) - order.quantity * price - fee  # the dust's coins are not paid twice
    assert_equity_exact(filled)


def test_dust_counts_as_flat_no_sell_is_asked_for_it_every_cycle() -> None:
    result = run_cycle(
        inputs(histories={BTC: history(BTC, [5900.0, 5900.0, 5900.0])}, portfolio=_dust_book(), agents=[voter("bear", -1.0)])
    )
    assert result.targets == {} and result.plan.orders == [] and result.plan.rejections == []
    assert result.portfolio.positions[BTC].quantity == D("0.00047")  # still on the books, valued at the mark
    assert result.valuation.equity == D(9000) + D("0.00047") * D(5900)
