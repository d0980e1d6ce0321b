"""Trading cycles with the ccxt broker, end to end and offline, against a real ledger.

``TradingRunner`` runs with ``TRADEPIPE_BROKER=ccxt`` and ``TRADEPIPE_MARKET_SOURCE=ccxt`` on two
real ``ccxt.binance`` instances:

* the market's: markets parsed by ccxt from the recorded exchangeInfo answer, and only its
  ``GET /api/v3/klines`` endpoint answered, from the 2018 BTC/USDT 1h candles of ``shared/data``
  (as ``tests/adapters/test_market.py`` does); the candle still forming at the exchange's clock is
  served too, and the market drops it;
* the broker's: built by the real :meth:`CcxtBroker.from_settings` (keys from the settings,
  sandbox unless ``TRADEPIPE_LIVE=1``); only ``ccxt.binance`` construction is redirected so the
  instance gets the recorded markets and, as its HTTP session, ``tests.adapters.test_broker``'s
  ``HttpSession`` over a :class:`FakeBinanceSpot` model. ccxt signs every request with the dummy
  secret, picks the URL (testnet or live), builds ``newClientOrderId`` and parses Binance's JSON.

Orders fill at a book priced at the open of the bar after the decision (two levels, so a larger
order gets a non-terminating average price), binance-style: commission 0.1% in the asset received.

Faults that cannot be caused through the exchange (a process killed between the cycle's commit and
the order's send, or between the exchange's answer and the status update) are injected by
wrapping the broker's ``submit``; the wrapper also reads, over another connection, the order's row
as it stands when the send starts (it must be committed, "pending"). The broker's waits are
recorded, not slept, and ccxt's client-side throttle is off (there is no server to spare).

Which bar trades is left to the default ensemble: each test runs cycles from ``START`` until one
decides an order, and checks everything against what the exchange model recorded.

Every database assertion runs on SQLite and PostgreSQL (``migrated_url``). Creating a PostgreSQL
database is what costs, so tests with several scenarios run each on its own book (and a fresh
exchange account) in the test's one database.
"""

from __future__ import annotations

import copy
import csv
import json
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator

import ccxt
import pytest
from sqlalchemy import select

from tests.adapters.test_broker import API_KEY, MAINNET, SECRET, TESTNET, FakeBinanceSpot, HttpSession, LostConnection, Reject
from tradepipe.adapters.ccxt_broker import CcxtBroker, ExchangeOrder
from tradepipe.adapters.db.engine import session_factory
from tradepipe.adapters.db.ledger import ms_to_datetime
from tradepipe.adapters.db.models import FillRow, OrderRow, PortfolioSnapshotRow, PositionRow, TradingCycleRow
from tradepipe.adapters.market import CcxtMarket
from tradepipe.core.risk import client_order_id
from tradepipe.core.types import OrderIntent
from tradepipe.trading.runner import CycleOutcome, TradingRunner
from tradepipe.config.settings import load_settings

pytestmark = pytest.mark.shared_data

HOUR = 3_600_000
SYMBOL = "BTC/USDT"
STARTING_CASH = Decimal("10000")
# Index in BTC_USDT-1h.csv (2018) where the search for a trading bar starts: 200+ bars of history
# before it, and the default ensemble trades within a few dozen bars from there on a fresh book.
START = 265
SEARCH = 120  # bars searched for the next order before a test gives up
SEND_DELAY_MS = 1_234  # the cycle of bar t runs (and sends) this long after bar t closes
BINANCE = ccxt.binance  # the real class, before any test redirects construction


class Crash(Exception):
    """The process dies here (a kill between two statements); nothing below it runs."""


# --------------------------------------------------------------------------------------------
# the exchange: binance spot's order endpoints with a clock, and its public klines
# --------------------------------------------------------------------------------------------


