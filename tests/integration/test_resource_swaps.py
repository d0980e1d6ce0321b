"""The Dagster assets with resources swapped in, as a Dagster user tests their own project: no
environment variable, no monkeypatching, ``dg.materialize(..., resources={...})``.

* ``portfolio_state`` on a replay market (the 2018 Binance 1h candles) and a temporary SQLite ledger:
  the bars it records and the price its order fills at are the files' own, computed here from the CSV;
* a market resource whose SOL/USDT fails every other request: those cycles skip SOL with the reason,
  the others trade it, and every cycle of the other symbols goes through;
* a broker resource whose exchange refuses every order: the refusal is recorded on the order and no
  money moves.
"""

from __future__ import annotations

import copy
import csv
import json
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

import ccxt
import dagster as dg
import pytest
from pydantic import PrivateAttr
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.adapters.test_broker import API_KEY, SECRET, FakeBinanceSpot, Reject, install, no_network
from tradepipe.adapters.ccxt_broker import CcxtBroker
from tradepipe.adapters.db.engine import session_factory, upgrade
from tradepipe.adapters.db.ledger import datetime_to_ms
from tradepipe.adapters.db.models import FillRow, MarketBarRow, OrderRow, PortfolioSnapshotRow, SignalRow, TradingCycleRow
from tradepipe.adapters.market import MarketData, MarketDataError, SyntheticMarket
from tradepipe.assets.portfolio import portfolio_state
from tradepipe.trading.brokers import Broker, ExchangeBroker
from tradepipe.core.timeframes import timeframe_ms
from tradepipe.core.types import BarHistory
from tradepipe.resources import (
    AlertsResource,
    BrokerResource,
    LedgerDatabase,
    MarketDataResource,
    TradingConfigResource,
    WallClock,
    WeightsReplicaResource,
)

H = 3_600_000
M = 60_000
BPS = Decimal(10_000)
REPLAY = "binance_2018_octobot"
FIRST_BAR_INDEX = 300  # well past the agents' warm-up (and the 200 bars of history asked for)


@pytest.fixture
def ledger(sqlite_url: str) -> LedgerDatabase:
    upgrade(sqlite_url)
    return LedgerDatabase(url=sqlite_url)


def candles(shared_data: Path, symbol: str) -> list[dict[str, str]]:
    with (shared_data / "ohlcv" / REPLAY / f"{symbol.replace('/', '_')}-1h.csv").open() as file:
        return list(csv.DictReader(file))


def resources(ledger: LedgerDatabase, trading: TradingConfigResource, market: MarketDataResource, **swapped: Any) -> dict[str, Any]:
    return {
        "ledger": ledger,
        "trading": trading,
        "market": market,
        "broker": BrokerResource(kind="paper"),
        "weights_cache": WeightsReplicaResource(redis_url=None),
        "clock": WallClock(),
        "alerts": AlertsResource(),  # alerts off
        **swapped,
    }


def trade(bar_ms: int, resource_set: dict[str, Any]) -> dict[str, Any]:
    """Materialise portfolio_state for ``bar_ms``; its metadata, as plain values."""
    result = dg.materialize(
        [portfolio_state], resources=resource_set, run_config={"ops": {"portfolio_state": {"config": {"bar_open_ms": bar_ms}}}}
    )
    assert result.success
    (materialization,) = result.asset_materializations_for_node("portfolio_state")
    return {key: getattr(value, "value", value) for key, value in materialization.metadata.items()}


def rows(url: str, model: type) -> list[Any]:
    with session_factory(url)() as session:
        return list(session.scalars(select(model).order_by(model.id)))


# --------------------------------------------------------------------------- replay market, SQLite ledger


