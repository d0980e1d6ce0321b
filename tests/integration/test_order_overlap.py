"""An order reaches the exchange at most once when two cycles of one book overlap, at any exchange latency.

The probe that found the bug: two cycles of one book on the ccxt broker, the exchange answering in
2 s. The first cycle commits its orders and sends them; the second, started meanwhile, found them
pending, looked each client order id up (not there yet) and sent it too, so in 5 of 15 trials the
exchange executed an order twice and the ledger knew of one.

Here a real ``ccxt.binance`` (built, signed and parsed by ccxt) talks over loopback HTTP to
:class:`tests.integration.loopback_exchange.LoopbackBinance`, which answers after 0.15, 2 or 5 s: shorter
than a cycle's own work, the probe's latency, and long beside a cycle's work even on a loaded machine
(each trial's timing scales with the latency, and no timeout in the code under test comes near at
any of them: 10 s proved nothing more than 5 s and slept about 45 s longer per database).
Each trial runs two cycles of one book at once, in two threads with their own runner, broker,
ccxt instance and database engine (two processes, as far as the ledger and the exchange can tell):
cycle A trades bar t; once A has committed an order and asks the exchange whether its client order
id exists yet, cycle B starts (after a delay spread over A's look-up and create, the window in which
the unguarded code sent duplicates) and trades bar t again (a duplicate launch) or bar t+1 (the next
sensor tick).
Several books trade side by side, each on its own exchange account, to keep the wall time down.

After the trials one more cycle per book books what is left. Then, per book:

* every client order id was executed by the exchange exactly once (0 duplicates);
* every order the exchange executed is in the ledger, under its id, with the exchange's order id,
  and booked as one fill of the executed quantity (or, sent by the very last cycle, "submitted"
  for the next cycle to book): nothing on the exchange that the ledger missed;
* every ledger order that was sent is on the exchange; the stored cash and position are a replay of its fills.

The replayed 2018 BTC/USDT candles drive the default ensemble with a rebalance band of 0, so
nearly every bar decides an order.
"""

from __future__ import annotations

import csv
import json
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt
import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from tests.adapters.test_broker import no_network
from tests.integration.ledger_checks import STARTING_CASH
from tests.integration.loopback_exchange import LoopbackBinance
from tradepipe.adapters.ccxt_broker import CcxtBroker
from tradepipe.adapters.db.engine import get_engine
from tradepipe.adapters.db.models import FillRow, OrderRow, PortfolioSnapshotRow, PositionRow
from tradepipe.adapters.market import ReplayMarket
from tradepipe.config.settings import load_settings
from tradepipe.trading.brokers import ExchangeBroker
from tradepipe.trading.runner import OutOfOrderBarError, TradingRunner

pytestmark = pytest.mark.shared_data

HOUR = 3_600_000
REPLAY = "binance_2018_octobot"
SYMBOL = "BTC/USDT"
START = 300  # past the agents' warm-up


