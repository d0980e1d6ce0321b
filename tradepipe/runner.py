"""Runs one trading cycle end to end: market and ledger in, core cycle, ledger out, in one transaction.

Shared by the Dagster ``portfolio_state`` asset (live loop) and ``tradepipe backtest`` (replay into a
separate book), so both trade through exactly the same code.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from tradepipe.adapters.db.engine import session_factory
from tradepipe.adapters.db.ledger import (
    BookState,
    ensure_book,
    find_cycle,
    load_book_state,
    ms_to_datetime,
    order_intent,
    record_bars,
    record_cycle,
    today_utc,
)
from tradepipe.adapters.db.models import Order, TradingCycle, utcnow
from tradepipe.adapters.market import MarketData, MarketDataError, build_market, market_rules_from_ccxt
from tradepipe.adapters.news import NewsFeedError, load_headlines
from tradepipe.adapters.weights_store import LoadedWeights, WeightStore
from tradepipe.core.agents import get_agents, max_history_needed
from tradepipe.core.cycle import BrokerOutcome, CycleInputs, CycleResult, run_cycle
from tradepipe.core.risk import RiskLimits
from tradepipe.core.timeframes import timeframe_ms
from tradepipe.core.types import AgentContext, BarHistory, MarketRules
from tradepipe.settings import Settings
from tradepipe.status import portfolio_status

log = logging.getLogger(__name__)

# Paper trading on synthetic or replayed prices uses Binance-spot-like rules (the ccxt source reads
# the exchange's own): amount step 1e-5, price tick 0.01, minimum order cost 10 in the quote currency.
PAPER_RULES = {"amount_step": Decimal("0.00001"), "price_tick": Decimal("0.01"), "min_cost": Decimal("10")}


class OutOfOrderBarError(RuntimeError):
    """A bar older than the book's newest cycle. Trading it now would pair that bar's cash with today's
    positions and pending orders (a fake loss, a wrong halt); a missed bar stays missed in a live book."""


@dataclass(frozen=True)
class CycleOutcome:
    """What a trader reads at a glance after a cycle; also the asset's metadata."""

    book: str
    bar_open_ms: int
    status: str  # "traded" | "already_done"
    equity: Decimal
    cash: Decimal
    day_pnl: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    positions: list[dict[str, Any]]
    last_signals: list[dict[str, Any]]
    orders_placed: list[dict[str, Any]] = field(default_factory=list)
    orders_rejected: list[dict[str, Any]] = field(default_factory=list)
    fills: list[dict[str, Any]] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    weights_source: str = ""
    halted: bool = False
    seconds: float = 0.0