class Exchange(FakeBinanceSpot):
    """:class:`FakeBinanceSpot` with a clock, binance's EXPIRED status for a market order the book
    could not fill completely, and a lost answer followed by failing look-ups.

    ``lose_next_answer``: the next order is executed, then the connection drops before its answer
    arrives and that many following ``GET /order`` calls fail too (the network stays down).
    (``HttpSession`` routes to :class:`FakeBinanceSpot`'s own endpoint functions, so faults are
    injected here, below them.)
    """

    def __init__(self) -> None:
        super().__init__()
        self.clock = 0
        self.lose_next_answer: int | None = None

    def _execute(self, coid: str, side: str, quantity: Decimal) -> dict[str, Any]:
        full = super()._execute(coid, side, quantity)
        full.update(transactTime=self.clock, workingTime=self.clock)
        if Decimal(full["executedQty"]) < quantity:  # binance: a market order the book cannot fill expires
            full["status"] = self.orders[coid]["status"] = "EXPIRED"
        if self.lose_next_answer is not None:
            self.get_faults = [LostConnection(after=False)] * self.lose_next_answer
            self.lose_next_answer = None
            raise LostConnection(after=True)
        return full

    def _record(self, *args: Any) -> dict[str, Any]:
        order = super()._record(*args)
        order.update(time=self.clock, updateTime=self.clock, workingTime=self.clock)
        for trade in self.trades[order["orderId"]]:
            trade["time"] = self.clock
        return order

    # -------------------------------------------------------------- what the exchange saw

    def creates(self, coid: str) -> int:
        """How many POST /order carried ``coid`` as newClientOrderId."""
        return sum(1 for params in self.posts() if params.get("newClientOrderId") == coid)

    def requests_for(self, coid: str) -> list[str]:
        return [
            name
            for name, params in self.calls
            if coid in (params.get("newClientOrderId"), params.get("origClientOrderId"))
        ]


@dataclass
class Candles:
    """The recorded 2018 candles, as strings (what binance sends) and in binance's kline format."""

    rows: list[dict[str, str]]

    def bar(self, index: int) -> int:
        return int(self.rows[index]["timestamp"])

    def open(self, index: int) -> Decimal:
        return Decimal(self.rows[index]["open"])

    def close(self, index: int) -> Decimal:
        return Decimal(self.rows[index]["close"])

    def klines(self) -> list[list[Any]]:
        return [
            [int(r["timestamp"]), r["open"], r["high"], r["low"], r["close"], r["volume"], int(r["timestamp"]) + HOUR - 1, "0", 0, "0", "0", "0"]
            for r in self.rows
        ]


