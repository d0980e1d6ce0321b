"""The ccxt broker: real exchange orders (testnet by default), placed at most once.

Safety rules (checked when the broker is built, before any order can be sent):

* **Testnet unless TRADEPIPE_LIVE=1.** With ``live=False`` the broker switches the exchange to its
  sandbox/testnet (``exchange.set_sandbox_mode(True)``; for binance spot every request then goes
  to ``https://testnet.binance.vision``) and checks that the switch took. An exchange that ccxt
  gives no sandbox for is refused with :class:`LiveTradingRefused`: the only way to send orders
  to it is real money, which needs ``TRADEPIPE_LIVE=1`` (``settings.live``). With ``live=True``
  orders reach the real-money account and the broker logs a warning when it is built.
* **Keys only from the settings' SecretStr.** :meth:`CcxtBroker.from_settings` refuses to build a
  broker without ``TRADEPIPE_EXCHANGE_API_KEY`` and ``TRADEPIPE_EXCHANGE_SECRET`` (the error
  names the variables, never a value). Keys are handed to ccxt and nowhere else: they are never
  logged, never part of an exception message (messages are scrubbed of both values, in case an
  exchange echoes one) and never part of a ``repr``.
* **Spot market orders only**, sized by the risk manager; ccxt rounds the amount to the market's
  step (``amount_to_precision``, truncating) when it builds the request.

Never placing an order twice. Every order carries the intent's deterministic ``client_order_id``
(``tradepipe.core.risk.client_order_id``: the same book, bar, symbol and purpose always give the
same id), sent as ccxt's unified ``clientOrderId`` param, which binance maps to
``newClientOrderId``. The exchange alone cannot be trusted to refuse a repeat: binance spot keeps
client order ids unique *among open orders* only, and a market order is closed the moment it
fills. So :meth:`CcxtBroker.submit`

1. first looks the id up on the exchange and, if an order with it exists in any state, returns
   that order instead of creating one (an id is used at most once, even if its order expired);
2. creates the order; an ambiguous failure (``ccxt.NetworkError`` and the other
   ``ccxt.OperationFailed`` errors such as a timeout, or binance's "execution status unknown")
   may or may not have reached the exchange, so it is never simply resent: the broker waits,
   looks the id up again, returns the order if it is there and only otherwise sends it again,
   up to ``max_retries`` more times. The wait after failed attempt ``n`` (from 0) is
   ``max(backoff_s * 2**n, settle_s)``; ``settle_s`` defaults to the exchange's request validity
   window (binance's ``recvWindow``, 10 s in ccxt), after which a request still in flight is
   refused by the exchange itself, so it cannot land after the look-up found nothing;
3. treats an exchange error saying the client order id is a duplicate (``ccxt.DuplicateOrderId``
   or a message containing "duplicate", e.g. binance ``-2010 Duplicate order sent.``) as proof that
   the order exists: it is fetched and returned;
4. turns definite refusals into :class:`BrokerError` at once, without retrying:
   ``InsufficientFunds``, ``BadSymbol``, ``InvalidOrder``, ``BadRequest``, rejected credentials.
   Any other exchange error gets one look-up (in case the order went through) before it is
   reported. A look-up that still fails after its retries raises :class:`BrokerError` saying the
   order's state is unknown and nothing was resent: call :meth:`CcxtBroker.reconcile` later.

How an order is looked up by client order id (``lookup="auto"``): on the binance family
(``binance``, ``binanceus``, ``binanceusdm``, ``binancecoinm``) and on exchanges whose ``has``
sets ``fetchOrderWithClientOrderId``, with ``fetch_order(None, symbol, {"clientOrderId": id})``
(binance: ``GET /api/v3/order?origClientOrderId=...``; "order does not exist" means not found).
Elsewhere by scanning the unified order lists, which ccxt supports generically:
``fetch_orders(symbol)`` when the exchange has it, else ``fetch_open_orders(symbol)`` plus
``fetch_closed_orders(symbol)``, matching ``order["clientOrderId"]``. A scan sees only what the
exchange lists (its recent history), so it protects a retry, not an order from weeks ago; the
ledger's own record of sent ids covers that. An exchange with neither way is refused at build.

Fee rule (:attr:`ExchangeOrder.fee`, always in the market's quote currency, ``Decimal``): taken
from ccxt's ``order["fees"]`` (else ``order["fee"]``), or, when the order answer carries none
(binance ``GET /order`` has no fills), from the order's trades (``fetch_order_trades``, else
``fetch_my_trades`` filtered by order id). Per currency:

* quote currency: as charged;
* base currency (binance charges a buy's commission in the asset bought): converted at the
  order's average price, ``fee_base x average``; the account then holds ``filled - fee_base``
  of the base asset (:attr:`ExchangeOrder.base_fee`), which the note says;
* any other currency (BNB): converted with ``fee_price(currency, quote)`` if the broker was
  given that callable and it knows a price; otherwise recorded as 0 with a note naming the
  unconverted amount;
* no fee information at all: 0 with a note. A negative total (a rebate) is recorded as 0 with a
  note (the ledger's fills take fees >= 0).

Every figure from ccxt (floats) becomes ``Decimal(str(x))``, so 0.001 is exactly 0.001, and
:func:`to_fill` computes ``notional = quantity x price`` exactly, as the ledger's
:class:`~tradepipe.core.paper.Fill` requires.
"""

