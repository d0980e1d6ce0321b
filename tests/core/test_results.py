"""Results tables (per pair, exit reasons, summary, breakdown) against hand-computed figures."""

from __future__ import annotations

import math
from decimal import Decimal as D

import numpy as np
import pytest

from tests.core.test_trades import DAY1, DAY2, HOUR, hand_ledger
from tradepipe.core.results import (
    ClosingOrder,
    book_results,
    TradedBook,
    drawdown_span,
    equity_breakdown,
    exit_reason,
    exposed_bars,
    strategy_results,
)
from tradepipe.core.trades import round_trips

CASH = D("10000")
# fill id -> the order it belongs to: BTC's last sell was a stop-loss, ETH's buy was cut by a risk limit
ORDERS = {
    1: ClosingOrder("rebalance BTC/USDT", D(1), D(1)),
    2: ClosingOrder("rebalance BTC/USDT", D(1), D(1)),
    3: ClosingOrder("rebalance BTC/USDT", D("0.5"), D("0.5")),
    4: ClosingOrder("stop-loss: mark 90 <= stop 99.75 (5.0% from average entry 105)", D("1.5"), D("1.5")),
    5: ClosingOrder("rebalance ETH/USDT", D(2), D(2)),
    6: ClosingOrder("rebalance ETH/USDT", D(6), D(3)),
}
CURVE = [(DAY1 + 3 * HOUR, D("10007.23"), D("0")), (DAY2 + HOUR, D("9990"), D("0")), (DAY2 + 3 * HOUR, D("10009.375"), D("45"))]


def results(breakdown=None):  # type: ignore[no-untyped-def]
    fills = hand_ledger()
    trips = round_trips(fills, marks={"ETH/USDT": D("45")})
    return book_results(
        name="bt", book="bt", quote_currency="USDT", timeframe="1h", periods_per_year=8760, starting_cash=CASH, fills=fills,
        trips=trips, closing_orders=ORDERS, curve=CURVE, as_of_ms=DAY2 + 3 * HOUR, breakdown=breakdown,
    )


def test_per_pair_rows_match_the_hand_computed_trips() -> None:
    pairs = {row["pair"]: row for row in results()["pairs"]}

    # BTC closed at -15.405 after 0.405 fees, held DAY1+1h .. DAY2+1h (one day); ETH: short closed +19.78, long open
    assert (pairs["BTC/USDT"]["trades"], pairs["BTC/USDT"]["losses"], pairs["BTC/USDT"]["avg_duration_seconds"]) == (1, 1, 86_400)
    assert pairs["BTC/USDT"]["profit_quote"] == pytest.approx(-15.405) and pairs["BTC/USDT"]["fees_quote"] == pytest.approx(0.405)
    assert (pairs["ETH/USDT"]["trades"], pairs["ETH/USDT"]["wins"], pairs["ETH/USDT"]["open"]) == (1, 1, 1)
    assert pairs["ETH/USDT"]["profit_quote"] == pytest.approx(-0.1 + 19.88)
    total = pairs["TOTAL"]
    assert (total["trades"], total["wins"], total["win_rate_pct"]) == (2, 1, 50.0)
    assert total["profit_quote"] == pytest.approx(4.375) and total["fees_quote"] == pytest.approx(0.625)  # the ledger's totals
    assert total["profit_pct"] == pytest.approx(4.375 / 10000 * 100)


def test_exit_reasons_come_from_the_closing_order() -> None:
    reasons = {row["exit_reason"]: row for row in results()["exit_reasons"]}

    assert [r for r, row in reasons.items() if row["trades"] or row["open"]] == ["stop_loss", "risk_cap", "expiry"]
    assert reasons["stop_loss"]["profit_quote"] == pytest.approx(-15.405)
    assert reasons["risk_cap"]["profit_quote"] == pytest.approx(19.78)
    assert (reasons["expiry"]["trades"], reasons["expiry"]["open"]) == (0, 1)
    assert reasons["signal"]["trades"] == 0
    assert sum(row["trades"] for row in reasons.values()) == 2


def test_exit_reason_rules() -> None:
    (closed, *_) = round_trips(hand_ledger())
    assert exit_reason(closed, ClosingOrder("rebalance", D("1.000"), D("0.9995"))) == "signal"  # a rounding step is not a cap
    assert exit_reason(closed, ClosingOrder("rebalance", D(2), D(1))) == "risk_cap"
    assert exit_reason(closed, None) == "signal"