class TradingRunner:
    def __init__(
        self,
        settings: Settings,
        *,
        market: MarketData | None = None,
        book: str | None = None,
        sessions: sessionmaker[Session] | None = None,
    ) -> None:
        self.settings = settings
        self.book = book or settings.book
        self.timeframe = settings.resolved_timeframe
        self.market = market or build_market(
            settings.market_source,
            seed=settings.seed,
            symbols=settings.symbols,
            replay_dir=settings.replay_dir,
            exchange_id=settings.exchange,
        )
        self.sessions = sessions or session_factory(settings.resolved_database_url)
        self.agents = get_agents(settings.agents)
        self.history_bars = max(settings.history_bars, max_history_needed(self.agents) + 5)
        self.limits = RiskLimits(
            max_position_fraction=settings.max_position_fraction,
            max_gross_exposure=settings.max_gross_exposure,
            max_turnover_fraction=settings.max_turnover_fraction,
            stop_loss_fraction=settings.stop_loss_fraction,
            daily_loss_limit_fraction=settings.daily_loss_limit_fraction,
            allow_short=settings.shorts_allowed,
        )
        self.weight_store = WeightStore(
            self.sessions,
            settings.redis_url,
            self.book,
            frozenset(a.name for a in self.agents),
            settings.default_weights,
            settings.home / "last_weights.json" if self.book == settings.book else None,
        )
        self._rules: dict[str, MarketRules] = {}
        self.broker = None
        if settings.broker == "ccxt":
            from tradepipe.adapters.broker import CcxtBroker

            self.broker = CcxtBroker.from_settings(settings)

    def rules(self) -> dict[str, MarketRules]:
        if not self._rules:
            self._rules = self._market_rules()
        return self._rules

    def _market_rules(self) -> dict[str, MarketRules]:
        """The exchange's own limits when orders go to an exchange; Binance-like defaults on paper."""
        if self.broker is not None:
            markets = self.broker.exchange.load_markets()
            return {
                symbol: market_rules_from_ccxt(markets[symbol], self.broker.exchange.precisionMode)
                for symbol in self.settings.symbols
            }
        return {symbol: MarketRules(symbol=symbol, **PAPER_RULES) for symbol in self.settings.symbols}

    def _histories(self, bar_open_ms: int) -> tuple[dict[str, BarHistory], dict[str, str]]:
        histories: dict[str, BarHistory] = {}
        unavailable: dict[str, str] = {}
        end_ms = bar_open_ms + timeframe_ms(self.timeframe)
        for symbol in self.settings.symbols:
            try:
                histories[symbol] = self.market.closed_bars(symbol, self.timeframe, end_ms, self.history_bars)
            except MarketDataError as exc:
                unavailable[symbol] = f"market data: {exc.reason}"
        return histories, unavailable

    def _headlines(self, now_ms: int) -> tuple[AgentContext, dict[str, str]]:
        try:
            headlines = load_headlines(self.settings.news_feed, now_ms)
        except NewsFeedError as exc:
            return AgentContext(now_ms=now_ms, headlines=None), {"sentiment": f"headline feed failed: {exc}"}
        return AgentContext(now_ms=now_ms, headlines=headlines), {}

    def load_weights(self) -> LoadedWeights:
        return self.weight_store.load()

    def run_cycle(self, bar_open_ms: int, run_id: str | None = None) -> CycleOutcome:
        started = time.perf_counter()
        weights = self.load_weights()
        histories, unavailable = self._histories(bar_open_ms)
        decision_time_ms = bar_open_ms + timeframe_ms(self.timeframe)
        context, agent_notes = self._headlines(decision_time_ms)
        rules = self.rules()
        broker_outcomes = self._exchange_outcomes(bar_open_ms) if self.broker is not None else []
        with self.sessions() as session:
            try:
                outcome = self._run_in_transaction(
                    session, bar_open_ms, run_id, weights, histories, unavailable, context, agent_notes, rules,
                    broker_outcomes,
                )
            except IntegrityError:
                # Another process recorded this bar first: nothing of ours was written. Any other
                # integrity error is a real failure and must not pass for an already-traded bar.
                session.rollback()
                if find_cycle(session, self.book, bar_open_ms) is None:
                    raise
                outcome = self.describe_cycle(session, bar_open_ms)
        if self.broker is not None and outcome.status == "traded":
            self._send_pending_orders(bar_open_ms)
        return _with_seconds(outcome, time.perf_counter() - started)

    # --- ccxt broker: orders are recorded first, then sent; fills are booked by the next cycle ----

    def _open_exchange_orders(self, session: Session) -> list[Order]:
        return list(
            session.scalars(
                select(Order)
                .where(Order.book == self.book, Order.broker == "ccxt", Order.status.in_(("pending", "submitted")))
                .order_by(Order.id)
            )
        )

    def _send_pending_orders(self, bar_open_ms: int) -> None:
        """Send this cycle's recorded orders. The client order id makes a resend after a crash safe:
        the broker looks it up before creating, so an order is never placed twice.

        An order still pending after its bar passed is not sent any more, but a crash may have come
        after the exchange took it: it is looked up, and cancelled only if the exchange has no order
        with its id. An order whose state could not be learnt (look-ups failing) stays pending."""
        from tradepipe.adapters.broker import BrokerError, OrderStateUnknown

        assert self.broker is not None
        stale_before = ms_to_datetime(bar_open_ms - timeframe_ms(self.timeframe))
        with self.sessions() as session:
            for order in self._open_exchange_orders(session):
                if order.status != "pending":
                    continue
                if order.bar_ts < stale_before:
                    try:
                        found = self.broker.reconcile(order.client_order_id, order.symbol)
                    except BrokerError as exc:
                        log.warning("stale order %s left pending: %s", order.client_order_id, exc.reason)
                        continue
                    if found is None:
                        order.status, order.reason = "cancelled", f"{order.reason}; cancelled: never sent before its bar passed"
                    else:
                        order.status, order.exchange_order_id = "submitted", found.exchange_order_id
                else:
                    try:
                        sent = self.broker.submit(order_intent(order))
                        order.status, order.exchange_order_id = "submitted", sent.exchange_order_id
                    except OrderStateUnknown as exc:
                        log.warning("order %s left pending: %s", order.client_order_id, exc.reason)
                    except BrokerError as exc:
                        order.status, order.reject_kind = "rejected", "exchange"
                        order.reason = f"{order.reason}; exchange refused: {exc.reason}"
                session.commit()

    def _exchange_outcomes(self, bar_open_ms: int) -> list[BrokerOutcome]:
        """What the exchange did with the orders sent since the last cycle (final ones only)."""
        from tradepipe.adapters.broker import BrokerError, to_fill

        assert self.broker is not None
        self._send_pending_orders(bar_open_ms)
        outcomes: list[BrokerOutcome] = []
        with self.sessions() as session:
            for order in self._open_exchange_orders(session):
                try:
                    report = self.broker.reconcile(order.client_order_id, order.symbol)
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

    def _run_in_transaction(
        self,
        session: Session,
        bar_open_ms: int,
        run_id: str | None,
        weights: LoadedWeights,
        histories: dict[str, BarHistory],
        unavailable: dict[str, str],
        context: AgentContext,
        agent_notes: dict[str, str],
        rules: dict[str, MarketRules],
        broker_outcomes: list[BrokerOutcome],
    ) -> CycleOutcome:
        settings = self.settings
        book = ensure_book(session, self.book, settings.starting_cash, settings.quote_currency)
        if find_cycle(session, self.book, bar_open_ms) is not None:
            session.rollback()
            return self.describe_cycle(session, bar_open_ms)
        newest = session.scalars(
            select(TradingCycle.bar_ts).where(TradingCycle.book == self.book).order_by(TradingCycle.bar_ts.desc()).limit(1)
        ).first()
        if newest is not None and newest > ms_to_datetime(bar_open_ms):
            session.rollback()
            raise OutOfOrderBarError(
                f"book {self.book!r} already traded the later bar {newest.isoformat()}; "
                f"bar {ms_to_datetime(bar_open_ms).isoformat()} can no longer be traded (cycles run in bar order)"
            )
        cycle = TradingCycle(
            book=self.book,
            bar_ts=ms_to_datetime(bar_open_ms),
            timeframe=self.timeframe,
            market_source=self.market.name,
            run_id=run_id,
            status="running",
            weights=weights.weights,
            weights_source=weights.source,
        )
        session.add(cycle)
        session.flush()
        state: BookState = load_book_state(session, book, bar_open_ms)
        result = run_cycle(
            CycleInputs(
                book=self.book,
                bar_open_ms=bar_open_ms,
                timeframe_ms=timeframe_ms(self.timeframe),
                histories=histories,
                unavailable=unavailable,
                agents=self.agents,
                context=context,
                weights=weights.weights,
                portfolio=state.portfolio,
                pending=state.pending if self.broker is None else [],
                broker_outcomes=broker_outcomes,
                rules=rules,
                limits=self.limits,
                fee_bps=settings.fee_bps,
                slippage_bps=settings.slippage_bps,
                day_start_equity=state.day_start_equity,
                halted=state.halted,
                last_marks=state.last_marks,
                agent_notes=agent_notes,
                rebalance_band=settings.rebalance_band,
                entry_hysteresis=settings.entry_hysteresis,
                min_hold_bars=settings.min_hold_bars,
            )
        )
        # Only the bars the decision used: a skipped symbol's bar may be NaN (SQLite stores NaN as NULL
        # and refuses it) or otherwise unfit for the return streams.
        used = {symbol: history for symbol, history in histories.items() if symbol not in result.skipped}
        record_bars(session, self.market.name, used, bar_open_ms)
        closes = {s: h.last_close for s, h in histories.items() if len(h) and h.last_timestamp == bar_open_ms}
        record_cycle(
            session,
            cycle=cycle,
            result=result,
            close_by_symbol=closes,
            broker=settings.broker,
            day_start_equity=state.day_start_equity,
            run_id=run_id,
        )
        if result.plan.halted and not state.halted:
            book.halted_day = today_utc(bar_open_ms)
            book.halt_reason = result.plan.halt_reason
        cycle.skipped = {**result.skipped, **{f"weights:{i}": n for i, n in enumerate(weights.notes)}}
        cycle.status = "succeeded"
        cycle.finished_at = utcnow()
        session.commit()
        return _outcome(self.book, bar_open_ms, result, state.day_start_equity, weights, "traded")

    def describe_cycle(self, session: Session, bar_open_ms: int) -> CycleOutcome:
        """The outcome of a bar that was already traded (a retried or duplicate run): read, not redone."""
        status = portfolio_status(session, self.book)
        cycle = find_cycle(session, self.book, bar_open_ms)
        portfolio = status["portfolio"] or {}
        return CycleOutcome(
            book=self.book,
            bar_open_ms=bar_open_ms,
            status="already_done",
            equity=Decimal(portfolio.get("equity") or 0),
            cash=Decimal(portfolio.get("cash") or 0),
            day_pnl=Decimal(portfolio.get("day_pnl") or 0),
            realized_pnl=Decimal(portfolio.get("realized_pnl") or 0),
            unrealized_pnl=Decimal(portfolio.get("unrealized_pnl") or 0),
            positions=status["positions"],
            last_signals=[],
            weights=dict(cycle.weights) if cycle else {},
            weights_source=(cycle.weights_source or "") if cycle else "",
        )