def test_portfolio_state_trades_the_replay_files_into_a_temporary_sqlite_ledger(shared_data: Path, ledger: LedgerDatabase) -> None:
    symbols = ["BTC/USDT", "ETH/USDT"]
    files = {symbol: candles(shared_data, symbol) for symbol in symbols}
    market = MarketDataResource(source="replay", replay_dir=str(shared_data / "ohlcv" / REPLAY), symbols=symbols, replay_mode="stepped")
    trading = TradingConfigResource(market_source="replay", replay_dir=str(shared_data / "ohlcv" / REPLAY), symbols=symbols, timeframe="1h")
    resource_set = resources(ledger, trading, market)

    index = FIRST_BAR_INDEX
    while True:  # trade bar after bar until the ensemble orders something; the next bar fills it
        metadata = trade(int(files["BTC/USDT"][index]["timestamp"]), resource_set)
        assert metadata["market"] == "replay" and metadata["cycle_status"] == "traded"
        if metadata["orders_placed"]:
            break
        index += 1
        assert index < FIRST_BAR_INDEX + 48, "no order in two days of bars"
    ordered = [o for o in rows(ledger.url, OrderRow) if o.status == "pending"]
    filled = trade(int(files["BTC/USDT"][index + 1]["timestamp"]), resource_set)

    # The bars the cycles recorded are the files' rows, exactly.
    for bar in rows(ledger.url, MarketBarRow):
        row = next(r for r in files[bar.symbol] if int(r["timestamp"]) == datetime_to_ms(bar.ts))
        assert (bar.source, bar.open, bar.close, bar.volume) == ("replay", float(row["open"]), float(row["close"]), float(row["volume"]))
    # Each order filled at the next bar's open from the file, moved 5 bps against it, on the 0.01 tick.
    fills = {f.client_order_id: f for f in rows(ledger.url, FillRow)}
    assert set(fills) == {o.client_order_id for o in ordered} and filled["fills"] == len(ordered)
    for order in ordered:
        next_open = Decimal(files[order.symbol][index + 1]["open"])
        if order.side == "buy":
            expected = (next_open * (1 + Decimal(5) / BPS)).quantize(Decimal("0.01"), ROUND_CEILING)
        else:
            expected = (next_open * (1 - Decimal(5) / BPS)).quantize(Decimal("0.01"), ROUND_FLOOR)
        assert fills[order.client_order_id].price == expected
    snapshot = rows(ledger.url, PortfolioSnapshotRow)[-1]
    cent = Decimal("0.01")  # the asset page shows money to the cent
    assert filled["equity"] == float(snapshot.equity.quantize(cent)) and filled["cash"] == float(snapshot.cash.quantize(cent))
    assert {c.market_source for c in rows(ledger.url, TradingCycleRow)} == {"replay"}


# --------------------------------------------------------------------------- a flaky market


class SolDownEveryOtherCall:
    """The synthetic market, except that every other SOL/USDT request fails as an exchange outage would."""

    name = "synthetic"

    def __init__(self, calls: list[str]) -> None:
        self.inner = SyntheticMarket(seed=7)
        self.calls = calls

    def closed_bars(self, symbol: str, timeframe: str, end_ms: int, limit: int) -> BarHistory:
        if symbol == "SOL/USDT":
            self.calls.append(symbol)
            if len(self.calls) % 2 == 1:
                raise MarketDataError(symbol, "exchange unavailable (HTTP 503)")
        return self.inner.closed_bars(symbol, timeframe, end_ms, limit)


SOL_REQUESTS: list[str] = []  # the market lives for one run; its failures alternate across runs


class FlakySolMarket(MarketDataResource):
    _market: MarketData | None = PrivateAttr(default=None)

    def build(self) -> MarketData:
        return SolDownEveryOtherCall(SOL_REQUESTS)


