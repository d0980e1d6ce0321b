"""Every outside call has a bounded, configurable wait: the settings reach the exchange, the feed and Redis.

"Hung" is a real local socket that accepts connections and never answers (the ``silent_database``
fixture serves any protocol: it never sends a byte).
"""

from __future__ import annotations

import time

import pytest

from tests.integration.test_ledger_faults import silent_database  # noqa: F401 (fixture)
from tradepipe.adapters.ccxt_broker import CcxtBroker
from tradepipe.adapters.market import CcxtMarket, build_market
from tradepipe.adapters.weights_store import WeightStore
from tradepipe.trading.runner import TradingRunner
from tradepipe.config.settings import load_settings

BAR0 = 1_700_000_040_000


def test_exchange_requests_carry_the_configured_timeout() -> None:
    assert CcxtMarket("binance").exchange.timeout == 10_000  # the documented default
    settings = load_settings(exchange_timeout_seconds=2.5, market_source="ccxt")
    market = build_market("ccxt", exchange_id="binance", exchange_timeout_s=settings.exchange_timeout_seconds)
    assert market.exchange.timeout == 2_500  # type: ignore[attr-defined]
    broker_settings = load_settings(
        exchange_timeout_seconds=2.5, market_source="ccxt", broker="ccxt", exchange_api_key="k", exchange_secret="s"
    )
    assert CcxtBroker.from_settings(broker_settings).exchange.timeout == 2_500


def test_a_hung_news_feed_costs_the_feed_timeout_and_the_cycle_goes_on(silent_database: str, sqlite_url: str) -> None:  # noqa: F811
    from tradepipe.adapters.db.engine import upgrade

    upgrade(sqlite_url)
    feed = "http://" + silent_database.split("@", 1)[1].split("/", 1)[0] + "/feed.xml"
    runner = TradingRunner(load_settings(database_url=sqlite_url, news_feed=feed, news_feed_timeout_seconds=0.5))
    started = time.perf_counter()
    outcome = runner.run_cycle(BAR0)
    assert time.perf_counter() - started < 5
    assert outcome.status == "traded"
    reasons = {s["reason"] for s in outcome.last_signals if s["agent"] == "sentiment"}
    assert reasons and all("headline feed failed" in r and "timed out" in r for r in reasons), reasons


@pytest.mark.parametrize("timeout_s", [0.2, 1.0])
def test_a_hung_redis_costs_the_configured_redis_timeout(silent_database: str, timeout_s: float) -> None:  # noqa: F811
    redis_url = "redis://" + silent_database.split("@", 1)[1].split("/", 1)[0] + "/0"
    store = WeightStore(None, redis_url, "main", frozenset({"momentum"}), {"momentum": 1.0}, None, redis_timeout_s=timeout_s)
    started = time.perf_counter()
    loaded = store.load()
    elapsed = time.perf_counter() - started
    assert loaded.source == "defaults" and "Timeout" in loaded.notes[0]
    assert timeout_s * 0.9 < elapsed < timeout_s * 2 + 1  # one attempt: no retries multiply the bound