def _with_seconds(outcome: CycleOutcome, seconds: float) -> CycleOutcome:
    return replace(outcome, seconds=seconds)


def _outcome(
    book: str, bar_open_ms: int, result: CycleResult, day_start: Decimal, weights: LoadedWeights, status: str
) -> CycleOutcome:
    valuation = result.valuation
    return CycleOutcome(
        book=book,
        bar_open_ms=bar_open_ms,
        status=status,
        equity=valuation.equity,
        cash=valuation.cash,
        day_pnl=valuation.equity - day_start,
        realized_pnl=result.portfolio.realized_pnl,
        unrealized_pnl=valuation.unrealized_pnl,
        positions=[
            {
                "symbol": symbol,
                "quantity": float(position.quantity),
                "average_price": float(position.average_price),
                "mark": float(result.marks[symbol]),
                "value": float(position.quantity * result.marks[symbol]),
            }
            for symbol, position in sorted(result.portfolio.positions.items())
        ],
        last_signals=[
            {
                "agent": s.agent,
                "symbol": s.symbol,
                "signal": round(s.value, 4),
                "confidence": round(s.confidence, 3),
                "reason": s.reason,
            }
            for s in result.signals
        ],
        orders_placed=[
            {"symbol": o.symbol, "side": o.side, "quantity": float(o.quantity), "client_order_id": o.client_order_id, "reason": o.reason}
            for o in result.plan.orders
        ],
        orders_rejected=[
            {"symbol": r.symbol, "side": r.side, "requested": float(r.requested_quantity), "kind": r.kind, "reason": r.reason}
            for r in result.plan.rejections
        ],
        fills=[
            {
                "symbol": e.fill.symbol,
                "side": e.fill.side,
                "quantity": float(e.fill.quantity),
                "price": float(e.fill.price),
                "fee": float(e.fill.fee),
                "realized_pnl": float(e.realization.realized_pnl) if e.realization else 0.0,
            }
            for e in result.fills
        ],
        skipped=dict(result.skipped),
        weights=dict(weights.weights),
        weights_source=weights.source,
        halted=result.plan.halted,
    )
