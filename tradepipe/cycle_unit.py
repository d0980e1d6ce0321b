"""The trading cycle's unit of work: one bar of one book, in one database transaction.

``CycleUnitOfWork.execute(request)`` opens the transaction, refuses a bar already traded (or older
than the book's newest), loads the book, runs the pure core cycle (``tradepipe.core.cycle.run_cycle``)
and records everything it produced, table by table, then commits once. A crash anywhere before the
commit leaves nothing behind; the unique (book, bar) key makes a second writer of the same bar fail
instead of double-counting, and that case reads back as ``already_done``.

Everything outside the database (bars, headlines, weights, the broker's fills) is gathered by the
runner before the transaction and handed in as a ``CycleRequest``, so no network call holds it open.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Mapping, Sequence

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from tradepipe.adapters.db.ledger import (
    BookState,
    ensure_book,
    find_cycle,
    load_book_state,
    ms_to_datetime,
    newest_cycle_bar,
    record_agent_work,
    record_bars,
    record_fills,
    record_halt,
    record_orders,
    record_positions,
    record_signals,
    record_snapshot,
    start_cycle,
)
from tradepipe.adapters.db.models import utcnow
from tradepipe.adapters.weights_store import LoadedWeights
from tradepipe.brokers import FillReport
from tradepipe.core.agents import Agent
from tradepipe.core.cycle import CycleInputs, CycleResult, run_cycle
from tradepipe.core.risk import RiskLimits
from tradepipe.core.timeframes import timeframe_ms
from tradepipe.core.types import AgentContext, BarHistory, MarketRules
from tradepipe.settings import Settings
from tradepipe.status import portfolio_status


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


@dataclass(frozen=True)
class CycleRequest:
    """Everything from outside the database that one bar's decision uses, gathered before the transaction."""

    bar_open_ms: int
    run_id: str | None
    weights: LoadedWeights
    histories: Mapping[str, BarHistory]
    unavailable: Mapping[str, str]
    context: AgentContext
    agent_notes: Mapping[str, str]
    rules: Mapping[str, MarketRules]
    fills: FillReport


class CycleUnitOfWork:
    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        *,
        book: str,
        agents: Sequence[Agent],
        limits: RiskLimits,
        market_name: str,
        broker_name: str,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.book = book
        self.timeframe = settings.resolved_timeframe
        self.agents = agents
        self.limits = limits
        self.market_name = market_name
        self.broker_name = broker_name

    def execute(self, request: CycleRequest) -> CycleOutcome:
        """Trade ``request.bar_open_ms`` once: ``traded``, or ``already_done`` if the bar is in the ledger."""
        with self.sessions() as session:
            try:
                return self._trade(session, request)
            except IntegrityError:
                # Another process recorded this bar first: nothing of ours was written. Any other
                # integrity error is a real failure and must not pass for an already-traded bar.
                session.rollback()
                if find_cycle(session, self.book, request.bar_open_ms) is None:
                    raise
                return self.describe(session, request.bar_open_ms)

    def _trade(self, session: Session, request: CycleRequest) -> CycleOutcome:
        settings = self.settings
        bar_open_ms = request.bar_open_ms
        book = ensure_book(session, self.book, settings.starting_cash, settings.quote_currency)
        if find_cycle(session, self.book, bar_open_ms) is not None:
            session.rollback()
            return self.describe(session, bar_open_ms)
        newest = newest_cycle_bar(session, self.book)
        if newest is not None and newest > ms_to_datetime(bar_open_ms):
            session.rollback()
            raise OutOfOrderBarError(
                f"book {self.book!r} already traded the later bar {newest.isoformat()}; "
                f"bar {ms_to_datetime(bar_open_ms).isoformat()} can no longer be traded (cycles run in bar order)"
            )
        cycle = start_cycle(
            session,
            book=self.book,
            bar_ts=ms_to_datetime(bar_open_ms),
            timeframe=self.timeframe,
            market_source=self.market_name,
            run_id=request.run_id,
            weights=request.weights.weights,
            weights_source=request.weights.source,
        )
        state: BookState = load_book_state(session, book, bar_open_ms)
        result = run_cycle(
            CycleInputs(
                book=self.book,
                bar_open_ms=bar_open_ms,
                timeframe_ms=timeframe_ms(self.timeframe),
                histories=request.histories,
                unavailable=request.unavailable,
                agents=self.agents,
                context=request.context,
                weights=request.weights.weights,
                portfolio=state.portfolio,
                pending=state.pending if request.fills.simulate_pending else [],
                broker_outcomes=request.fills.outcomes,
                rules=request.rules,
                limits=self.limits,
                fee_bps=settings.fee_bps,
                slippage_bps=settings.slippage_bps,
                day_start_equity=state.day_start_equity,
                halted=state.halted,
                last_marks=state.last_marks,
                agent_notes=request.agent_notes,
                rebalance_band=settings.rebalance_band,
                entry_hysteresis=settings.entry_hysteresis,
                min_hold_bars=settings.min_hold_bars,
            )
        )
        # Only the bars the decision used: a skipped symbol's bar may be NaN (SQLite stores NaN as NULL
        # and refuses it) or otherwise unfit for the return streams.
        used = {symbol: history for symbol, history in request.histories.items() if symbol not in result.skipped}
        record_bars(session, self.market_name, used, bar_open_ms)
        closes = {s: h.last_close for s, h in request.histories.items() if len(h) and h.last_timestamp == bar_open_ms}
        record_fills(session, self.book, result.fills, result.cancelled, self.broker_name)
        record_signals(session, cycle, result.signals, closes)
        record_orders(session, cycle, result.plan.orders, result.plan.rejections, self.broker_name)
        record_positions(session, self.book, result.portfolio, cycle.bar_ts)
        record_snapshot(session, cycle, result, state.day_start_equity)
        record_agent_work(session, cycle, result, request.run_id)
        if result.plan.halted and not state.halted:
            record_halt(session, book, bar_open_ms, result.plan.halt_reason)
        cycle.skipped = {**result.skipped, **{f"weights:{i}": n for i, n in enumerate(request.weights.notes)}}
        cycle.status = "succeeded"
        cycle.finished_at = utcnow()
        session.commit()
        return _outcome(self.book, bar_open_ms, result, state.day_start_equity, request.weights, "traded")

    def describe(self, session: Session, bar_open_ms: int) -> CycleOutcome:
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


def with_seconds(outcome: CycleOutcome, seconds: float) -> CycleOutcome:
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