def test_summary_matches_an_independent_computation() -> None:
    summary = results()["summary"]
    equity = np.array([10007.23, 9990.0, 10009.375])
    returns = equity / np.array([10000.0, *equity[:-1]]) - 1
    sharpe = returns.mean() / returns.std(ddof=1) * math.sqrt(8760)
    downside = math.sqrt(np.mean(np.minimum(returns, 0) ** 2))

    assert summary["total_return_pct"] == pytest.approx(0.09375)
    assert summary["cagr_pct"] == pytest.approx(((10009.375 / 10000) ** (8760 / 3) - 1) * 100)
    assert summary["sharpe"] == pytest.approx(sharpe) and summary["sortino"] == pytest.approx(returns.mean() / downside * math.sqrt(8760))
    assert summary["max_drawdown_pct"] == pytest.approx((9990 / 10007.23 - 1) * 100)
    assert (summary["peak"], summary["trough"], summary["recovered"]) == ("2025-12-02T03:00:00Z", "2025-12-03T01:00:00Z", "2025-12-03T03:00:00Z")
    assert summary["calmar"] == pytest.approx(summary["cagr_pct"] / abs(summary["max_drawdown_pct"]))
    assert summary["exposure_pct"] == pytest.approx(100 / 3)  # one bar of three held a position
    notional = 100 + 110 + 60 + 135 + 100 + 120
    assert summary["turnover_per_year"] == pytest.approx(notional / equity.mean() * 8760 / 3)
    assert summary["fees_quote"] == pytest.approx(0.625) and summary["trades"] == 2


def test_daily_breakdown_counts_a_trade_on_the_day_it_closes() -> None:
    rows = results("daily")["breakdown"]["rows"]

    assert [(r["period"], r["trades"]) for r in rows] == [("2025-12-02", 0), ("2025-12-03", 2)]
    assert rows[0]["profit_quote"] == pytest.approx(7.23) and rows[1]["profit_quote"] == pytest.approx(10009.375 - 10007.23)
    assert sum(r["profit_quote"] for r in rows) == pytest.approx(9.375)


def test_drawdown_from_the_starting_cash_and_breakdown_by_month() -> None:
    span = drawdown_span([1, 2, 3], [9000.0, 9500.0, 8000.0], 10_000.0)
    assert span["max_drawdown_pct"] == pytest.approx(-20.0) and span["recovered"] is None
    assert span["peak"] == "1970-01-01T00:00:00Z"  # the starting cash, before the first bar
    assert drawdown_span([1], [10_001.0], 10_000.0)["max_drawdown_pct"] == 0.0
    months = equity_breakdown([DAY1, DAY1 + 40 * 86_400_000], [11_000.0, 9_900.0], 10_000.0, "monthly")
    assert [(m["period"], round(m["return_pct"], 6)) for m in months] == [("2025-12", 10.0), ("2026-01", -10.0)]


def test_exposure_from_round_trips_holds_from_the_entry_bar_to_before_the_exit_bar() -> None:
    trips = round_trips(hand_ledger())  # BTC held from DAY1 01:00 to DAY2 01:00; ETH short 02:00-03:00, long from 03:00
    bars = [DAY1 + h * HOUR for h in range(5)] + [DAY2 + h * HOUR for h in range(4)]
    spans = [(t.entry_ms, t.exit_ms) for t in trips]
    expected = [any(entry <= ms and (exit is None or ms < exit) for entry, exit in spans) for ms in bars]
    assert exposed_bars(bars, trips).tolist() == expected
    assert True in expected and False in expected


def test_a_walk_forward_book_gets_the_tables_of_a_backtest_book() -> None:
    """The same fills, orders and equity give the same tables whether the ledger or the engine kept them
    (the engine's exposure is read from the trips: here half a BTC is still held at the first bar)."""
    fills = hand_ledger()
    curve = [(CURVE[0][0], CURVE[0][1], D("50")), *CURVE[1:]]
    bars = [ms for ms, _, _ in curve]
    walked = strategy_results(
        name="wf", quote_currency="USDT", timeframe="1h", periods_per_year=8760, starting_cash=CASH, bar_ms=bars,
        books={"equal_weight": TradedBook(fills, ORDERS, [float(e) for _, e, _ in curve], {"ETH/USDT": D("45")})},
        untraded={"buy_and_hold": {"equity": [10_000.0, 10_100.0, 10_050.0], "traded": [10_000.0, 0.0, 0.0], "fees": 10.0}},
        breakdown="daily",
    )
    tested = book_results(
        name="bt", book="bt", quote_currency="USDT", timeframe="1h", periods_per_year=8760, starting_cash=CASH, fills=fills,
        trips=round_trips(fills, marks={"ETH/USDT": D("45")}), closing_orders=ORDERS, curve=curve, as_of_ms=bars[-1], breakdown="daily",
    )
    assert tested["summary"]["exposure_pct"] == pytest.approx(200 / 3)
    assert walked["pairs"]["equal_weight"] == tested["pairs"]
    assert walked["exit_reasons"]["equal_weight"] == tested["exit_reasons"]
    assert walked["breakdown"]["rows"]["equal_weight"] == tested["breakdown"]["rows"]
    assert walked["strategies"]["equal_weight"] == tested["summary"]
    assert "buy_and_hold" not in walked["pairs"] and walked["strategies"]["buy_and_hold"]["total_return_pct"] == pytest.approx(0.5)