def no_network(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError(f"a request escaped the offline exchange: {args[:2]}")


@pytest.fixture(scope="module")
def recorded(shared_data: Path) -> tuple[tuple[dict[str, Any], dict[str, Any]], Candles]:
    info = json.loads((shared_data / "binance_api" / "exchange_info_BTCUSDT.json").read_text())
    parser = BINANCE({"options": {"fetchMarkets": {"types": ["spot"]}}})
    parser.publicGetExchangeInfo = lambda params={}: info  # noqa: B006 - the only request load_markets makes
    parser.fetch = no_network
    parser.load_markets()
    with (shared_data / "ohlcv" / "binance_2018_octobot" / "BTC_USDT-1h.csv").open() as file:
        candles = Candles(list(csv.DictReader(file)))
    return (parser.markets, parser.currencies), candles


# --------------------------------------------------------------------------------------------
# the harness: settings from the environment, the broker built by from_settings, cycles by index
# --------------------------------------------------------------------------------------------


@dataclass
class Harness:
    url: str
    exchange: Exchange
    candles: Candles
    market_exchange: ccxt.binance
    brokers: list[CcxtBroker] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)
    # (client order id, status of its row, as another connection reads it, when submit was called)
    sent: list[tuple[str, str | None]] = field(default_factory=list)
    crash: str | None = None  # "before" / "after" the exchange is asked: the next submit dies there
    liquidity: Decimal | None = None  # BTC at the best level; None: a deep book
    runner: TradingRunner | None = None
    book: str = "main"

    def scenario(self, book: str) -> Harness:
        """A new book on a new exchange account, in the same database (one database per test is
        what costs: several scenarios share it, each on its own book and fresh account)."""
        self.book, self.exchange, self.runner = book, Exchange(), None
        self.sent, self.brokers, self.sleeps[:] = [], [], []
        self.crash, self.liquidity = None, None
        return self

    def new_runner(self) -> TradingRunner:
        """A fresh process: settings from the environment, a new broker, the same exchange and database."""
        market = CcxtMarket("binance", exchange=self.market_exchange, sleep=self.sleeps.append)
        self.runner = TradingRunner(load_settings(), market=market, book=self.book)
        return self.runner

    def run(self, index: int) -> CycleOutcome:
        """The cycle of bar ``index``, run just after it closed; orders fill at the next bar's open."""
        runner = self.runner or self.new_runner()
        self.exchange.clock = self.candles.bar(index) + HOUR + SEND_DELAY_MS
        price = self.candles.open(index + 1)
        if self.liquidity is None:
            self.exchange.book = [(price, Decimal("0.05")), (price + Decimal("0.5"), Decimal("100"))]
        else:
            self.exchange.book = [(price, self.liquidity)] if self.liquidity > 0 else []
        return runner.run_cycle(self.candles.bar(index))

    def run_until_order(self, start: int) -> tuple[int, CycleOutcome | None]:
        """Cycles from bar ``start`` until one decides an order; no outcome if its send crashed (:class:`Crash`)."""
        for index in range(start, start + SEARCH):
            crashing = self.crash
            try:
                outcome = self.run(index)
            except Crash:
                assert crashing, "crashed without an injected crash"
                return index, None
            if outcome.orders_placed:
                return index, outcome
        raise AssertionError(f"no order in bars {start}..{start + SEARCH}: has the default ensemble changed?")

    # -------------------------------------------------------------- the ledger, as stored

    def sessions(self) -> Any:
        return session_factory(self.url)

    def orders(self) -> list[OrderRow]:
        with self.sessions()() as session:
            return list(session.scalars(select(OrderRow).where(OrderRow.book == self.book).order_by(OrderRow.id)))

    def order(self, coid: str) -> OrderRow:
        with self.sessions()() as session:
            return session.scalars(select(OrderRow).where(OrderRow.client_order_id == coid)).one()

    def fills(self) -> list[FillRow]:
        with self.sessions()() as session:
            return list(session.scalars(select(FillRow).where(FillRow.book == self.book).order_by(FillRow.id)))

    def snapshots(self) -> list[PortfolioSnapshotRow]:
        with self.sessions()() as session:
            return list(session.scalars(select(PortfolioSnapshotRow).where(PortfolioSnapshotRow.book == self.book).order_by(PortfolioSnapshotRow.bar_ts)))

    def position(self) -> Decimal:
        with self.sessions()() as session:
            row = session.get(PositionRow, (self.book, SYMBOL))
            return Decimal(0) if row is None else row.quantity

    def cycle_status(self, index: int) -> str | None:
        with self.sessions()() as session:
            cycle = session.scalars(select(TradingCycleRow).where(TradingCycleRow.book == self.book, TradingCycleRow.bar_ts == ms_to_datetime(self.candles.bar(index)))).first()
            return None if cycle is None else cycle.status


@pytest.fixture
def harness(
    migrated_url: str, recorded: tuple[tuple[dict[str, Any], dict[str, Any]], Candles], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Harness]:
    markets, candles = recorded
    for name, value in {
        "DATABASE_URL": migrated_url,
        "BROKER": "ccxt",
        "MARKET_SOURCE": "ccxt",
        "EXCHANGE": "binance",
        "EXCHANGE_API_KEY": API_KEY,
        "EXCHANGE_SECRET": SECRET,
        "SYMBOLS": SYMBOL,
        "TIMEFRAME": "1h",
    }.items():
        monkeypatch.setenv(f"TRADEPIPE_{name}", value)

    klines = candles.klines()

    def get_klines(params: dict[str, Any] = {}) -> list[list[Any]]:  # noqa: B006 - ccxt's own signature
        start = int(params.get("startTime", 0))
        served = [k for k in klines if start <= k[0] <= harness.exchange.clock]  # up to the candle still forming
        return served[: int(params["limit"])]

    market_exchange = BINANCE({"enableRateLimit": True, "options": {"fetchMarkets": {"types": ["spot"]}}})
    market_exchange.set_markets(*copy.deepcopy(markets))
    market_exchange.publicGetKlines = get_klines
    market_exchange.fetch = no_network
    harness = Harness(migrated_url, Exchange(), candles, market_exchange)

    def build_binance(config: dict[str, Any]) -> ccxt.binance:
        """What ``getattr(ccxt, "binance")(config)`` gives in from_settings: a real instance, offline."""
        instance = BINANCE(config)
        instance.set_markets(*copy.deepcopy(markets))
        instance.session = HttpSession(harness.exchange)  # below ccxt's signing: URLs and signatures are real
        instance.throttle = lambda cost=None: None  # enableRateLimit stays on; there is no server to spare
        return instance

    original_from_settings = CcxtBroker.from_settings.__func__  # type: ignore[attr-defined]

    def from_settings(cls: type[CcxtBroker], settings: Any, **options: Any) -> CcxtBroker:
        broker = original_from_settings(cls, settings, **{"sleep": harness.sleeps.append, **options})
        real_submit = broker.submit

        def submit(intent: OrderIntent) -> ExchangeOrder:
            with harness.sessions()() as session:  # another connection: sees only what was committed
                row = session.scalars(select(OrderRow).where(OrderRow.client_order_id == intent.client_order_id)).first()
                harness.sent.append((intent.client_order_id, None if row is None else row.status))
            crash, harness.crash = harness.crash, None
            if crash == "before":
                raise Crash("killed after the cycle committed, before the order was sent")
            sent = real_submit(intent)
            if crash == "after":
                raise Crash("killed after the exchange answered, before the status was saved")
            return sent

        broker.submit = submit  # type: ignore[method-assign]
        harness.brokers.append(broker)
        return broker

    monkeypatch.setattr(ccxt, "binance", build_binance)
    monkeypatch.setattr(CcxtBroker, "from_settings", classmethod(from_settings))
    yield harness