def test_a_market_failing_for_one_symbol_half_the_time_skips_it_only_then(ledger: LedgerDatabase) -> None:
    SOL_REQUESTS.clear()
    trading = TradingConfigResource()  # the defaults: BTC, ETH, SOL on 1m synthetic bars
    resource_set = resources(ledger, trading, FlakySolMarket())
    bar0 = 1_700_000_040_000
    outcomes = [trade(bar0 + i * M, resource_set) for i in range(4)]

    assert len(SOL_REQUESTS) == 4
    assert [o["cycle_status"] for o in outcomes] == ["traded"] * 4
    assert [o["skipped"] for o in outcomes] == [{"SOL/USDT": "market data: exchange unavailable (HTTP 503)"}, {}] * 2
    cycles = rows(ledger.url, TradingCycleRow)
    assert [c.status for c in cycles] == ["succeeded"] * 4
    signals = rows(ledger.url, SignalRow)
    by_cycle = {c.id: {s.symbol for s in signals if s.cycle_id == c.id} for c in cycles}
    assert [by_cycle[c.id] for c in cycles] == [{"BTC/USDT", "ETH/USDT"}, {"BTC/USDT", "ETH/USDT", "SOL/USDT"}] * 2


# --------------------------------------------------------------------------- a broker that refuses


REFUSAL = Reject(-2010, "Account has insufficient balance for requested action.")


class RefusingExchangeBroker(BrokerResource):
    """A ccxt broker on an offline binance (its order endpoints answered by FakeBinanceSpot) that refuses every order."""

    markets_json: str

    def build(self, sessions: sessionmaker[Session], book: str, timeframe: str) -> Broker:
        markets, currencies = json.loads(self.markets_json)
        exchange = ccxt.binance({"apiKey": API_KEY, "secret": SECRET, "options": {"fetchMarkets": {"types": ["spot"]}}})
        exchange.set_markets(copy.deepcopy(markets), copy.deepcopy(currencies))
        exchange.fetch = no_network
        model = install(exchange, FakeBinanceSpot())
        model.reject_post = [REFUSAL] * 100
        return ExchangeBroker(CcxtBroker(exchange, live=False, sleep=lambda _: None), sessions, book, timeframe_ms(timeframe))


def test_a_broker_that_refuses_orders_records_the_refusal_and_moves_no_money(shared_data: Path, ledger: LedgerDatabase) -> None:
    info = json.loads((shared_data / "binance_api" / "exchange_info_BTCUSDT.json").read_text())
    parser = ccxt.binance({"options": {"fetchMarkets": {"types": ["spot"]}}})
    parser.publicGetExchangeInfo = lambda params={}: info  # noqa: B006 - the only request load_markets makes
    parser.fetch = no_network
    parser.load_markets()
    markets_json = json.dumps([parser.markets, parser.currencies], default=str)

    replay = str(shared_data / "ohlcv" / REPLAY)
    files = candles(shared_data, "BTC/USDT")
    trading = TradingConfigResource(broker="ccxt", market_source="replay", replay_dir=replay, symbols=["BTC/USDT"], timeframe="1h")
    market = MarketDataResource(source="replay", replay_dir=replay, symbols=["BTC/USDT"], replay_mode="stepped")
    resource_set = resources(ledger, trading, market, broker=RefusingExchangeBroker(kind="ccxt", markets_json=markets_json))

    index = FIRST_BAR_INDEX
    while not trade(int(files[index]["timestamp"]), resource_set)["orders_placed"]:
        index += 1
        assert index < FIRST_BAR_INDEX + 48, "no order in two days of bars"
    after = trade(int(files[index + 1]["timestamp"]), resource_set)

    orders = [o for o in rows(ledger.url, OrderRow) if o.quantity > 0]  # not the risk rules' own rejections
    assert len(orders) == 1 + after["orders_placed"]  # the first order, and the next cycle's try again
    for order in orders:
        assert (order.status, order.reject_kind, order.broker, order.exchange_order_id) == ("rejected", "exchange", "ccxt", None)
        assert "; exchange refused: insufficient funds on binance for " in order.reason
        assert "Account has insufficient balance for requested action." in order.reason
    assert rows(ledger.url, FillRow) == [] and after["fills"] == 0
    snapshot = rows(ledger.url, PortfolioSnapshotRow)[-1]
    assert snapshot.cash == Decimal(10000) and snapshot.positions == {} and after["equity"] == 10000.0