@pytest.fixture(scope="module")
def markets(shared_data: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    info = json.loads((shared_data / "binance_api" / "exchange_info_BTCUSDT.json").read_text())
    parser = ccxt.binance({"options": {"fetchMarkets": {"types": ["spot"]}}})
    parser.publicGetExchangeInfo = lambda params={}: info  # noqa: B006 - the only request load_markets makes
    parser.fetch = no_network
    parser.load_markets()
    return parser.markets, parser.currencies


@pytest.fixture(scope="module")
def bars(shared_data: Path) -> list[int]:
    with (shared_data / "ohlcv" / REPLAY / "BTC_USDT-1h.csv").open() as file:
        return [int(row["timestamp"]) for row in csv.DictReader(file)]


@dataclass
class Lane:
    """One book on its own exchange account; its cycles run as separate 'processes'."""

    book: str
    server: LoopbackBinance
    url: str
    replay: Path
    latency_s: float
    outcomes: list[str] = field(default_factory=list)
    overlapping: int = 0
    trials_with_orders: int = 0

    def cycle(self, bar: int, record: list[tuple[str, float, float]]) -> None:
        """A fresh runner, broker and engine (what a new process has) trading ``bar``; the result goes to ``record``."""
        engine = get_engine.__wrapped__(self.url)  # type: ignore[attr-defined] - not the cached one: a process of its own
        settings = load_settings(
            database_url=self.url, market_source="replay", replay_dir=str(self.replay), symbols=[SYMBOL], timeframe="1h",
            rebalance_band=0.0, book_lock_timeout_seconds=600,
        )
        sessions = sessionmaker(engine, expire_on_commit=False)
        exchange = CcxtBroker(self.server.exchange(timeout_s=3 * self.latency_s + 5), live=False)
        broker = ExchangeBroker(exchange, sessions, self.book, HOUR)
        runner = TradingRunner(settings, market=ReplayMarket(self.replay, mode="stepped"), book=self.book, sessions=sessions, broker=broker, redis_url=None)
        started = time.monotonic()
        try:
            outcome = runner.run_cycle(bar)
            result = f"{outcome.status}:{len(outcome.orders_placed)}"
        except OutOfOrderBarError:
            result = "out_of_order"
        except Exception as error:  # reported, and the test fails on it
            result = f"error: {type(error).__name__}: {error}"
        finally:
            engine.dispose()
        record.append((result, started, time.monotonic()))

    def trial(self, bar: int, next_bar: int, delay_s: float) -> int:
        """Cycle A of ``bar``; once A asks the exchange about a new order (it committed it and is about to
        send it), and ``delay_s`` later, cycle B of ``next_bar``. Returns the newer bar."""
        first: list[tuple[str, float, float]] = []
        second: list[tuple[str, float, float]] = []
        a = threading.Thread(target=self.cycle, args=(bar, first))
        b = threading.Thread(target=self.cycle, args=(next_bar, second))
        self.server.new_lookup.clear()
        a.start()
        while a.is_alive() and not self.server.new_lookup.wait(0.05):
            pass
        time.sleep(delay_s)
        b.start()
        a.join()
        b.join()
        (result_a, start_a, end_a), (result_b, start_b, end_b) = first[0], second[0]
        self.outcomes += [result_a, result_b]
        if start_b < end_a and start_a < end_b:
            self.overlapping += 1
        if any(result.startswith("traded:") and not result.endswith(":0") for result in (result_a, result_b)):
            self.trials_with_orders += 1
        return max(bar, next_bar)


def run_lanes(lanes: list[Lane], bars: list[int], trials: int) -> None:
    """Every lane runs ``trials`` overlapping pairs, lanes side by side; then one plain cycle books what is left."""

    def run(lane: Lane, offset: int) -> None:
        index = START + 3 * offset * trials
        for trial in range(trials):
            # B's start spreads over A's look-up and create of its new order: the window of the race
            share = (trial * len(lanes) + offset + 0.5) / (trials * len(lanes))
            delay = share * 1.5 * lane.latency_s
            same_bar = (trial + offset) % 2 == 0
            last = lane.trial(bars[index], bars[index if same_bar else index + 1], delay)
            index = bars.index(last) + 1
        record: list[tuple[str, float, float]] = []
        lane.cycle(bars[index], record)
        lane.outcomes.append(record[0][0])

    threads = [threading.Thread(target=run, args=(lane, offset)) for offset, lane in enumerate(lanes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def check_lane(lane: Lane) -> tuple[int, int]:
    """Asserts the exchange and the ledger agree on ``lane``'s book; returns (exchange orders, duplicates)."""
    errors = [o for o in lane.outcomes if o.startswith("error")]
    assert not errors, errors
    assert lane.server.bad_signatures == 0
    model = lane.server.model
    duplicates = {coid: n for coid, n in model.executions.items() if n > 1}
    engine = get_engine(lane.url)
    with sessionmaker(engine)() as session:
        orders = {o.client_order_id: o for o in session.scalars(select(OrderRow).where(OrderRow.book == lane.book))}
        fills = list(session.scalars(select(FillRow).where(FillRow.book == lane.book)))
        last = session.scalars(
            select(PortfolioSnapshotRow).where(PortfolioSnapshotRow.book == lane.book).order_by(PortfolioSnapshotRow.bar_ts.desc())
        ).first()
        position = session.get(PositionRow, (lane.book, SYMBOL))
    filled: dict[str, Decimal] = {}
    for fill in fills:
        assert fill.client_order_id not in filled, f"{fill.client_order_id} booked twice"
        filled[fill.client_order_id] = fill.quantity
    for executed in model.executed:
        coid = executed["clientOrderId"]
        assert coid in orders, f"exchange order {coid} is not in the ledger"
        assert orders[coid].exchange_order_id == str(executed["orderId"]) or coid in duplicates
        if orders[coid].status == "filled":
            assert filled[coid] == Decimal(executed["executedQty"]), (coid, filled[coid], executed["executedQty"])
        else:  # sent by the last cycle: the next one books it
            assert orders[coid].status == "submitted" and coid not in filled, (coid, orders[coid].status)
    sent = {coid for coid, order in orders.items() if order.exchange_order_id is not None}
    assert sent == set(model.executions), (sent ^ set(model.executions))
    assert not [o for o in orders.values() if o.status == "pending"], "an order was left unsent"
    # the book is a replay of its fills: cash and position (fills carry the exchange's times, not bar opens)
    cash = STARTING_CASH - sum((f.notional * (1 if f.side == "buy" else -1) + f.fee for f in fills), Decimal(0))
    held = sum((f.quantity * (1 if f.side == "buy" else -1) for f in fills), Decimal(0))
    assert (last.cash, Decimal(last.positions.get(SYMBOL, {}).get("quantity", 0))) == (cash, held)
    assert (position.quantity if position else Decimal(0)) == held
    return len(model.executed), sum(n - 1 for n in duplicates.values())


# latency, books side by side, overlapping trials per book: 17 trials per database, 34 with both
CASES = [(0.15, 3, 3), (2.0, 3, 2), (5.0, 2, 1)]


@pytest.mark.parametrize(("latency_s", "books", "trials"), CASES, ids=[f"{c[0]:g}s" for c in CASES])
def test_overlapping_cycles_send_each_order_once(
    migrated_url: str, markets: tuple[dict[str, Any], dict[str, Any]], bars: list[int], shared_data: Path,
    latency_s: float, books: int, trials: int,
) -> None:
    servers = [LoopbackBinance(latency_s, markets) for _ in range(books)]
    for server in servers:
        server.__enter__()
    try:
        lanes = [Lane(f"overlap{n}", server, migrated_url, shared_data / "ohlcv" / REPLAY, latency_s) for n, server in enumerate(servers)]
        run_lanes(lanes, bars, trials)
    finally:
        for server in servers:
            server.__exit__(None, None, None)
    counted = [check_lane(lane) for lane in lanes]
    executed, duplicates = sum(c[0] for c in counted), sum(c[1] for c in counted)
    overlapping = sum(lane.overlapping for lane in lanes)
    with_orders = sum(lane.trials_with_orders for lane in lanes)
    print(
        f"\nlatency {latency_s:g} s on {migrated_url.split(':')[0]}: {overlapping} overlapping trials "
        f"({with_orders} deciding orders), {executed} exchange orders, {duplicates} duplicates; outcomes {sorted(set(o for lane in lanes for o in lane.outcomes))}"
    )
    assert duplicates == 0
    assert overlapping == books * trials  # every pair really ran at the same time
    assert with_orders == books * trials, "a trial without an order proves nothing"
