"""The ccxt broker, offline, on a real ``ccxt.binance``.

Markets come from ccxt's own parser reading a recorded ``GET /api/v3/exchangeInfo`` answer. Only
binance's raw signed endpoints are answered, by :class:`FakeBinanceSpot`, a small model of the
spot order book-keeping that replies with Binance's own JSON shapes (FULL order responses with
``fills``, ``GET /order`` without them, ``myTrades``, ``allOrders``, ``openOrders``). ccxt's request
building (``newClientOrderId``, amount rounded to the LOT_SIZE step), ``parse_order`` and its
error mapping (``handle_errors`` on Binance's ``{"code", "msg"}`` bodies) all run for real.

Two ways to plug the model in:

* ``install``: assign ``privatePostOrder``, ``privateGetOrder``... on the instance (what ccxt's
  binance calls for spot); a lost connection is raised as ccxt raises it from a failed request;
* ``HttpSession``: below the signing layer, as ``exchange.session``, so ccxt signs every request
  with the dummy secret, picks the URL (testnet or not) and maps HTTP 400 bodies itself.

A guard makes any request that escapes the model fail the test: nothing reaches a network.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import logging
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qsl, urlsplit

import ccxt
import pytest
import requests

from tradepipe.adapters.ccxt_broker import BrokerError, CcxtBroker, ExchangeOrder, LiveTradingRefused, to_fill
from tradepipe.core.risk import client_order_id
from tradepipe.core.types import OrderIntent
from tradepipe.config.settings import load_settings

API_KEY = "dummy-api-key-0123456789"
SECRET = "dummy-secret-NEVER-SHOWN-9f8e7d6c"
BAR = 1_767_225_600_000  # 2026-01-01T00:00:00Z
NOW = BAR + 3_600_000 + 1_234
TESTNET = "https://testnet.binance.vision/api/v3"
MAINNET = "https://api.binance.com/api/v3"
RECV_WINDOW_S = 10.0  # ccxt binance's default recvWindow (10000 ms): the broker's settle time


# --------------------------------------------------------------------------------------------
# a model of binance spot's signed order endpoints
# --------------------------------------------------------------------------------------------


class Reject(Exception):
    """Binance refuses the request: HTTP 400 with ``{"code": code, "msg": msg}``."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code, self.msg = code, msg


class LostConnection(Exception):
    """The connection dropped; ``after=True``: the exchange had already acted on the request."""

    def __init__(self, after: bool) -> None:
        super().__init__("connection lost")
        self.after = after


def eight(value: Decimal) -> str:
    """Binance's number format: 8 decimals."""
    return f"{value:.8f}"