# --------------------------------------------------------------------------------------------
# what the books must show
# --------------------------------------------------------------------------------------------


def expected_fee(exchange: Exchange, coid: str, price: Decimal) -> Decimal:
    """The order's commission in USDT: as charged, or (charged in BTC) at the booked average price."""
    order = exchange.orders[coid]
    total = Decimal(0)
    for trade in exchange.trades[order["orderId"]]:
        commission = Decimal(trade["commission"])
        total += commission if trade["commissionAsset"] == "USDT" else commission * price
    return total


def check_fill_matches_exchange(h: Harness, fill: FillRow) -> None:
    """A booked fill is what the exchange executed: quantity, average price, fee (in USDT), time."""
    on_exchange = h.exchange.orders[fill.client_order_id]
    executed = Decimal(on_exchange["executedQty"])
    assert fill.quantity == executed
    assert fill.side == on_exchange["side"].lower() and fill.symbol == SYMBOL
    assert fill.notional == fill.quantity * fill.price  # exact
    assert abs(fill.notional - Decimal(on_exchange["cummulativeQuoteQty"])) < Decimal("1e-8")  # ccxt's average, to a float
    assert fill.fee == expected_fee(h.exchange, fill.client_order_id, fill.price)
    assert fill.ts == ms_to_datetime(on_exchange["updateTime"])
    assert fill.trade_id == f"ccxt-{fill.client_order_id}"


def check_books(h: Harness) -> None:
    """Every exchange order is in the ledger once; every fill matches the exchange; cash, position
    and equity follow exactly from the fills."""
    posted = [params["newClientOrderId"] for params in h.exchange.posts()]
    assert len(posted) == len(set(posted)), f"an order was placed twice: {posted}"
    orders = {o.client_order_id: o for o in h.orders()}
    fills = h.fills()
    assert len({f.client_order_id for f in fills}) == len(fills), "a fill was booked twice"
    for coid, on_exchange in h.exchange.orders.items():
        order = orders[coid]
        assert order.broker == "ccxt" and order.exchange_order_id in (None, str(on_exchange["orderId"]))
        assert order.quantity == Decimal(on_exchange["origQty"]) and order.side == on_exchange["side"].lower()
        assert order.status in ("submitted", "filled", "cancelled"), (coid, order.status)
    for fill in fills:
        assert orders[fill.client_order_id].status == "filled"
        check_fill_matches_exchange(h, fill)

    buys = [f for f in fills if f.side == "buy"]
    sells = [f for f in fills if f.side == "sell"]
    snapshot = h.snapshots()[-1]
    assert snapshot.cash == STARTING_CASH - sum(f.notional + f.fee for f in buys) + sum(f.notional - f.fee for f in sells)
    held = sum(f.quantity for f in buys) - sum(f.quantity for f in sells)
    assert h.position() == held
    assert snapshot.fees_paid == sum(f.fee for f in fills)
    assert snapshot.realized_pnl == sum(f.realized_pnl for f in fills)
    for snap in h.snapshots():  # the equity invariant, at every bar
        marked = sum(Decimal(p["quantity"]) * Decimal(p["mark"]) for p in snap.positions.values())
        assert snap.positions_value == marked
        assert snap.equity == snap.cash + snap.positions_value
        assert snap.equity == STARTING_CASH + snap.realized_pnl + snap.unrealized_pnl