from __future__ import annotations

import difflib
import logging
import time
from dataclasses import dataclass, field
from decimal import Context, Decimal, InvalidOperation, localcontext
from typing import TYPE_CHECKING, Any, Callable, Literal, Mapping, Sequence, TypeVar

import ccxt

from tradepipe.adapters.market import DEFAULT_EXCHANGE_TIMEOUT_S
from tradepipe.core.types import Fill, OrderIntent
from tradepipe.core.redaction import redact

if TYPE_CHECKING:  # pragma: no cover - typing only
    from tradepipe.config.settings import Settings

__all__ = [
    "BrokerError",
    "CcxtBroker",
    "ExchangeOrder",
    "ExchangeTrade",
    "FINAL_STATUSES",
    "LiveTradingRefused",
    "OrderStateUnknown",
    "to_fill",
]

log = logging.getLogger(__name__)

FINAL_STATUSES = frozenset({"closed", "canceled", "expired", "rejected"})
API_KEY_VARIABLE = "TRADEPIPE_EXCHANGE_API_KEY"
SECRET_VARIABLE = "TRADEPIPE_EXCHANGE_SECRET"
LIVE_VARIABLE = "TRADEPIPE_LIVE"

# Exchanges whose fetch_order takes the unified clientOrderId param (binance: origClientOrderId).
_FETCH_ORDER_BY_CLIENT_ID = frozenset({"binance", "binanceus", "binanceusdm", "binancecoinm"})
# Product and fee arithmetic wide enough to be exact for any exchange figure.
_EXACT = Context(prec=60)
_ZERO = Decimal(0)
_T = TypeVar("_T")
Lookup = Literal["auto", "fetch_order", "scan"]


class BrokerError(Exception):
    """An order was not placed (or its state could not be learnt); ``reason`` says why, for a person."""

    def __init__(self, reason: str, client_order_id: str | None = None) -> None:
        reason = redact(reason)  # ccxt quotes the request URL (signature, keys in a query) in its errors
        super().__init__(f"order {client_order_id}: {reason}" if client_order_id else reason)
        self.client_order_id = client_order_id
        self.reason = reason


class LiveTradingRefused(BrokerError):
    """Building the broker would let orders reach real money without TRADEPIPE_LIVE=1."""


class OrderStateUnknown(BrokerError):
    """Look-ups kept failing: the order may or may not be on the exchange. Not a refusal; look it up later."""


@dataclass(frozen=True)
class ExchangeTrade:
    """One execution of an order, as the exchange reported it (fee in its own currency)."""

    id: str | None
    price: Decimal | None
    amount: Decimal | None
    cost: Decimal | None
    fee_cost: Decimal | None
    fee_currency: str | None
    timestamp: int | None


