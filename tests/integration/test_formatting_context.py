"""Money is shown half to even to the cent whatever the thread's decimal context says.

A library may change the thread's context (ccxt's ``decimal_to_precision`` does); before one formatter
took over, ``status``, the day chart and the cycle's metadata then showed -15.405 as -15.41. Here the
context is made hostile on purpose (ROUND_HALF_UP and ROUND_CEILING, and a short precision) before
each view is built from a real ledger.
"""

from __future__ import annotations

import decimal
import json
from collections.abc import Iterator
from decimal import Decimal as D
from pathlib import Path

import pytest

from tests.integration.test_trader_views import DAY2, HOUR, at, build_hand_ledger, cli
from tradepipe.adapters.db.engine import session_factory
from tradepipe.adapters.db.models import PortfolioSnapshotRow
from tradepipe.assets.portfolio import portfolio_metadata
from tradepipe.core.formatting import money, percent, price
from tradepipe.trading.unit_of_work import CycleOutcome


@pytest.fixture(params=[decimal.ROUND_HALF_UP, decimal.ROUND_CEILING])
def hostile_context(request: pytest.FixtureRequest) -> Iterator[str]:
    with decimal.localcontext() as context:
        context.rounding = request.param
        context.prec = 6  # a quantize in this context would raise InvalidOperation for 10002.12
        yield request.param


def test_formatter_rounds_half_to_even_in_any_context(hostile_context: str) -> None:
    # independent computation: Python's round() on exact binary-free halves is half to even
    assert [money(D(v)) for v in ("-15.405", "2.665", "0.405", "10002.125", "1234567.895")] == [
        "-15.40", "2.66", "0.40", "10,002.12", "1,234,567.90"
    ]
    assert money(-15.405) == "-15.40" and money(None) == "-" and money(D("1234.5"), grouping=False) == "1234.50"
    assert price(D("97.505"), 2) == "97.50" and price(D("0.000125"), 5) == "0.00012"
    assert percent(0.084215) == "8.42%" and percent(D("0.00125"), 1) == "0.1%" and percent(0.1, signed=True) == "+10.00%"


def test_status_rounds_half_to_even_in_a_hostile_context(migrated_url: str, hostile_context: str) -> None:
    build_hand_ledger(migrated_url)
    with session_factory(migrated_url).begin() as session:
        session.add(PortfolioSnapshotRow(
            book="main", bar_ts=at(DAY2 + 4 * HOUR), cash=D("10002.125"), positions_value=D(0), equity=D("10002.125"),
            realized_pnl=D("-15.405"), unrealized_pnl=D("2.665"), fees_paid=D("0.405"), day_start_equity=D("10000"), positions={},
        ))

    report = json.loads(cli(migrated_url, "status", "--json"))["portfolio"]
    shown = cli(migrated_url, "status")

    assert (report["equity"], report["realized_pnl"], report["unrealized_pnl"], report["fees_paid"], report["day_pnl"]) == (
        "10002.12", "-15.40", "2.66", "0.40", "2.12"
    )
    assert "equity 10002.12" in shown and "realised -15.40" in shown and "unrealised 2.66" in shown


def test_day_chart_rounds_half_to_even_in_a_hostile_context(migrated_url: str, tmp_path: Path, hostile_context: str) -> None:
    build_hand_ledger(migrated_url)
    output = tmp_path / "btc.html"

    cli(migrated_url, "plot", "--symbol", "BTC/USDT", "--output", str(output))

    page = output.read_text()
    assert "<td>-15.40</td>" in page and "<td>0.40</td>" in page  # the BTC round trip: P&L -15.405, fees 0.405
    assert "-15.41" not in page and "<td>0.41</td>" not in page


def test_cycle_metadata_rounds_half_to_even_in_a_hostile_context(hostile_context: str) -> None:
    outcome = CycleOutcome(
        book="main", bar_open_ms=DAY2, status="traded", equity=D("10002.125"), cash=D("9000.005"), day_pnl=D("2.665"),
        realized_pnl=D("-15.405"), unrealized_pnl=D("0.405"),
        positions=[{"symbol": "BTC/USDT", "quantity": 1.0, "average_price": 97.505, "mark": 100.015, "value": 1002.125}],
        last_signals=[],
    )

    meta = portfolio_metadata(outcome, "synthetic", {"BTC/USDT": D("0.01")})

    assert (meta["equity"], meta["cash"], meta["day_pnl"], meta["realized_pnl"], meta["unrealized_pnl"]) == (
        10002.12, 9000.0, 2.66, -15.4, 0.4
    )
    row = meta["positions"].records[0].data
    assert (row["average_price"], row["mark"], row["value"]) == (97.5, 100.02, 1002.12)