def only_order(outcome: CycleOutcome | None) -> dict[str, Any]:
    assert outcome is not None and len(outcome.orders_placed) == 1, outcome.orders_placed
    return outcome.orders_placed[0]


# --------------------------------------------------------------------------------------------
# the normal path
# --------------------------------------------------------------------------------------------


def test_orders_are_recorded_then_sent_and_the_next_cycle_books_the_exchange_fill(harness: Harness):
    h = harness
    index, outcome = h.run_until_order(START)
    placed = only_order(outcome)
    coid = placed["client_order_id"]
    bar = h.candles.bar(index)

    # recorded (and committed) before it was sent, under the id the exchange received
    assert coid == client_order_id("main", bar, SYMBOL, "rebalance")
    assert h.sent == [(coid, "pending")]
    assert h.exchange.requests_for(coid) == ["GET /order", "POST /order"]  # looked up, then created once
    post = h.exchange.posts()[-1]
    assert post["newClientOrderId"] == coid and post["type"] == "MARKET" and post["symbol"] == "BTCUSDT"
    order = h.order(coid)
    assert (order.status, order.broker, order.exchange_order_id) == ("submitted", "ccxt", str(h.exchange.orders[coid]["orderId"]))
    assert order.bar_ts == ms_to_datetime(bar) and h.cycle_status(index) == "succeeded"
    assert (order.side, order.quantity) == (placed["side"], Decimal(post["quantity"]))
    assert h.fills() == [] and h.snapshots()[-1].cash == STARTING_CASH and h.position() == 0

    # the next cycle books what the exchange reported
    h.run(index + 1)
    [fill] = [f for f in h.fills() if f.client_order_id == coid]
    price = h.candles.open(index + 1)
    quantity = order.quantity
    assert h.order(coid).status == "filled" and fill.order_id == order.id
    assert fill.quantity == Decimal(h.exchange.orders[coid]["executedQty"]) == quantity
    if quantity <= Decimal("0.05"):  # all at the best level
        assert fill.price == price and fill.notional == quantity * price
    else:
        assert price < fill.price < price + Decimal("0.5")
    assert fill.side == "buy"  # a fresh book can only buy (long only)
    commission_btc = quantity * Decimal("0.001")
    assert fill.fee == commission_btc * fill.price  # charged in BTC, booked in USDT at the average price
    assert fill.ts == ms_to_datetime(bar + HOUR + SEND_DELAY_MS)
    snapshot = h.snapshots()[-1]
    assert snapshot.bar_ts == ms_to_datetime(h.candles.bar(index + 1))
    assert snapshot.cash == STARTING_CASH - fill.notional - fill.fee
    assert h.position() == quantity
    assert Decimal(snapshot.positions[SYMBOL]["average_price"]) == fill.price
    assert snapshot.positions_value == quantity * h.candles.close(index + 1)
    assert snapshot.realized_pnl == -fill.fee and snapshot.fees_paid == fill.fee
    assert snapshot.equity == snapshot.cash + snapshot.positions_value == STARTING_CASH + snapshot.realized_pnl + snapshot.unrealized_pnl
    check_books(h)

    # many more cycles: buys and sells, fees in BTC and USDT, averages over two book levels
    for later in range(index + 2, index + 40):
        h.run(later)
    check_books(h)
    fills = h.fills()
    assert {f.side for f in fills} == {"buy", "sell"}, "the stretch should trade both ways"
    assert any(f.quantity > Decimal("0.05") for f in fills), "the stretch should fill one order over two book levels"
    assert all(p[1] == "pending" for p in h.sent) and len(h.sent) == len(h.exchange.posts())
    assert h.sleeps == []  # nothing had to be retried
    booked = {f.client_order_id for f in fills}
    submitted = [o for o in h.orders() if o.status == "submitted"]
    assert all(o.bar_ts == ms_to_datetime(h.candles.bar(index + 39)) for o in submitted)  # only the last cycle's wait
    assert booked | {o.client_order_id for o in submitted} == set(h.exchange.orders)