@dataclass(frozen=True)
class ExchangeOrder:
    """An order as the exchange knows it. Quantities and money are ``Decimal``; ``fee`` is in quote currency.

    ``status`` is ccxt's: ``"open"``, ``"closed"``, ``"canceled"``, ``"expired"``, ``"rejected"``
    (``"open"`` too when the exchange did not say). ``average`` is None until something filled.
    ``base_fee`` is the part of ``filled`` the exchange kept as commission (fee charged in the base
    asset); ``fee_note`` explains any conversion or missing fee. ``info`` is ccxt's raw answer.
    """

    client_order_id: str
    exchange_order_id: str | None
    symbol: str
    side: str
    status: str
    amount: Decimal | None
    filled: Decimal
    average: Decimal | None
    cost: Decimal | None
    fee: Decimal
    trades: list[ExchangeTrade] = field(default_factory=list)
    fee_note: str = ""
    base_fee: Decimal = _ZERO
    timestamp: int | None = None
    info: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_final(self) -> bool:
        """True when nothing more can fill (closed, canceled, expired or rejected)."""
        return self.status in FINAL_STATUSES


def to_fill(order: ExchangeOrder, fill_ms: int) -> Fill | None:
    """The ledger :class:`Fill` for what ``order`` has filled, or None if nothing has.

    ``quantity = filled``, ``price = average``, ``notional = quantity x price`` exactly, ``fee`` the
    order's fee in quote currency (see the module docstring), ``requested_quantity`` the order's
    amount. Call it once the order is final (:attr:`ExchangeOrder.is_final`; a market order almost
    always is when :meth:`CcxtBroker.submit` returns): for an open order it is the part filled so far.
    """
    if order.filled <= 0:
        return None
    if order.side not in ("buy", "sell"):
        raise BrokerError(f"filled order has side {order.side!r}, expected 'buy' or 'sell'", order.client_order_id)
    if order.average is None or order.average <= 0:
        raise BrokerError(f"filled {order.filled} but the exchange reported no average price", order.client_order_id)
    notes = [order.fee_note] if order.fee_note else []
    if order.amount is not None and order.filled < order.amount:
        notes.append(f"partially filled: {order.filled} of {order.amount} ({order.status})")
    with localcontext(_EXACT):
        notional = order.filled * order.average
    return Fill(
        client_order_id=order.client_order_id,
        symbol=order.symbol,
        side=order.side,  # type: ignore[arg-type]
        quantity=order.filled,
        price=order.average,
        fee=order.fee,
        notional=notional,
        fill_ms=fill_ms,
        requested_quantity=order.amount,
        note="; ".join(notes),
    )