class FakeBinanceSpot:
    """Binance spot's order endpoints for BTCUSDT, filling market orders against a fixed book.

    A market order fills at ``book`` levels ((price, quantity) pairs, best first); commission is
    0.1%, charged in the asset received (BTC on a buy, USDT on a sell) or in BNB when
    ``commission_asset="BNB"``. Like binance, a ``newClientOrderId`` is refused as a duplicate only
    while an order with it is open. ``post_faults`` / ``get_faults`` are raised by the next calls;
    ``reject_post`` refuses the next orders; ``lagging_lookups`` makes that many ``GET /order``
    calls answer "does not exist" (a lagging replica).
    """

    def __init__(self) -> None:
        self.book = [(Decimal("9400.00"), Decimal("0.001")), (Decimal("9400.50"), Decimal("1"))]
        self.commission_asset: str | None = None
        self.orders: dict[str, dict[str, Any]] = {}  # by clientOrderId, Binance GET /order shape
        self.trades: dict[int, list[dict[str, Any]]] = {}  # by orderId, Binance myTrades shape
        self.next_order_id = 28
        self.next_trade_id = 56
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.post_faults: list[Exception] = []
        self.get_faults: list[Exception] = []
        self.reject_post: list[Reject] = []
        self.lagging_lookups = 0

    def posts(self) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name == "POST /order"]

    # -------------------------------------------------------------- endpoints

    def post_order(self, params: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("POST /order", dict(params)))
        fault = self.post_faults.pop(0) if self.post_faults else None
        if isinstance(fault, LostConnection) and not fault.after:
            raise fault
        if fault is not None and not isinstance(fault, LostConnection):
            raise fault
        if self.reject_post:
            raise self.reject_post.pop(0)
        assert params["symbol"] == "BTCUSDT" and params["type"] == "MARKET", params
        coid = params["newClientOrderId"]
        if coid in self.orders and self.orders[coid]["status"] in ("NEW", "PARTIALLY_FILLED"):
            raise Reject(-2010, "Duplicate order sent.")
        response = self._execute(coid, params["side"], Decimal(params["quantity"]))
        if fault is not None:
            raise fault  # the order is in the book; only the answer was lost
        return response

    def get_order(self, params: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("GET /order", dict(params)))
        if self.get_faults:
            raise self.get_faults.pop(0)
        if self.lagging_lookups:
            self.lagging_lookups -= 1
            raise Reject(-2013, "Order does not exist.")
        for order in self.orders.values():
            if order["clientOrderId"] == params.get("origClientOrderId") or str(order["orderId"]) == str(params.get("orderId")):
                return dict(order)
        raise Reject(-2013, "Order does not exist.")

    def get_my_trades(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        self.calls.append(("GET /myTrades", dict(params)))
        order_id = params.get("orderId")
        return [dict(t) for oid, trades in self.trades.items() for t in trades if order_id is None or str(oid) == str(order_id)]

    def get_all_orders(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        self.calls.append(("GET /allOrders", dict(params)))
        return [dict(order) for order in self.orders.values()]

    def get_open_orders(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        self.calls.append(("GET /openOrders", dict(params)))
        return [dict(order) for order in self.orders.values() if order["status"] in ("NEW", "PARTIALLY_FILLED")]

    # -------------------------------------------------------------- book-keeping

    def add_open_order(self, coid: str, side: str, quantity: str) -> None:
        """An order accepted but not matched yet (status NEW)."""
        self._record(coid, side, Decimal(quantity), Decimal(0), Decimal(0), "NEW", [])

    def _execute(self, coid: str, side: str, quantity: Decimal) -> dict[str, Any]:
        left, fills = quantity, []
        for price, size in self.book:
            take = min(left, size)
            if take <= 0:
                break
            quote = price * take
            if self.commission_asset == "BNB":
                commission, asset = (quote * Decimal("0.00075") / Decimal("300")).quantize(Decimal("1e-8")), "BNB"
            elif side == "BUY":
                commission, asset = take * Decimal("0.001"), "BTC"
            else:
                commission, asset = quote * Decimal("0.001"), "USDT"
            fills.append({"price": eight(price), "qty": eight(take), "commission": eight(commission), "commissionAsset": asset, "tradeId": self.next_trade_id})
            self.next_trade_id += 1
            left -= take
        executed = quantity - left
        quote_total = sum((Decimal(f["price"]) * Decimal(f["qty"]) for f in fills), Decimal(0))
        order = self._record(coid, side, quantity, executed, quote_total, "FILLED", fills)
        full = {key: order[key] for key in ("symbol", "orderId", "orderListId", "clientOrderId")}
        full.update(
            transactTime=NOW,
            price="0.00000000",
            origQty=order["origQty"],
            executedQty=order["executedQty"],
            origQuoteOrderQty="0.00000000",
            cummulativeQuoteQty=order["cummulativeQuoteQty"],
            status="FILLED",
            timeInForce="GTC",
            type="MARKET",
            side=side,
            workingTime=NOW,
            fills=fills,
            selfTradePreventionMode="EXPIRE_MAKER",
        )
        return full

    def _record(self, coid: str, side: str, quantity: Decimal, executed: Decimal, quote: Decimal, status: str, fills: list[dict[str, Any]]) -> dict[str, Any]:
        order_id = self.next_order_id
        self.next_order_id += 1
        order = {
            "symbol": "BTCUSDT",
            "orderId": order_id,
            "orderListId": -1,
            "clientOrderId": coid,
            "price": "0.00000000",
            "origQty": eight(quantity),
            "executedQty": eight(executed),
            "cummulativeQuoteQty": eight(quote),
            "status": status,
            "timeInForce": "GTC",
            "type": "MARKET",
            "side": side,
            "stopPrice": "0.00000000",
            "icebergQty": "0.00000000",
            "time": NOW,
            "updateTime": NOW,
            "isWorking": True,
            "workingTime": NOW,
            "origQuoteOrderQty": "0.00000000",
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }
        self.orders[coid] = order
        self.trades[order_id] = [
            {
                "symbol": "BTCUSDT",
                "id": fill["tradeId"],
                "orderId": order_id,
                "orderListId": -1,
                "price": fill["price"],
                "qty": fill["qty"],
                "quoteQty": eight(Decimal(fill["price"]) * Decimal(fill["qty"])),
                "commission": fill["commission"],
                "commissionAsset": fill["commissionAsset"],
                "time": NOW,
                "isBuyer": side == "BUY",
                "isMaker": False,
                "isBestMatch": True,
            }
            for fill in fills
        ]
        return order


ROUTES = {
    ("POST", "order"): ("privatePostOrder", FakeBinanceSpot.post_order),
    ("GET", "order"): ("privateGetOrder", FakeBinanceSpot.get_order),
    ("GET", "myTrades"): ("privateGetMyTrades", FakeBinanceSpot.get_my_trades),
    ("GET", "allOrders"): ("privateGetAllOrders", FakeBinanceSpot.get_all_orders),
    ("GET", "openOrders"): ("privateGetOpenOrders", FakeBinanceSpot.get_open_orders),
}


def install(exchange: ccxt.binance, model: FakeBinanceSpot) -> FakeBinanceSpot:
    """Answer ccxt's raw spot endpoints from ``model``; errors as ccxt's binance raises them."""

    def endpoint(method: str, path: str, handler: Callable[..., Any]) -> Callable[..., Any]:
        def call(params: dict[str, Any] = {}) -> Any:  # noqa: B006 - ccxt's own signature
            url = f"{exchange.urls['api']['private']}/{path}"
            try:
                return handler(model, params)
            except Reject as reject:
                body = json.dumps({"code": reject.code, "msg": reject.msg})
                exchange.handle_errors(400, "Bad Request", url, method, {}, body, json.loads(body), {}, "")
                raise AssertionError(f"ccxt did not map {body}") from None  # pragma: no cover
            except LostConnection:
                raise ccxt.RequestTimeout(f"binance {method} {url}") from None  # what ccxt's fetch raises on a timeout

        return call

    for (method, path), (name, handler) in ROUTES.items():
        setattr(exchange, name, endpoint(method, path, handler))
    return model


class HttpSession(requests.Session):
    """Stands in for ``exchange.session``: ccxt signs, sends and parses as it would on the wire; no socket opens."""

    def __init__(self, model: FakeBinanceSpot) -> None:
        super().__init__()
        self.model = model
        self.requests: list[dict[str, Any]] = []

    def request(self, method: str, url: str, data: bytes | None = None, headers: dict[str, str] | None = None, **_: Any) -> requests.Response:  # type: ignore[override]
        split = urlsplit(url)
        body = data.decode() if data else ""
        self.requests.append({"method": method, "url": url, "headers": dict(headers or {}), "body": body})
        params = dict(parse_qsl(split.query)) | dict(parse_qsl(body))
        path = split.path.removeprefix("/api/v3/")
        handler = ROUTES[(method, path)][1]
        try:
            payload, status = handler(self.model, params), 200
        except Reject as reject:
            payload, status = {"code": reject.code, "msg": reject.msg}, 400
        except LostConnection:
            raise requests.exceptions.ReadTimeout("HTTPSConnectionPool: Read timed out. (read timeout=10)") from None
        response = requests.Response()
        response.status_code, response.reason, response.url = status, "OK" if status == 200 else "Bad Request", url
        response._content = json.dumps(payload).encode()
        response.headers["Content-Type"] = "application/json;charset=UTF-8"
        return response


def no_network(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError(f"a request escaped the offline model: {args[:2]}")


# --------------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def binance_markets(shared_data: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """BTC/USDT as ccxt's own binance parser reads a recorded GET /api/v3/exchangeInfo answer."""
    info = json.loads((shared_data / "binance_api" / "exchange_info_BTCUSDT.json").read_text())
    parser = ccxt.binance({"options": {"fetchMarkets": {"types": ["spot"]}}})
    parser.publicGetExchangeInfo = lambda params={}: info  # the only request load_markets makes here
    parser.fetch = no_network
    parser.load_markets()
    return parser.markets, parser.currencies


@pytest.fixture
def binance(binance_markets: tuple[dict[str, Any], dict[str, Any]]) -> ccxt.binance:
    exchange = ccxt.binance({"apiKey": API_KEY, "secret": SECRET, "enableRateLimit": True, "options": {"fetchMarkets": {"types": ["spot"]}}})
    exchange.set_markets(*copy.deepcopy(binance_markets))
    exchange.fetch = no_network
    return exchange


@pytest.fixture
def model(binance: ccxt.binance) -> FakeBinanceSpot:
    return install(binance, FakeBinanceSpot())


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def broker(binance: ccxt.binance, model: FakeBinanceSpot, sleeps: list[float]) -> CcxtBroker:
    return CcxtBroker(binance, live=False, sleep=sleeps.append)


def intent(quantity: str = "0.00123", side: str = "buy", purpose: str = "rebalance") -> OrderIntent:
    return OrderIntent(
        symbol="BTC/USDT",
        side=side,  # type: ignore[arg-type]
        quantity=Decimal(quantity),
        reference_price=Decimal("9400"),
        client_order_id=client_order_id("main", BAR, "BTC/USDT", purpose),
        reason="test",
        requested_quantity=Decimal(quantity),
        bar_open_ms=BAR,
    )


def sent_orders(model: FakeBinanceSpot) -> int:
    return len(model.posts())


# --------------------------------------------------------------------------------------------
# submit
# --------------------------------------------------------------------------------------------


@pytest.mark.shared_data
def test_submit_sends_the_client_order_id_and_the_amount_ccxt_rounded_to_the_step(broker: CcxtBroker, model: FakeBinanceSpot, sleeps: list[float]):
    order_intent = intent("0.0012345")  # off the 0.00001 LOT_SIZE step on purpose
    order = broker.submit(order_intent)

    assert [name for name, _ in model.calls] == ["GET /order", "POST /order"]  # looked up first, then sent once
    assert model.calls[0][1] == {"symbol": "BTCUSDT", "origClientOrderId": order_intent.client_order_id}
    post = model.posts()[0]
    assert post["newClientOrderId"] == order_intent.client_order_id
    assert post["quantity"] == "0.00123"  # truncated by ccxt's amount_to_precision, never rounded up
    assert (post["side"], post["type"], post["newOrderRespType"]) == ("BUY", "MARKET", "FULL")

    assert order.client_order_id == order_intent.client_order_id and order.exchange_order_id == "28"
    assert (order.symbol, order.side, order.status, order.is_final) == ("BTC/USDT", "buy", "closed", True)
    assert order.amount == order.filled == Decimal("0.00123")
    assert order.cost == Decimal("11.562115")  # 0.001 x 9400.00 + 0.00023 x 9400.50
    assert [(t.id, t.price, t.amount, t.fee_cost, t.fee_currency) for t in order.trades] == [
        ("56", Decimal("9400.0"), Decimal("0.001"), Decimal("0.000001"), "BTC"),
        ("57", Decimal("9400.5"), Decimal("0.00023"), Decimal("2.3E-7"), "BTC"),
    ]
    # commission 0.00000123 BTC (the asset bought) recorded in USDT at the average price
    assert order.base_fee == Decimal("0.00000123")
    assert order.fee == Decimal("0.00000123") * order.average
    assert "charged in the base asset" in order.fee_note and "received 0.00122877 BTC" in order.fee_note
    assert sleeps == []


@pytest.mark.shared_data
def test_an_order_already_on_the_exchange_is_returned_without_a_second_create(binance: ccxt.binance, model: FakeBinanceSpot, sleeps: list[float]):
    first = CcxtBroker(binance, live=False, sleep=sleeps.append).submit(intent())
    restarted = CcxtBroker(binance, live=False, sleep=sleeps.append)  # e.g. the cycle re-runs after a crash

    again = restarted.submit(intent())

    assert sent_orders(model) == 1
    assert model.calls[-2:] == [
        ("GET /order", {"symbol": "BTCUSDT", "origClientOrderId": intent().client_order_id}),
        ("GET /myTrades", {"symbol": "BTCUSDT", "orderId": "28"}),  # GET /order has no fills: the fee comes from the trades
    ]
    assert (again.exchange_order_id, again.status, again.filled, again.average) == ("28", "closed", first.filled, first.average)
    assert again.fee == first.fee and again.base_fee == first.base_fee and len(again.trades) == 2
    assert sleeps == []


@pytest.mark.shared_data
def test_network_error_after_the_exchange_took_the_order_is_not_resent(broker: CcxtBroker, model: FakeBinanceSpot, sleeps: list[float]):
    model.post_faults = [LostConnection(after=True)]

    order = broker.submit(intent())

    assert sent_orders(model) == 1
    assert [name for name, _ in model.calls] == ["GET /order", "POST /order", "GET /order", "GET /myTrades"]
    assert order.status == "closed" and order.filled == Decimal("0.00123") and order.exchange_order_id == "28"
    assert sleeps == [RECV_WINDOW_S]  # waited out binance's recvWindow before looking: a late request is refused by then


@pytest.mark.shared_data
def test_network_error_before_the_exchange_saw_the_order_retries_once_with_the_same_id(broker: CcxtBroker, model: FakeBinanceSpot, sleeps: list[float]):
    model.post_faults = [ccxt.NetworkError("binance POST https://testnet.binance.vision/api/v3/order connection reset")]

    order = broker.submit(intent())

    posts = model.posts()
    assert len(posts) == 2 and posts[0]["newClientOrderId"] == posts[1]["newClientOrderId"] == intent().client_order_id
    assert [name for name, _ in model.calls] == ["GET /order", "POST /order", "GET /order", "POST /order"]
    assert order.status == "closed" and order.exchange_order_id == "28" and len(model.orders) == 1
    assert sleeps == [RECV_WINDOW_S]


@pytest.mark.shared_data
def test_backoff_grows_and_the_broker_gives_up_without_a_duplicate(binance: ccxt.binance, model: FakeBinanceSpot, sleeps: list[float]):
    broker = CcxtBroker(binance, live=False, sleep=sleeps.append, settle_s=0, backoff_s=0.5, max_retries=2)
    model.post_faults = [LostConnection(after=False)] * 3

    with pytest.raises(BrokerError) as raised:
        broker.submit(intent())

    assert sent_orders(model) == 3 and model.orders == {}
    assert sleeps == [0.5, 1.0, 2.0]  # each wait is followed by a look-up, the last one too
    assert raised.value.client_order_id == intent().client_order_id
    assert "failed 3 times" in raised.value.reason and "RequestTimeout" in raised.value.reason and "not found" in raised.value.reason


@pytest.mark.shared_data
def test_binance_execution_status_unknown_is_treated_as_a_network_error(broker: CcxtBroker, model: FakeBinanceSpot, sleeps: list[float]):
    model.post_faults = [Reject(-1007, "Timeout waiting for response from backend server. Send status unknown; execution status unknown.")]

    order = broker.submit(intent())

    assert sent_orders(model) == 2 and order.status == "closed" and sleeps == [RECV_WINDOW_S]


@pytest.mark.shared_data
def test_duplicate_client_order_id_error_fetches_the_existing_order(broker: CcxtBroker, model: FakeBinanceSpot, sleeps: list[float]):
    model.add_open_order(intent().client_order_id, "BUY", "0.00123")  # accepted, not matched yet
    model.lagging_lookups = 1  # the first look-up misses it

    order = broker.submit(intent())

    assert [name for name, _ in model.calls] == ["GET /order", "POST /order", "GET /order"]
    assert len(model.orders) == 1  # binance refused the POST: "Duplicate order sent."
    assert (order.status, order.filled, order.average, order.is_final) == ("open", Decimal("0"), None, False)
    assert to_fill(order, NOW) is None
    assert sleeps == []


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("code", "msg", "expected"),
    [
        (-2010, "Account has insufficient balance for requested action.", "insufficient funds on binance for buy 0.00123 BTC/USDT"),
        (-1013, "Filter failure: LOT_SIZE", "binance refused buy 0.00123 BTC/USDT as invalid: InvalidOrder"),
        (-1013, "Filter failure: NOTIONAL", "binance refused buy 0.00123 BTC/USDT as invalid: BadRequest"),
        (-1121, "Invalid symbol.", "binance does not list BTC/USDT"),
        (-2015, "Invalid API-key, IP, or permissions for action.", "check TRADEPIPE_EXCHANGE_API_KEY and TRADEPIPE_EXCHANGE_SECRET"),
    ],
)
def test_definite_refusals_are_broker_errors_without_retry(
    broker: CcxtBroker, model: FakeBinanceSpot, sleeps: list[float], code: int, msg: str, expected: str
):
    model.reject_post = [Reject(code, msg)]

    with pytest.raises(BrokerError) as raised:
        broker.submit(intent())

    assert expected in raised.value.reason and msg in raised.value.reason
    assert raised.value.client_order_id == intent().client_order_id and intent().client_order_id in str(raised.value)
    assert sent_orders(model) == 1 and model.orders == {} and sleeps == []


@pytest.mark.shared_data
def test_an_unknown_symbol_is_refused_before_any_request(broker: CcxtBroker, model: FakeBinanceSpot):
    with pytest.raises(BrokerError, match="binance does not list DOGE/USDT"):
        broker.submit(replace(intent(), symbol="DOGE/USDT"))
    assert model.calls == []


@pytest.mark.shared_data
def test_a_lookup_that_keeps_failing_sends_nothing(binance: ccxt.binance, model: FakeBinanceSpot, sleeps: list[float]):
    broker = CcxtBroker(binance, live=False, sleep=sleeps.append, max_retries=2)
    model.get_faults = [LostConnection(after=False)] * 3

    with pytest.raises(BrokerError, match="state is unknown") as raised:
        broker.submit(intent())

    assert sent_orders(model) == 0 and "nothing was sent" in raised.value.reason
    assert sleeps == [1.0, 2.0]


@pytest.mark.shared_data
def test_a_client_order_id_taken_by_another_order_is_not_reused(broker: CcxtBroker, model: FakeBinanceSpot):
    model.add_open_order(intent().client_order_id, "SELL", "0.5")
    with pytest.raises(BrokerError, match="already used on binance by a different order"):
        broker.submit(intent())
    assert sent_orders(model) == 0


@pytest.mark.shared_data
def test_reconcile_finds_a_placed_order_and_reports_none_for_an_unknown_id(broker: CcxtBroker, model: FakeBinanceSpot):
    placed = broker.submit(intent())
    found = broker.reconcile(intent().client_order_id, "BTC/USDT")  # GET /order, then myTrades for the fee
    assert found is not None
    fields = ("client_order_id", "exchange_order_id", "symbol", "side", "status", "amount", "filled", "average", "cost", "fee", "base_fee")
    assert [getattr(found, f) for f in fields] == [getattr(placed, f) for f in fields]
    assert [(t.id, t.amount, t.fee_cost) for t in found.trades] == [(t.id, t.amount, t.fee_cost) for t in placed.trades]
    assert broker.reconcile(intent(purpose="stop_loss").client_order_id, "BTC/USDT") is None


@pytest.mark.shared_data
@pytest.mark.parametrize("has_fetch_orders", [True, False])
def test_generic_lookup_scans_the_order_lists(binance: ccxt.binance, model: FakeBinanceSpot, has_fetch_orders: bool):
    binance.has = {**binance.has, "fetchOrders": has_fetch_orders}
    broker = CcxtBroker(binance, live=False, sleep=lambda s: None, lookup="scan")
    placed = broker.submit(intent())
    assert sent_orders(model) == 1

    again = broker.submit(intent())

    assert sent_orders(model) == 1 and again.exchange_order_id == placed.exchange_order_id and again.fee == placed.fee
    scans = [name for name, _ in model.calls if name in ("GET /allOrders", "GET /openOrders")]
    assert scans == (["GET /allOrders"] * 2 if has_fetch_orders else ["GET /openOrders", "GET /allOrders"] * 2)


# --------------------------------------------------------------------------------------------
# sandbox, live, credentials
# --------------------------------------------------------------------------------------------


@pytest.mark.shared_data
def test_not_live_switches_binance_to_the_testnet(binance: ccxt.binance, model: FakeBinanceSpot):
    assert binance.urls["api"]["private"] == MAINNET
    broker = CcxtBroker(binance, live=False, sleep=lambda s: None)
    assert binance.urls["api"]["private"] == TESTNET and binance.urls["api"]["public"] == TESTNET
    assert binance.isSandboxModeEnabled and "sandbox" in repr(broker)


@pytest.mark.shared_data
def test_signed_requests_go_to_the_testnet_and_never_carry_the_secret(binance: ccxt.binance, sleeps: list[float]):
    model = FakeBinanceSpot()
    session = HttpSession(model)
    del binance.fetch  # the real HTTP layer this time, over the stand-in session
    binance.session = session
    broker = CcxtBroker(binance, live=False, sleep=sleeps.append)
    model.post_faults = [LostConnection(after=True)]  # requests' ReadTimeout, mapped by ccxt itself

    order = broker.submit(intent())

    assert order.status == "closed" and sent_orders(model) == 1 and sleeps == [RECV_WINDOW_S]
    assert [(r["method"], urlsplit(r["url"]).path) for r in session.requests] == [
        ("GET", "/api/v3/order"),
        ("POST", "/api/v3/order"),
        ("GET", "/api/v3/order"),
        ("GET", "/api/v3/myTrades"),
    ]
    for sent in session.requests:
        assert sent["url"].startswith(TESTNET + "/")
        assert sent["headers"]["X-MBX-APIKEY"] == API_KEY
        query = urlsplit(sent["url"]).query if sent["method"] == "GET" else sent["body"]
        unsigned, _, signature = query.rpartition("&signature=")
        assert signature == hmac.new(SECRET.encode(), unsigned.encode(), hashlib.sha256).hexdigest()
        assert SECRET not in json.dumps(sent)
    assert dict(parse_qsl(session.requests[1]["body"]))["newClientOrderId"] == intent().client_order_id


@pytest.mark.shared_data
def test_live_keeps_the_real_urls_and_warns(binance: ccxt.binance, caplog: pytest.LogCaptureFixture):
    with caplog.at_level(logging.WARNING, logger="tradepipe.adapters.ccxt_broker"):
        broker = CcxtBroker(binance, live=True, sleep=lambda s: None)
    assert binance.urls["api"]["private"] == MAINNET and not binance.isSandboxModeEnabled
    assert "LIVE trading on binance" in caplog.text and "LIVE" in repr(broker)


def test_an_exchange_without_a_sandbox_is_refused_unless_live():
    kraken = ccxt.kraken({"apiKey": API_KEY, "secret": "a2V5"})  # ccxt has no kraken testnet
    kraken.fetch = no_network
    with pytest.raises(LiveTradingRefused, match="TRADEPIPE_LIVE=1") as raised:
        CcxtBroker(kraken, live=False)
    assert "kraken would trade real money" in raised.value.reason
    assert CcxtBroker(ccxt.kraken({"apiKey": API_KEY, "secret": "a2V5"}), live=True).live


def test_from_settings_refuses_an_exchange_without_sandbox_and_builds_a_testnet_broker():
    keys = {"exchange_api_key": API_KEY, "exchange_secret": SECRET, "broker": "ccxt", "market_source": "ccxt"}
    with pytest.raises(LiveTradingRefused, match="TRADEPIPE_LIVE=1"):
        CcxtBroker.from_settings(load_settings(exchange="kraken", **keys))
    broker = CcxtBroker.from_settings(load_settings(**keys), max_retries=1)  # binance, live off
    exchange = broker.exchange
    assert (exchange.id, exchange.apiKey, exchange.secret, exchange.enableRateLimit) == ("binance", API_KEY, SECRET, True)
    assert exchange.urls["api"]["private"] == TESTNET and broker.max_retries == 1 and not broker.live
    live = CcxtBroker.from_settings(load_settings(live=True, **keys))
    assert live.live and live.exchange.urls["api"]["private"] == MAINNET
    with pytest.raises(BrokerError, match="has no exchange 'binanse'; did you mean binance"):
        CcxtBroker.from_settings(load_settings(exchange="binanse", **keys))


@pytest.mark.parametrize(
    ("given", "named", "not_named"),
    [
        ({}, ["TRADEPIPE_EXCHANGE_API_KEY", "TRADEPIPE_EXCHANGE_SECRET"], []),
        ({"exchange_api_key": API_KEY}, ["TRADEPIPE_EXCHANGE_SECRET"], ["TRADEPIPE_EXCHANGE_API_KEY"]),
        ({"exchange_secret": SECRET, "exchange_api_key": "  "}, ["TRADEPIPE_EXCHANGE_API_KEY"], ["TRADEPIPE_EXCHANGE_SECRET"]),
    ],
)
def test_missing_keys_name_the_variables_not_the_values(given: dict[str, str], named: list[str], not_named: list[str]):
    settings = load_settings(broker="ccxt", market_source="ccxt", **given)
    with pytest.raises(BrokerError) as raised:
        CcxtBroker.from_settings(settings)
    message = str(raised.value)
    assert all(name in message for name in named) and not any(name in message for name in not_named)
    assert SECRET not in message and API_KEY not in message and SECRET not in repr(raised.value)
    with pytest.raises(BrokerError, match="TRADEPIPE_EXCHANGE_API_KEY and TRADEPIPE_EXCHANGE_SECRET"):
        CcxtBroker(ccxt.binance(), live=False)


@pytest.mark.shared_data
def test_the_secret_never_reaches_a_message_a_repr_or_the_log(
    binance: ccxt.binance, model: FakeBinanceSpot, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("TRADEPIPE_EXCHANGE_SECRET", SECRET)
    monkeypatch.setenv("TRADEPIPE_EXCHANGE_API_KEY", API_KEY)
    settings = load_settings(broker="ccxt", market_source="ccxt")
    caplog.set_level(logging.DEBUG)
    from_settings = CcxtBroker.from_settings(settings)
    broker = CcxtBroker(binance, live=False, sleep=lambda s: None)
    model.post_faults = [ccxt.NetworkError(f"proxy says: bad credentials {SECRET}")]  # an error echoing it
    model.reject_post = [Reject(-2010, f"Account has insufficient balance for requested action. key={SECRET}")]
    with pytest.raises(BrokerError) as raised:
        broker.submit(intent())
    texts = [str(raised.value), repr(raised.value), raised.value.reason, repr(broker), repr(from_settings), repr(settings), str(settings), caplog.text]
    assert all(SECRET not in text for text in texts)
    assert "***" in raised.value.reason


# --------------------------------------------------------------------------------------------
# to_fill and fees
# --------------------------------------------------------------------------------------------


@pytest.mark.shared_data
def test_to_fill_is_exact_with_a_non_terminating_average(broker: CcxtBroker):
    order = broker.submit(intent())
    fill = to_fill(order, NOW)

    assert fill is not None
    assert abs(order.average - Decimal("11.562115") / Decimal("0.00123")) < Decimal("1e-9")  # ccxt's cost / filled
    assert len(order.average.as_tuple().digits) > 12  # 9400.0934959349593...: no short decimal
    assert (fill.client_order_id, fill.symbol, fill.side, fill.fill_ms) == (intent().client_order_id, "BTC/USDT", "buy", NOW)
    assert fill.quantity == Decimal("0.00123") and fill.price == order.average
    assert fill.notional == fill.quantity * fill.price  # exact: Fill itself checks it too
    assert fill.notional - Decimal("11.562115") < Decimal("1e-9")  # the exchange's cummulativeQuoteQty, to rounding of the average
    assert fill.fee == Decimal("0.00000123") * order.average and fill.requested_quantity == Decimal("0.00123")
    assert "charged in the base asset" in fill.note


@pytest.mark.shared_data
def test_a_sell_pays_its_fee_in_the_quote_currency(broker: CcxtBroker):
    order = broker.submit(intent("0.001", side="sell"))
    fill = to_fill(order, NOW)
    assert fill is not None and (fill.side, fill.quantity, fill.price) == ("sell", Decimal("0.001"), Decimal("9400.0"))
    assert fill.notional == Decimal("9.4") and fill.fee == Decimal("0.0094") and fill.note == ""
    assert order.base_fee == 0


@pytest.mark.shared_data
def test_a_fee_in_bnb_is_converted_with_a_price_or_recorded_as_zero_with_a_note(binance: ccxt.binance, model: FakeBinanceSpot):
    model.commission_asset = "BNB"
    unpriced = CcxtBroker(binance, live=False, sleep=lambda s: None).submit(intent("0.001"))
    assert unpriced.fee == 0 and "fee 0.0000235 BNB not converted to USDT" in unpriced.fee_note
    assert to_fill(unpriced, NOW).fee == 0  # type: ignore[union-attr]

    prices: list[tuple[str, str]] = []
    priced_broker = CcxtBroker(binance, live=False, sleep=lambda s: None, fee_price=lambda c, q: prices.append((c, q)) or Decimal("300"))
    priced = priced_broker.reconcile(intent().client_order_id, "BTC/USDT")  # via GET /order + myTrades
    assert priced is not None and prices == [("BNB", "USDT")]
    assert priced.fee == Decimal("0.0000235") * 300 and "recorded as 0.00705" in priced.fee_note


def exchange_order(**changes: Any) -> ExchangeOrder:
    base = dict(
        client_order_id="tp-x",
        exchange_order_id="1",
        symbol="BTC/USDT",
        side="buy",
        status="closed",
        amount=Decimal("0.002"),
        filled=Decimal("0.002"),
        average=Decimal("9400.1"),
        cost=Decimal("18.8002"),
        fee=Decimal("0.0188"),
    )
    return ExchangeOrder(**(base | changes))


def test_to_fill_of_nothing_filled_is_none_and_a_partial_fill_says_so():
    assert to_fill(exchange_order(filled=Decimal(0), average=None, status="expired"), NOW) is None
    partial = to_fill(exchange_order(filled=Decimal("0.0015"), status="expired"), NOW)
    assert partial is not None and partial.quantity == Decimal("0.0015") and partial.notional == Decimal("14.10015")
    assert partial.note == "partially filled: 0.0015 of 0.002 (expired)"
    with pytest.raises(BrokerError, match="no average price"):
        to_fill(exchange_order(average=None), NOW)