def test_rerunning_a_bar_places_and_books_nothing_twice(harness: Harness):
    h = harness
    index, outcome = h.run_until_order(START)
    coid = only_order(outcome)["client_order_id"]

    again = h.run(index)  # a retried run of the same bar, same process
    assert again.status == "already_done"
    h.runner = None
    assert h.run(index).status == "already_done"  # and from a fresh process
    assert h.exchange.creates(coid) == 1 and len(h.exchange.orders) == 1
    assert [o.client_order_id for o in h.orders()] == [coid] and h.order(coid).status == "submitted"

    h.run(index + 1)
    fills, snapshots = h.fills(), h.snapshots()
    assert [f.client_order_id for f in fills] == [coid]
    for _ in range(2):
        assert h.run(index + 1).status == "already_done"
        h.runner = None
    assert [(f.id, f.quantity, f.fee) for f in h.fills()] == [(f.id, f.quantity, f.fee) for f in fills]
    assert [s.cash for s in h.snapshots()] == [s.cash for s in snapshots]
    assert h.exchange.creates(coid) == 1
    check_books(h)


# --------------------------------------------------------------------------------------------
# a crash between the commit and the send (each scenario on its own book, in one database)
# --------------------------------------------------------------------------------------------


CRASHES = [
    ("before", "next_bar"),  # killed before the exchange was asked; the next bar's cycle sends it
    ("after", "next_bar"),  # killed after the exchange took it, before "submitted" was saved
    ("before", "same_bar_retried"),  # ... and the failed run of the same bar is retried (Dagster)
    ("after", "same_bar_retried"),
]


def test_an_order_left_pending_by_a_crash_is_sent_exactly_once(harness: Harness):
    for crash, resume in CRASHES:
        h = harness.scenario(f"crash-{crash}-{resume}".replace("_", "-"))
        h.crash = crash
        index, outcome = h.run_until_order(START)
        assert outcome is None, "the send should have crashed"
        [(coid, status)] = h.sent
        assert coid == client_order_id(h.book, h.candles.bar(index), SYMBOL, "rebalance")
        assert status == "pending" and h.cycle_status(index) == "succeeded"  # the cycle itself committed
        order = h.order(coid)
        assert (order.status, order.exchange_order_id) == ("pending", None), (crash, resume)
        assert h.exchange.creates(coid) == (1 if crash == "after" else 0)

        h.runner = None  # the process restarts
        if resume == "same_bar_retried":
            assert h.run(index).status == "already_done"
            assert h.exchange.creates(coid) == 1 and h.order(coid).status == "submitted", (crash, resume)
            assert h.fills() == []
        h.run(index + 1)  # sends it if still pending, then books what the exchange reports

        assert h.exchange.creates(coid) == 1, (crash, resume)
        assert [f.client_order_id for f in h.fills()] == [coid], (crash, resume)
        order = h.order(coid)
        assert order.status == "filled" and order.exchange_order_id == str(h.exchange.orders[coid]["orderId"])
        h.run(index + 2)
        assert h.exchange.creates(coid) == 1
        check_books(h)


def test_an_order_still_pending_after_its_bar_passed_is_looked_up_then_booked_or_cancelled(harness: Harness):
    """The process was down for a whole bar: the next cycle to run is two bars on. The order is not
    sent so late; if the crash came after the exchange took it, the exchange's fill is booked, or
    the ledger would miss a real trade; otherwise it is cancelled."""
    for crash in ("before", "after"):
        h = harness.scenario(f"stale-{crash}")
        h.crash = crash
        index, _ = h.run_until_order(START)
        [(coid, _)] = h.sent
        assert h.order(coid).status == "pending"
        assert h.exchange.creates(coid) == (1 if crash == "after" else 0)

        h.runner = None
        h.run(index + 2)

        order = h.order(coid)
        fills = [f for f in h.fills() if f.client_order_id == coid]
        if crash == "before":
            assert order.status == "cancelled" and order.reason.endswith("; cancelled: never sent before its bar passed")
            assert h.exchange.requests_for(coid) == ["GET /order"]  # looked up (nothing there), never created
            assert fills == []
        else:
            assert h.exchange.orders[coid]["status"] == "FILLED" and h.exchange.creates(coid) == 1
            assert order.status == "filled" and order.exchange_order_id == str(h.exchange.orders[coid]["orderId"])
            [fill] = fills
            check_fill_matches_exchange(h, fill)
        check_books(h)