class _StateUnknown(Exception):
    """A look-up kept failing with transient errors: whether the order exists is unknown."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class CcxtBroker:
    """Market orders on a ccxt exchange, each placed at most once (see the module docstring).

    ``exchange`` is a ready ccxt instance holding the API keys (``from_settings`` builds one).
    ``live=False`` switches it to its testnet here, or refuses it (:class:`LiveTradingRefused`).
    A create that fails ambiguously is followed, each time, by a wait of
    ``max(backoff_s * 2**n, settle_s)`` (attempt ``n`` from 0, through the injected ``sleep``) and a
    look-up; it is resent at most ``max_retries`` times. Look-ups themselves retry transient errors
    ``max_retries`` times, waiting ``backoff_s * 2**n``.
    ``settle_s=None`` takes the exchange's request validity window (ccxt's ``recvWindow``
    option, in ms) or 0. ``fee_price(currency, quote)`` may price fees charged in a third
    currency (BNB) in the quote currency; without it they are recorded as 0 with a note.
    ``lookup`` forces how orders are found by client order id (``"fetch_order"`` or ``"scan"``).
    """

    def __init__(
        self,
        exchange: ccxt.Exchange,
        *,
        live: bool,
        max_retries: int = 3,
        backoff_s: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        settle_s: float | None = None,
        fee_price: Callable[[str, str], Decimal | None] | None = None,
        lookup: Lookup = "auto",
    ) -> None:
        if max_retries < 0 or backoff_s < 0:
            raise ValueError(f"max_retries and backoff_s must be >= 0, got {max_retries} and {backoff_s}")
        self.exchange = exchange
        self.live = bool(live)
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.sleep = sleep
        self.settle_s = _request_window_s(exchange) if settle_s is None else settle_s
        self.fee_price = fee_price
        name = getattr(exchange, "id", type(exchange).__name__)
        self.exchange_id = str(name)
        if not getattr(exchange, "apiKey", None) or not getattr(exchange, "secret", None):
            raise BrokerError(
                f"the {self.exchange_id} exchange has no API key or secret: set {API_KEY_VARIABLE} and {SECRET_VARIABLE}"
            )
        if not exchange.has.get("createOrder"):
            raise BrokerError(f"ccxt's {self.exchange_id} cannot create orders (has['createOrder'] is not set)")
        self.lookup = self._choose_lookup(lookup)
        if self.live:
            log.warning("LIVE trading on %s: orders reach the real-money account (%s=1)", self.exchange_id, LIVE_VARIABLE)
        else:
            self._enable_sandbox()
            log.info("ccxt broker on the %s testnet/sandbox (set %s=1 for real money)", self.exchange_id, LIVE_VARIABLE)

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_settings(cls, settings: "Settings", **options: Any) -> "CcxtBroker":
        """A broker for ``settings.exchange`` with the settings' keys, on its testnet unless ``settings.live``.

        ``options`` go to the constructor (``max_retries``, ``backoff_s``, ``sleep``, ``fee_price``...).
        """
        return cls.connect(
            settings.exchange, _secret(settings.exchange_api_key), _secret(settings.exchange_secret), live=settings.live,
            timeout_s=settings.exchange_timeout_seconds, **options,
        )

    @classmethod
    def connect(
        cls, exchange_id: str, api_key: str | None, secret: str | None, *, live: bool,
        timeout_s: float = DEFAULT_EXCHANGE_TIMEOUT_S, **options: Any,
    ) -> "CcxtBroker":
        """A broker for ccxt's ``exchange_id`` with these keys, on its testnet unless ``live``; ``timeout_s`` bounds each request."""
        check_exchange_id(exchange_id)
        missing = [name for name, value in ((API_KEY_VARIABLE, api_key), (SECRET_VARIABLE, secret)) if not value]
        if missing:
            raise BrokerError(
                f"the ccxt broker needs exchange API credentials: set {' and '.join(missing)} "
                f"(a {exchange_id} testnet key unless {LIVE_VARIABLE}=1)"
            )
        exchange = getattr(ccxt, exchange_id)(
            {
                "apiKey": api_key,
                "secret": secret,
                "enableRateLimit": True,
                "options": {"defaultType": "spot"},
                "timeout": int(timeout_s * 1000),  # ccxt: ms per HTTP request
            }
        )
        return cls(exchange, live=live, **options)

    def _enable_sandbox(self) -> None:
        exchange = self.exchange
        if not _sandbox_enabled(exchange):
            try:
                exchange.set_sandbox_mode(True)
            except Exception as error:  # ccxt raises NotSupported, or worse (TypeError) without a test URL
                raise LiveTradingRefused(self._refusal(f"ccxt cannot switch it to a sandbox ({type(error).__name__})")) from None
        api = getattr(exchange, "urls", {}).get("api")
        if not _sandbox_enabled(exchange) or not api:
            raise LiveTradingRefused(self._refusal("ccxt has no sandbox/testnet for it"))

    def _refusal(self, why: str) -> str:
        return (
            f"{self.exchange_id} would trade real money: {why}. Real-money orders need {LIVE_VARIABLE}=1 "
            f"(and TRADEPIPE_BROKER=ccxt); without it use an exchange with a testnet or TRADEPIPE_BROKER=paper"
        )

    def _choose_lookup(self, lookup: Lookup) -> Literal["fetch_order", "scan"]:
        if lookup not in ("auto", "fetch_order", "scan"):
            raise ValueError(f"lookup must be 'auto', 'fetch_order' or 'scan', got {lookup!r}")
        has = self.exchange.has
        by_id = self.exchange_id in _FETCH_ORDER_BY_CLIENT_ID or bool(has.get("fetchOrderWithClientOrderId"))
        can_scan = bool(has.get("fetchOrders")) or bool(has.get("fetchOpenOrders") and has.get("fetchClosedOrders"))
        if lookup == "auto":
            lookup = "fetch_order" if by_id and has.get("fetchOrder") else "scan"
        if lookup == "fetch_order" and not has.get("fetchOrder"):
            raise BrokerError(f"ccxt's {self.exchange_id} has no fetchOrder to look orders up by client order id")
        if lookup == "scan" and not can_scan:
            raise BrokerError(
                f"ccxt's {self.exchange_id} cannot look orders up by client order id (no fetchOrders, "
                "fetchOpenOrders/fetchClosedOrders): a retried order could be placed twice, so it is not supported"
            )
        return lookup

    def __repr__(self) -> str:
        mode = "LIVE" if self.live else "sandbox"
        return f"CcxtBroker(exchange={self.exchange_id!r}, {mode}, lookup={self.lookup!r}, max_retries={self.max_retries})"

    # ------------------------------------------------------------------ orders

    def submit(self, intent: OrderIntent) -> ExchangeOrder:
        """Place ``intent`` as a market order, or return the order already placed under its client order id."""
        coid = intent.client_order_id
        if intent.side not in ("buy", "sell") or not intent.quantity > 0:
            raise BrokerError(f"cannot send a {intent.side!r} order for {intent.quantity} {intent.symbol}", coid)
        existing = self._lookup_or_raise(coid, intent.symbol, "before sending it; nothing was sent")
        if existing is not None:
            log.info("order %s already on %s (%s); not sent again", coid, self.exchange_id, existing.status)
            return self._check_same(existing, intent)
        last_error: Exception | None = None
        for attempt in range(self.max_retries + 1):
            try:
                log.info("sending %s %s %s to %s as %s", intent.side, intent.quantity, intent.symbol, self.exchange_id, coid)
                raw = self.exchange.create_order(
                    intent.symbol, "market", intent.side, float(intent.quantity), params={"clientOrderId": coid}
                )
            except ccxt.OperationFailed as error:  # NetworkError, timeouts, "execution status unknown"
                last_error = error
                log.warning("order %s: %s on create (attempt %d): %s", coid, type(error).__name__, attempt + 1, self._redact(str(error)))
            except ccxt.BaseError as error:
                return self._after_refusal(intent, error)
            else:
                return self._complete(raw, coid, intent.symbol, intent.side)
            # The order may or may not have reached the exchange: wait until a request still in
            # flight would be refused, then look before sending again.
            self.sleep(self._wait(attempt))
            found = self._lookup_or_raise(coid, intent.symbol, f"after {type(last_error).__name__}: {last_error}; not resent")
            if found is not None:
                log.info("order %s reached %s despite %s; not resent", coid, self.exchange_id, type(last_error).__name__)
                return self._check_same(found, intent)
        raise BrokerError(
            self._redact(
                f"{self.exchange_id} create_order failed {self.max_retries + 1} times and the order was not found "
                f"after the last attempt; last error: {type(last_error).__name__}: {last_error}"
            ),
            coid,
        )

    def reconcile(self, client_order_id: str, symbol: str) -> ExchangeOrder | None:
        """The exchange's current view of the order placed under ``client_order_id``, or None if there is none.

        For restart recovery: an order the ledger recorded as sent but without a final state is
        looked up here. Raises :class:`BrokerError` if the exchange cannot be asked.
        """
        return self._lookup_or_raise(client_order_id, symbol, "during reconcile")

    # ------------------------------------------------------------------ internals

    def _after_refusal(self, intent: OrderIntent, error: ccxt.BaseError) -> ExchangeOrder:
        coid, symbol = intent.client_order_id, intent.symbol
        text = self._redact(f"{type(error).__name__}: {error}")
        if isinstance(error, ccxt.DuplicateOrderId) or "duplicate" in str(error).lower():
            found = self._lookup_or_raise(coid, symbol, f"after the exchange called it a duplicate ({text})")
            if found is None:
                raise BrokerError(f"{self.exchange_id} calls the client order id a duplicate but no order has it: {text}", coid) from error
            log.info("order %s already exists on %s (duplicate client order id); fetched", coid, self.exchange_id)
            return self._check_same(found, intent)
        what = f"{intent.side} {intent.quantity} {symbol}"
        if isinstance(error, ccxt.InsufficientFunds):
            reason = f"insufficient funds on {self.exchange_id} for {what}: {text}"
        elif isinstance(error, ccxt.BadSymbol):
            reason = f"{self.exchange_id} does not list {symbol}: {text}"
        elif isinstance(error, (ccxt.AuthenticationError, ccxt.AccountSuspended)):
            testnet = "" if self.live else " (a testnet key, since TRADEPIPE_LIVE is not set)"
            reason = f"{self.exchange_id} refused the credentials: check {API_KEY_VARIABLE} and {SECRET_VARIABLE}{testnet}: {text}"
        elif isinstance(error, (ccxt.InvalidOrder, ccxt.BadRequest)):
            reason = f"{self.exchange_id} refused {what} as invalid: {text}"
        else:  # an exchange error we cannot classify: make sure the order did not go through anyway
            found = self._lookup_or_raise(coid, symbol, f"after {text}")
            if found is not None:
                return self._check_same(found, intent)
            reason = f"{self.exchange_id} refused {what}: {text}"
        raise BrokerError(reason, coid) from error

    def _lookup_or_raise(self, coid: str, symbol: str, when: str) -> ExchangeOrder | None:
        try:
            return self._lookup(coid, symbol)
        except _StateUnknown as unknown:
            error = unknown.error
            raise OrderStateUnknown(
                self._redact(
                    f"could not look the order up on {self.exchange_id} {when} "
                    f"({self.max_retries + 1} tries; last error {type(error).__name__}: {error}); its state is unknown"
                ),
                coid,
            ) from error
        except ccxt.BadSymbol as error:
            raise BrokerError(self._redact(f"{self.exchange_id} does not list {symbol}: {type(error).__name__}: {error}"), coid) from error
        except ccxt.BaseError as error:
            raise BrokerError(self._redact(f"{self.exchange_id} refused the order look-up {when}: {type(error).__name__}: {error}"), coid) from error

    def _lookup(self, coid: str, symbol: str) -> ExchangeOrder | None:
        raw = self._retrying(lambda: self._find_raw(coid, symbol))
        return None if raw is None else self._complete(raw, coid, symbol, None)

    def _find_raw(self, coid: str, symbol: str) -> dict[str, Any] | None:
        exchange = self.exchange
        if self.lookup == "fetch_order":
            try:
                raw = exchange.fetch_order(None, symbol, params={"clientOrderId": coid})
            except ccxt.OrderNotFound:
                return None
            return raw if raw and raw.get("clientOrderId") in (coid, None) else None
        if exchange.has.get("fetchOrders"):
            orders = exchange.fetch_orders(symbol)
        else:
            orders = list(exchange.fetch_open_orders(symbol)) + list(exchange.fetch_closed_orders(symbol))
        matches = [order for order in orders if order.get("clientOrderId") == coid]
        return matches[-1] if matches else None

    def _retrying(self, call: Callable[[], _T]) -> _T:
        """``call()``, retried on transient errors; raises :class:`_StateUnknown` when they persist."""
        last: Exception | None = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                self.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                return call()
            except ccxt.OperationFailed as error:
                last = error
        raise _StateUnknown(last)  # type: ignore[arg-type]

    def _wait(self, retry: int) -> float:
        return max(self.backoff_s * 2**retry, self.settle_s)

    def _complete(self, raw: Mapping[str, Any], coid: str, symbol: str, side: str | None) -> ExchangeOrder:
        """An :class:`ExchangeOrder` from ccxt's order, fetching its trades if the fee is missing."""
        order_id = raw.get("id")
        if (raw.get("status") is None or raw.get("filled") is None) and order_id and self.exchange.has.get("fetchOrder"):
            try:  # some exchanges answer a create with the id alone
                raw = self._retrying(lambda: self.exchange.fetch_order(order_id, symbol))
            except (_StateUnknown, ccxt.BaseError) as error:
                log.warning("order %s: could not fetch its state after create: %s", coid, self._redact(str(error)))
        trades = list(raw.get("trades") or [])
        fees = _fees_of(raw)
        filled = _dec(raw.get("filled")) or _ZERO
        fee_source = ""
        if filled > 0 and not fees and order_id:
            trades, fee_source = self._order_trades(order_id, symbol, coid), " (from the order's trades)"
            fees = [fee for trade in trades for fee in _fees_of(trade)]
        return self._exchange_order(raw, trades, fees, coid, symbol, side, fee_source)

    def _order_trades(self, order_id: str, symbol: str, coid: str) -> list[dict[str, Any]]:
        has = self.exchange.has
        try:
            if has.get("fetchOrderTrades"):
                return list(self._retrying(lambda: self.exchange.fetch_order_trades(order_id, symbol)))
            if has.get("fetchMyTrades"):
                trades = self._retrying(lambda: self.exchange.fetch_my_trades(symbol))
                return [trade for trade in trades if str(trade.get("order")) == str(order_id)]
        except (_StateUnknown, ccxt.BaseError) as error:
            log.warning("order %s: could not fetch its trades for the fee: %s", coid, self._redact(str(error)))
        return []

    def _exchange_order(
        self,
        raw: Mapping[str, Any],
        trades: Sequence[Mapping[str, Any]],
        fees: list[tuple[Decimal, str | None]],
        coid: str,
        symbol: str,
        side: str | None,
        fee_source: str,
    ) -> ExchangeOrder:
        symbol = raw.get("symbol") or symbol
        filled = _dec(raw.get("filled")) or _ZERO
        cost = _dec(raw.get("cost"))
        average = _dec(raw.get("average"))
        if average is None and filled > 0 and cost:
            average = cost / filled  # exact enough for a price; notional is then computed from it exactly
        base, quote = self._currencies(symbol)
        side = raw.get("side") or side or ""
        fee, base_fee, notes = self._fee_in_quote(fees, base, quote, average, filled, side)
        if filled > 0 and not fees:
            notes.append(f"{self.exchange_id} reported no fee for the order; recorded as 0")
        elif fee_source and notes:
            notes[-1] += fee_source
        return ExchangeOrder(
            client_order_id=raw.get("clientOrderId") or coid,
            exchange_order_id=None if raw.get("id") is None else str(raw.get("id")),
            symbol=symbol,
            side=side,
            status=raw.get("status") or "open",
            amount=_dec(raw.get("amount")),
            filled=filled,
            average=average,
            cost=cost,
            fee=fee,
            trades=[_trade(t) for t in trades],
            fee_note="; ".join(notes),
            base_fee=base_fee,
            timestamp=raw.get("lastTradeTimestamp") or raw.get("timestamp"),
            info=raw.get("info") or {},
        )

    def _fee_in_quote(
        self,
        fees: list[tuple[Decimal, str | None]],
        base: str,
        quote: str,
        average: Decimal | None,
        filled: Decimal,
        side: str,
    ) -> tuple[Decimal, Decimal, list[str]]:
        total, base_fee, notes = _ZERO, _ZERO, []
        with localcontext(_EXACT):
            for cost, currency in fees:
                if cost == 0:
                    continue
                if currency == quote:
                    total += cost
                elif currency is None:
                    total += cost
                    notes.append(f"fee {cost} reported without a currency; taken as {quote}")
                elif currency == base:
                    base_fee += cost
                    if average is None:
                        notes.append(f"fee {cost} {base} charged in the base asset not converted (no average price); recorded as 0")
                        continue
                    total += cost * average
                    balance = f"received {filled - cost}" if side == "buy" else f"gave {filled + cost}"
                    notes.append(
                        f"fee {cost} {base} charged in the base asset, recorded as {cost * average} {quote} at the average "
                        f"price {average}; the account {balance} {base}"
                    )
                else:
                    price = self._third_currency_price(currency, quote)
                    if price is None:
                        notes.append(f"fee {cost} {currency} not converted to {quote} (no {currency}/{quote} price); recorded as 0")
                        continue
                    total += cost * price
                    notes.append(f"fee {cost} {currency} recorded as {cost * price} {quote} at {price} {quote}/{currency}")
        if total < 0:
            notes.append(f"fee {total} {quote} is a rebate; recorded as 0")
            total = _ZERO
        return total, base_fee, notes

    def _third_currency_price(self, currency: str, quote: str) -> Decimal | None:
        if self.fee_price is None:
            return None
        try:
            price = self.fee_price(currency, quote)
        except Exception as error:  # a price source failing must not lose the fill
            log.warning("fee price %s/%s unavailable: %s", currency, quote, error)
            return None
        price = _dec(price)
        return price if price is not None and price > 0 else None

    def _currencies(self, symbol: str) -> tuple[str, str]:
        market = (getattr(self.exchange, "markets", None) or {}).get(symbol) or {}
        base = market.get("base") or symbol.split("/")[0]
        quote = market.get("quote") or (symbol.split("/")[1].split(":")[0] if "/" in symbol else "")
        return base, quote

    def _check_same(self, order: ExchangeOrder, intent: OrderIntent) -> ExchangeOrder:
        if order.symbol != intent.symbol or (order.side and order.side != intent.side):
            raise BrokerError(
                f"the client order id is already used on {self.exchange_id} by a different order "
                f"({order.side} {order.symbol}, exchange id {order.exchange_order_id}); not sent",
                intent.client_order_id,
            )
        return order

    def _redact(self, text: str) -> str:
        for value in (getattr(self.exchange, "secret", None), getattr(self.exchange, "apiKey", None)):
            if isinstance(value, str) and len(value) >= 4:
                text = text.replace(value, "***")
        return text


