"""Exchange order sync: the ledger's ccxt orders against what the exchange knows.

Orders are recorded first (by the cycle, in its transaction) and sent afterwards, each under its
deterministic client order id; the next cycle books what the exchange did with them. This module
is the only place that moves a ccxt order's status, one order per commit, so a crash loses at most
the answer to one request and the next sync finds the order again by its client order id.

No transaction stays open while the exchange answers (seconds, or minutes with retries): the list
of orders is read and its transaction ended first, and each status move commits on its own. A
transaction idle that long would be ended by the server (``idle_in_transaction_session_timeout``).
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session, sessionmaker

from tradepipe.adapters.ccxt_broker import BrokerError, CcxtBroker, OrderStateUnknown, to_fill
from tradepipe.adapters.db.ledger import ms_to_datetime, open_exchange_orders, order_intent
from tradepipe.adapters.db.order_status import OrderStatus, move_order
from tradepipe.core.cycle import BrokerOutcome

log = logging.getLogger(__name__)


class ExchangeOrderSync:
    def __init__(self, exchange: CcxtBroker, sessions: sessionmaker[Session], book: str, timeframe_ms: int) -> None:
        self.exchange = exchange
        self.sessions = sessions
        self.book = book
        self.timeframe_ms = timeframe_ms

    def reconcile_stale(self, bar_open_ms: int) -> None:
        """An order still pending after its bar passed is not sent any more, but a crash may have come
        after the exchange took it: it is looked up, and cancelled only if the exchange has no order
        with its id. An order whose state could not be learnt (look-ups failing) stays pending."""
        stale_before = ms_to_datetime(bar_open_ms - self.timeframe_ms)
        with self.sessions() as session:
            orders = open_exchange_orders(session, self.book)
            session.commit()
            for order in orders:
                if order.status != OrderStatus.PENDING or order.bar_ts >= stale_before:
                    continue
                try:
                    found = self.exchange.reconcile(order.client_order_id, order.symbol)
                except BrokerError as exc:
                    log.warning("stale order %s left pending: %s", order.client_order_id, exc.reason)
                    continue
                if found is None:
                    move_order(order, OrderStatus.CANCELLED, "cancelled: never sent before its bar passed")
                else:
                    move_order(order, OrderStatus.SUBMITTED)
                    order.exchange_order_id = found.exchange_order_id
                session.commit()

    def send_pending(self, bar_open_ms: int) -> None:
        """Send the recorded orders of the last two bars. The broker looks the client order id up
        before creating, so a resend after a crash never places an order twice."""
        stale_before = ms_to_datetime(bar_open_ms - self.timeframe_ms)
        with self.sessions() as session:
            orders = open_exchange_orders(session, self.book)
            session.commit()
            for order in orders:
                if order.status != OrderStatus.PENDING or order.bar_ts < stale_before:
                    continue
                try:
                    sent = self.exchange.submit(order_intent(order))
                except OrderStateUnknown as exc:
                    log.warning("order %s left pending: %s", order.client_order_id, exc.reason)
                    continue
                except BrokerError as exc:
                    move_order(order, OrderStatus.REJECTED, f"exchange refused: {exc.reason}")
                    order.reject_kind = "exchange"
                else:
                    move_order(order, OrderStatus.SUBMITTED)
                    order.exchange_order_id = sent.exchange_order_id
                session.commit()

    def final_outcomes(self, bar_open_ms: int) -> list[BrokerOutcome]:
        """What the exchange did with the orders sent since the last cycle (final ones only)."""
        outcomes: list[BrokerOutcome] = []
        with self.sessions() as session:
            orders = open_exchange_orders(session, self.book)
            session.commit()
            for order in orders:
                try:
                    report = self.exchange.reconcile(order.client_order_id, order.symbol)
                except BrokerError as exc:
                    log.warning("could not reconcile %s: %s", order.client_order_id, exc.reason)
                    continue
                if report is None or not report.is_final:
                    continue
                try:
                    fill = to_fill(report, report.timestamp or bar_open_ms)
                except BrokerError as exc:  # e.g. filled without an average price: book it once the exchange says more
                    log.warning("cannot book %s yet: %s", order.client_order_id, exc.reason)
                    continue
                outcomes.append(BrokerOutcome(order_intent(order), fill, report.fee_note or f"exchange status {report.status}"))
        return outcomes