def test_an_order_whose_state_is_unknown_is_not_written_off(harness: Harness):
    """The answer to the create is lost and the look-ups keep failing: the broker cannot say whether
    the order exists. The ledger must not record it as refused; the next cycle finds it and books it."""
    h = harness
    h.exchange.lose_next_answer = 4  # filled on the exchange, answer lost; the look-up's 1 try + 3 retries fail
    index, outcome = h.run_until_order(START)
    coid = only_order(outcome)["client_order_id"]
    assert h.exchange.creates(coid) == 1 and h.exchange.orders[coid]["status"] == "FILLED"
    order = h.order(coid)
    assert (order.status, order.exchange_order_id, order.reject_kind) == ("pending", None, None)  # not "rejected"
    assert h.exchange.requests_for(coid) == ["GET /order", "POST /order"] + ["GET /order"] * 4
    assert h.fills() == []

    h.run(index + 1)

    assert h.exchange.creates(coid) == 1
    assert h.order(coid).status == "filled" and [f.client_order_id for f in h.fills()] == [coid]
    check_books(h)


# --------------------------------------------------------------------------------------------
# the exchange refuses, or fills part or nothing
# --------------------------------------------------------------------------------------------


def test_an_order_refused_for_insufficient_funds_is_rejected_with_the_reason(harness: Harness):
    h = harness
    h.exchange.reject_post = [Reject(-2010, "Account has insufficient balance for requested action.")]
    index, outcome = h.run_until_order(START)
    placed = only_order(outcome)
    coid = placed["client_order_id"]

    order = h.order(coid)
    assert (order.status, order.reject_kind, order.exchange_order_id) == ("rejected", "exchange", None)
    assert order.reason.startswith(placed["reason"] + "; exchange refused: insufficient funds on binance for ")
    assert f"{placed['side']} {order.quantity} {SYMBOL}" in order.reason
    assert "Account has insufficient balance for requested action." in order.reason
    assert h.exchange.creates(coid) == 1 and coid not in h.exchange.orders and h.sleeps == []

    calls = len(h.exchange.requests_for(coid))
    h.run(index + 1)
    assert len(h.exchange.requests_for(coid)) == calls  # a refused order is neither resent nor reconciled
    assert h.order(coid).status == "rejected" and h.fills() == []
    assert h.snapshots()[-1].cash == STARTING_CASH and h.position() == 0
    check_books(h)


def test_a_market_order_the_book_fills_in_part_or_not_at_all(harness: Harness):
    for liquidity in (Decimal("0.01"), Decimal("0")):
        h = harness.scenario(f"liquidity-{liquidity}".replace(".", "-"))
        h.liquidity = liquidity
        index, outcome = h.run_until_order(START)
        coid = only_order(outcome)["client_order_id"]
        assert h.exchange.orders[coid]["status"] == "EXPIRED"  # binance's answer for an unfillable market order
        h.liquidity = None

        h.run(index + 1)

        order = h.order(coid)
        fills = [f for f in h.fills() if f.client_order_id == coid]
        if liquidity == 0:
            assert order.status == "cancelled" and order.reason.endswith("; cancelled: exchange status expired")
            assert fills == [] and h.snapshots()[-1].cash == STARTING_CASH and h.position() == 0
        else:
            [fill] = fills
            assert order.status == "filled" and fill.quantity == liquidity < order.quantity
            assert fill.price == h.candles.open(index + 1)
            assert h.snapshots()[-1].cash == STARTING_CASH - fill.notional - fill.fee
            assert h.position() == liquidity
        check_books(h)


# --------------------------------------------------------------------------------------------
# testnet unless TRADEPIPE_LIVE=1
# --------------------------------------------------------------------------------------------


def test_requests_go_to_the_testnet_unless_live(harness: Harness, monkeypatch: pytest.MonkeyPatch):
    for live in (False, True):
        h = harness.scenario("live" if live else "testnet")
        if live:
            monkeypatch.setenv("TRADEPIPE_LIVE", "1")
        index, outcome = h.run_until_order(START)
        h.run(index + 1)

        [broker] = h.brokers
        exchange = broker.exchange
        assert broker.live is live and exchange.apiKey == API_KEY and exchange.secret == SECRET
        assert bool(exchange.isSandboxModeEnabled) is not live
        base = MAINNET if live else TESTNET
        sent = exchange.session.requests
        assert {(r["method"], r["url"].split("?")[0]) for r in sent} >= {("POST", f"{base}/order"), ("GET", f"{base}/order")}
        for request in sent:
            assert request["url"].startswith(base + "/"), (live, request["url"])
            assert request["headers"]["X-MBX-APIKEY"] == API_KEY and SECRET not in json.dumps(request)
        assert h.order(only_order(outcome)["client_order_id"]).status == "filled"
        check_books(h)