# ---------------------------------------------------------------------- helpers


def check_exchange_id(exchange_id: str) -> None:
    if exchange_id not in ccxt.exchanges:
        close = difflib.get_close_matches(exchange_id, ccxt.exchanges, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else " (see ccxt.exchanges)"
        raise BrokerError(f"TRADEPIPE_EXCHANGE: ccxt {ccxt.__version__} has no exchange {exchange_id!r}{hint}")


def _secret(value: Any) -> str | None:
    if value is None:
        return None
    text = value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)
    return text.strip() or None


def _sandbox_enabled(exchange: ccxt.Exchange) -> bool:
    options = getattr(exchange, "options", None) or {}
    return bool(getattr(exchange, "isSandboxModeEnabled", False) or options.get("sandboxMode"))


def _request_window_s(exchange: ccxt.Exchange) -> float:
    window = (getattr(exchange, "options", None) or {}).get("recvWindow")
    try:
        return max(float(window) / 1000.0, 0.0) if window is not None else 0.0
    except (TypeError, ValueError):
        return 0.0


def _dec(value: Any) -> Decimal | None:
    """``Decimal(str(x))`` for a ccxt number (float, int or numeric string); None for None or junk."""
    if value is None or isinstance(value, bool):
        return None
    try:
        result = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return result if result.is_finite() else None


def _fees_of(item: Mapping[str, Any]) -> list[tuple[Decimal, str | None]]:
    """(cost, currency) pairs from a ccxt order or trade: its ``fees`` list, else its ``fee``."""
    entries = [fee for fee in (item.get("fees") or []) if fee]
    if not entries and item.get("fee"):
        entries = [item["fee"]]
    pairs = []
    for fee in entries:
        cost = _dec(fee.get("cost"))
        if cost is not None:
            pairs.append((cost, fee.get("currency")))
    return pairs


def _trade(trade: Mapping[str, Any]) -> ExchangeTrade:
    fee = trade.get("fee") or {}
    return ExchangeTrade(
        id=None if trade.get("id") is None else str(trade.get("id")),
        price=_dec(trade.get("price")),
        amount=_dec(trade.get("amount")),
        cost=_dec(trade.get("cost")),
        fee_cost=_dec(fee.get("cost")),
        fee_currency=fee.get("currency"),
        timestamp=trade.get("timestamp"),
    )
