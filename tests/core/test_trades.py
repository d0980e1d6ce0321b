"""Round trips and profit per period against hand-computed figures (average cost, fees in P&L)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from tradepipe.core.ledger import LedgerInvariantError
from tradepipe.core.types import Fill
from tradepipe.core.trades import (
    LedgerFill,
    SnapshotPoint,
    period_profit,
    price_places,
    round_trips,
)

DAY1 = 1_764_633_600_000  # 2025-12-02T00:00:00Z
DAY2 = DAY1 + 86_400_000
HOUR = 3_600_000
VOTE = {"momentum": 0.6, "trend": 0.2, "breakout": 0.0}
SHORT_VOTE = {"mean_reversion": -0.5}


def fill(n: int, symbol: str, side: str, qty: str, px: str, fee: str, ms: int, contributions=VOTE, booked=None) -> LedgerFill:
    quantity, price = D(qty), D(px)
    return LedgerFill(
        n, Fill(f"c{n}", symbol, side, quantity, price, D(fee), quantity * price, ms),  # type: ignore[arg-type]
        contributions, booked,
    )


def hand_ledger() -> list[LedgerFill]:
    """BTC: buy 1 @100, buy 1 @110 (average 105), sell 0.5 @120, sell 1.5 @90 (closed).
    ETH: short 2 @50, buy 3 @40 (flips: the short closes, 1 long opens at 40). Fees 0.1% of notional."""
    return [
        fill(1, "BTC/USDT", "buy", "1", "100", "0.1", DAY1 + HOUR),
        fill(2, "BTC/USDT", "buy", "1", "110", "0.11", DAY1 + 2 * HOUR),
        fill(3, "BTC/USDT", "sell", "0.5", "120", "0.06", DAY1 + 3 * HOUR),
        fill(4, "BTC/USDT", "sell", "1.5", "90", "0.135", DAY2 + HOUR),
        fill(5, "ETH/USDT", "sell", "2", "50", "0.1", DAY2 + 2 * HOUR, SHORT_VOTE),
        fill(6, "ETH/USDT", "buy", "3", "40", "0.12", DAY2 + 3 * HOUR, {"trend": 0.4}),
    ]


def test_round_trips_match_hand_computed_pnl_fees_and_prices() -> None:
    btc, eth_short, eth_long = round_trips(hand_ledger(), marks={"ETH/USDT": D("45")})

    # -0.1 - 0.11 (entry fees) + 0.5 x (120 - 105) - 0.06 + 1.5 x (90 - 105) - 0.135
    assert (btc.status, btc.side, btc.pnl, btc.fees) == ("closed", "long", D("-15.405"), D("0.405"))
    assert (btc.entry_price, btc.exit_price, btc.quantity) == (D("105"), D("97.5"), D("2"))
    assert (btc.entry_ms, btc.exit_ms) == (DAY1 + HOUR, DAY2 + HOUR)
    assert btc.credited_agents == ["momentum", "trend"]  # breakout's zero vote earns no credit
    # -0.1 (entry fee) + 2 x (50 - 40) - 0.12 (the whole flipping fee closes the short, as the ledger books it)
    assert (eth_short.status, eth_short.side, eth_short.pnl, eth_short.fees) == ("closed", "short", D("19.78"), D("0.22"))
    assert (eth_short.exit_price, eth_short.quantity) == (D("40"), D("2"))
    assert eth_short.credited_agents == ["mean_reversion"]
    assert (eth_long.status, eth_long.side, eth_long.pnl, eth_long.fees) == ("open", "long", D("0"), D("0"))
    assert (eth_long.entry_price, eth_long.open_quantity, eth_long.unrealized_pnl) == (D("40"), D("1"), D("5"))
    assert eth_long.credited_agents == ["trend"]
    assert btc.pnl + eth_short.pnl + eth_long.pnl == D("4.375")  # the book's realised P&L


def test_profit_per_day_adds_up_to_the_ledger() -> None:
    fills = hand_ledger()
    snapshots = [SnapshotPoint(DAY1 + 3 * HOUR, D("10007.23"), D("-10")), SnapshotPoint(DAY2 + 3 * HOUR, D("10009.375"), D("5"))]

    day1, day2 = period_profit(fills, round_trips(fills), snapshots, "daily")

    assert (day1.period, day1.realized_pnl, day1.fees, day1.trades, day1.win_rate) == ("2025-12-02", D("7.23"), D("0.27"), 0, None)
    assert day1.unrealized_pnl == D("-10")
    assert (day2.period, day2.realized_pnl, day2.fees, day2.trades, day2.win_rate) == ("2025-12-03", D("-2.855"), D("0.355"), 2, 0.5)
    assert day1.realized_pnl + day2.realized_pnl == D("4.375")
    assert day2.unrealized_pnl == D("5") and day2.equity_end == D("10009.375")


def test_weeks_are_iso_weeks_and_months_calendar_months() -> None:
    fills = hand_ledger()
    (week,) = period_profit(fills, round_trips(fills), [], "weekly")
    (month,) = period_profit(fills, round_trips(fills), [], "monthly")

    assert week.period == "2025-W49" and week.start.isoformat() == "2025-12-01"  # a Monday
    assert month.period == "2025-12" and month.realized_pnl == D("4.375") and month.trades == 2
    assert week.unrealized_pnl is None  # no snapshot: not invented


def test_a_replay_that_disagrees_with_the_booked_pnl_is_refused() -> None:
    fills = hand_ledger()
    fills[3] = fill(4, "BTC/USDT", "sell", "1.5", "90", "0.135", DAY2 + HOUR, booked=D("-22.634"))

    with pytest.raises(LedgerInvariantError, match="fill 4"):
        round_trips(fills)


def test_price_places_follow_the_finest_fill_price() -> None:
    assert price_places([D("100"), D("0.50")]) == 2
    assert price_places([D("0.61234"), D("1.2")]) == 5
