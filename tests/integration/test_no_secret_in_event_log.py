"""No signature, key or token in Dagster's event log: a live-path run with ccxt logging at DEBUG.

The trading cycle runs as a real Dagster run (``portfolio_state`` through its resources) with the ccxt
broker, on ``test_ccxt_broker_cycle``'s offline binance: ccxt signs every request with the planted
key and secret and logs each one (method, signed URL with ``signature=...``, headers with
``X-MBX-APIKEY``) through the ``ccxt`` logger, which the instance captures at DEBUG into the run's
events, as a deployment that asks for library logs would. Every event of the run, serialised, is
grepped for the key, the secret and any unmasked signature.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import dagster as dg
import pytest
from dagster._serdes import serialize_value

from tests.adapters.test_broker import API_KEY, SECRET
from tests.integration.test_ccxt_broker_cycle import HOUR, SEND_DELAY_MS, START, Harness, harness, recorded  # noqa: F401 (fixtures)
from tradepipe.adapters.market import CcxtMarket
from tradepipe.assets.portfolio import portfolio_state
from tradepipe.config.settings import load_settings
from tradepipe.resources import build_resources
from tradepipe.resources.clock import FixedClock
from tradepipe.resources.market import MarketDataResource

pytestmark = pytest.mark.shared_data

UNMASKED_SIGNATURE = re.compile(r"signature=(?!\*\*\*)[0-9a-fA-F]")


def _run_cycle_in_dagster(h: Harness, index: int, instance: dg.DagsterInstance) -> dg.ExecuteInJobResult:
    bar = h.candles.bar(index)
    h.exchange.clock = bar + HOUR + SEND_DELAY_MS
    price = h.candles.open(index + 1)
    h.exchange.book = [(price, Decimal("0.05")), (price + Decimal("0.5"), Decimal("100"))]  # as Harness.run

    class RecordedMarket(MarketDataResource):
        def build(self) -> Any:
            return CcxtMarket("binance", exchange=h.market_exchange, sleep=lambda s: None)

    resources = {**build_resources(load_settings(), "test"), "market": RecordedMarket(source="ccxt"), "clock": FixedClock(now=bar + HOUR + SEND_DELAY_MS)}
    return dg.materialize(
        [portfolio_state], resources=resources, instance=instance,
        run_config={"ops": {"portfolio_state": {"config": {"bar_open_ms": bar}}}},
    )


def test_a_live_path_run_keeps_every_key_secret_and_signature_out_of_its_events(harness: Harness) -> None:  # noqa: F811 (the fixture)
    h = harness
    index, outcome = h.run_until_order(START)  # an order sent and waiting: the next cycle looks it up, signed
    assert outcome is not None
    (placed,) = outcome.orders_placed
    coid = placed["client_order_id"]

    logs = {"python_logs": {"managed_python_loggers": ["ccxt", "tradepipe"], "python_log_level": "DEBUG"}}
    with dg.instance_for_test(overrides=logs) as instance:
        result = _run_cycle_in_dagster(h, index + 1, instance)
        assert result.success
        events = [serialize_value(entry) for entry in instance.all_logs(result.run_id)]

    assert h.order(coid).status == "filled"  # the run booked the exchange's fill: signed look-ups were made
    everything = "\n".join(events)
    # ccxt's request lines reached the event log, masked: the test sees what a leak would look like
    assert "signature=***" in everything and "X-MBX-APIKEY" in everything
    assert API_KEY not in everything
    assert SECRET not in everything
    assert not UNMASKED_SIGNATURE.search(everything), UNMASKED_SIGNATURE.search(everything)
