"""One broker interface for the trading cycle: the paper simulator and a ccxt exchange implement it.

A cycle asks its broker, in this order:

1. ``reconcile_pending``: settle orders left over from earlier cycles (a crash between recording and
   sending, an order whose bar passed unsent);
2. ``submit_intents``: send recorded orders the venue has not taken yet;
3. ``report_fills``: what the venue did since the last cycle, for the core to book;
   then the cycle runs and records its new orders, and after it committed:
4. ``submit_intents`` again: send this cycle's orders.

A broker that ``sends_orders`` to a venue outside the process gets steps 1 to 4 run under the book's
order lock (``tradepipe.adapters.db.book_lock.hold_order_lock``, taken by the runner): two
overlapping cycles of one book never look up or send the same order at once, so an order reaches the
exchange at most once. The broker's own look-up by client order id before every create covers the
rest (a crash after the send, a resend after an ambiguous failure).

On paper the venue is the core's own fill simulation: a recorded order fills at the next bar's open
(plus slippage and fees), so steps 1, 2 and 4 have nothing to do and step 3 says "simulate".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, Sequence

from sqlalchemy.orm import Session, sessionmaker

from tradepipe.adapters.market import market_rules_from_ccxt
from tradepipe.core.cycle import BrokerOutcome
from tradepipe.core.paper import PAPER_RULES
from tradepipe.core.types import MarketRules

if TYPE_CHECKING:  # ccxt costs a second to import: only a ccxt broker loads it
    from tradepipe.adapters.ccxt_broker import CcxtBroker

@dataclass(frozen=True)
class FillReport:
    """What the core books this cycle: the venue's final outcomes, or (paper) its own simulated fills
    of the book's pending orders at this bar's open."""

    outcomes: list[BrokerOutcome] = field(default_factory=list)
    simulate_pending: bool = False


class Broker(Protocol):
    name: str
    """Recorded on every order ("paper" or "ccxt")."""
    sends_orders: bool
    """True when orders leave the process: the runner then holds the book's order lock around steps 1 to 4."""

    def market_rules(self, symbols: Sequence[str]) -> dict[str, MarketRules]: ...

    def reconcile_pending(self, bar_open_ms: int) -> None: ...

    def submit_intents(self, bar_open_ms: int) -> None: ...

    def report_fills(self, bar_open_ms: int) -> FillReport: ...


class PaperBroker:
    """Simulated fills at the next bar's open; nothing leaves the process."""

    name = "paper"
    sends_orders = False

    def market_rules(self, symbols: Sequence[str]) -> dict[str, MarketRules]:
        return {symbol: MarketRules(symbol=symbol, **PAPER_RULES) for symbol in symbols}

    def reconcile_pending(self, bar_open_ms: int) -> None:
        return None

    def submit_intents(self, bar_open_ms: int) -> None:
        return None

    def report_fills(self, bar_open_ms: int) -> FillReport:
        return FillReport(simulate_pending=True)


class ExchangeBroker:
    """Real orders on a ccxt exchange (testnet unless live), kept in step with the ledger by ExchangeOrderSync."""

    name = "ccxt"
    sends_orders = True

    def __init__(self, exchange: CcxtBroker, sessions: sessionmaker[Session], book: str, timeframe_ms: int) -> None:
        from tradepipe.trading.order_sync import ExchangeOrderSync

        self.exchange = exchange
        self.sync = ExchangeOrderSync(exchange, sessions, book, timeframe_ms)

    def market_rules(self, symbols: Sequence[str]) -> dict[str, MarketRules]:
        """The exchange's own limits (amount step, price tick, minimum cost)."""
        markets = self.exchange.exchange.load_markets()
        return {symbol: market_rules_from_ccxt(markets[symbol], self.exchange.exchange.precisionMode) for symbol in symbols}

    def reconcile_pending(self, bar_open_ms: int) -> None:
        self.sync.reconcile_stale(bar_open_ms)

    def submit_intents(self, bar_open_ms: int) -> None:
        self.sync.send_pending(bar_open_ms)

    def report_fills(self, bar_open_ms: int) -> FillReport:
        return FillReport(outcomes=self.sync.final_outcomes(bar_open_ms))
