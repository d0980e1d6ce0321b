"""The trading cycle's unit of work: one bar of one book, in one database transaction.

``CycleUnitOfWork.execute(request)`` opens the transaction, refuses a bar already traded (or older
than the book's newest), loads the book, runs the pure core cycle (``tradepipe.core.cycle.run_cycle``)
and records everything it produced, table by table, then commits once. A crash anywhere before the
commit leaves nothing behind; the unique (book, bar) key makes a second writer of the same bar fail
instead of double-counting, and that case reads back as ``already_done``.

One writer per book: the transaction's first statement takes the book's lock
(``tradepipe.adapters.db.book_lock``), so the already-done and out-of-order checks, the state load
and the writes of two cycles of one book never interleave, whatever launched them. A second cycle
waits at most ``TRADEPIPE_BOOK_LOCK_TIMEOUT_SECONDS``, then fails with ``BookBusyError``. A database
that fails or does not answer fails the cycle with one line (``LedgerUnavailable``).

Everything outside the database (bars, headlines, weights, the broker's fills) is gathered by the
runner before the transaction and handed in as a ``CycleRequest``, so no network call holds it open.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Mapping, Sequence, cast

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from tradepipe.adapters.db.book_lock import hold_book_lock
from tradepipe.adapters.db.connection import LedgerUnavailable, describe_database_error
from tradepipe.adapters.db.ledger import (
    StoredBook,
    bar_rows,
    ensure_book,
    find_cycle,
    latest_snapshot,
    load_book_state,
    ms_to_datetime,
    newest_cycle_bar,
    open_exchange_orders,
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
from tradepipe.adapters.db.ledger_batch import CycleBatch
from tradepipe.adapters.db.controls import paused_by, pending_controls, record_control_outcomes
from tradepipe.adapters.db.models import BookRow, TradingCycleRow, utcnow
from tradepipe.adapters.db.weights import live_weights
from tradepipe.adapters.db.quality import record_blocked_symbols
from tradepipe.adapters.weights_store import LoadedWeights, WeightsVersion
from tradepipe.trading.brokers import FillReport
from tradepipe.core.agents import Agent
from tradepipe.core.bar_quality import BarDefect, blocking_defects
from tradepipe.core.controls import ControlCommand, ControlPlan, plan_controls
from tradepipe.core.cycle import CycleInputs, CycleResult, run_cycle
from tradepipe.core.redaction import redact_value
from tradepipe.core.risk import RiskLimits
from tradepipe.core.timeframes import iso_utc, timeframe_ms
from tradepipe.core.types import AgentContext, BarHistory, MarketRules
from tradepipe.config.settings import Settings


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
    stage_seconds: dict[str, float] = field(default_factory=dict)
    """Latency by stage (agents, risk, ledger; the runner adds market_data and total) for system_metrics."""
    weight_history_id: int | None = None  # the version of the weights used (None: static defaults)
    weights_published_at: str | None = None


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
    wall_clock_ms: int | None = None  # a bar opening after it is from the future


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
            except DBAPIError as error:  # down, hung past its timeout, not migrated: one line, no driver dump
                url = session.get_bind().engine.url.render_as_string(hide_password=True)
                raise LedgerUnavailable(describe_database_error(error, url, self.settings.database_timeouts)) from None

    def _trade(self, session: Session, request: CycleRequest) -> CycleOutcome:
        settings = self.settings
        bar_open_ms = request.bar_open_ms
        hold_book_lock(session, self.book, settings.book_lock_timeout_seconds)  # first: every check below is inside it
        book = ensure_book(session, self.book, settings.starting_cash, settings.quote_currency)
        if find_cycle(session, self.book, bar_open_ms) is not None:
            session.rollback()
            return self.describe(session, bar_open_ms)
        version = request.weights.version
        newest = newest_cycle_bar(session, self.book)
        if newest is not None and newest > ms_to_datetime(bar_open_ms):
            session.rollback()
            raise OutOfOrderBarError(
                f"book {self.book!r} already traded the later bar {iso_utc(newest, timespec='auto', suffix='+00:00')}; "
                f"bar {iso_utc(bar_open_ms, timespec='auto', suffix='+00:00')} can no longer be traded (cycles run in bar order)"
            )
        # A trader's commands are applied here, under the book lock, by this one writer.
        commands = pending_controls(session, self.book)
        if any(c.action == "reload" for c in commands):
            request = replace(request, weights=_reloaded_weights(session, self.book, request.weights, [a.name for a in self.agents]))
            version = request.weights.version
        cycle = start_cycle(
            session,
            book=self.book,
            bar_ts=ms_to_datetime(bar_open_ms),
            timeframe=self.timeframe,
            market_source=self.market_name,
            run_id=request.run_id,
            weights=request.weights.weights,
            weights_source=request.weights.source,
            weight_history_id=version.weight_history_id if version else None,
            weights_published_at=datetime.fromisoformat(version.published_at) if version and version.published_at else None,
        )
        state: StoredBook = load_book_state(session, book, bar_open_ms)
        # Gathered before the lock: a cycle that held it meanwhile may have booked some of these already.
        still_open = {o.client_order_id for o in open_exchange_orders(session, self.book)} if request.fills.outcomes else set()
        broker_outcomes = [o for o in request.fills.outcomes if o.intent.client_order_id in still_open]
        usable = {s for s, h in request.histories.items() if s not in request.unavailable and len(h) and h.last_timestamp == bar_open_ms}
        controls = plan_controls(paused_by(session, self.book), commands, {s for s, p in state.portfolio.positions.items() if p.quantity != 0}, usable)
        core_started = time.perf_counter()
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
                broker_outcomes=broker_outcomes,
                rules=request.rules,
                limits=self.limits,
                fee_bps=settings.fee_bps,
                slippage_bps=settings.slippage_bps,
                day_start_equity=state.day_start_equity,
                halted=state.halted,
                last_marks=state.last_marks,
                agent_notes=request.agent_notes,
                rebalance_band=settings.resolved_rebalance_band,
                wall_clock_ms=request.wall_clock_ms,
                entry_hysteresis=settings.entry_hysteresis,
                min_hold_bars=settings.min_hold_bars,
                entries_paused=controls.entries_paused,
                force_exit=controls.force_exit,
            )
        )
        core_seconds = time.perf_counter() - core_started
        ledger_started = time.perf_counter()
        as_of = bar_open_ms + timeframe_ms(self.timeframe)
        record_cycle(
            session, book, cycle, result, bar_open_ms=bar_open_ms,
            histories=request.histories, day_start_equity=state.day_start_equity, was_halted=state.halted,
            market_name=self.market_name, broker_name=self.broker_name, run_id=request.run_id,
            weight_notes=request.weights.notes, as_of_ms=as_of if request.wall_clock_ms is None else min(as_of, request.wall_clock_ms),
            system_health=self.book == settings.book,
        )
        record_control_outcomes(session, _confirmed(controls, commands, result.skipped), cycle.id)
        session.commit()
        agents_seconds = sum(result.agent_seconds.values())
        stages = {"agents": agents_seconds, "risk": max(core_seconds - agents_seconds, 0.0), "ledger": time.perf_counter() - ledger_started}
        return replace(_outcome(self.book, bar_open_ms, result, state.day_start_equity, request.weights, "traded"), stage_seconds=stages)

    def describe(self, session: Session, bar_open_ms: int) -> CycleOutcome:
        """The outcome of a bar that was already traded (a retried or duplicate run): the book as it stands,
        read from the ledger's newest snapshot at full precision, not redone."""
        cycle = find_cycle(session, self.book, bar_open_ms)
        snapshot = latest_snapshot(session, self.book)
        zero = Decimal(0)
        held = (snapshot.positions if snapshot else {}) or {}
        return CycleOutcome(
            book=self.book,
            bar_open_ms=bar_open_ms,
            status="already_done",
            equity=snapshot.equity if snapshot else zero,
            cash=snapshot.cash if snapshot else zero,
            day_pnl=snapshot.equity - snapshot.day_start_equity if snapshot else zero,
            realized_pnl=snapshot.realized_pnl if snapshot else zero,
            unrealized_pnl=snapshot.unrealized_pnl if snapshot else zero,
            positions=[
                {"symbol": symbol, **{key: float(Decimal(held[symbol][key])) for key in ("quantity", "average_price", "mark", "value")}}
                for symbol in sorted(held)
            ],
            last_signals=[],
            weights=dict(cycle.weights) if cycle else {},
            weights_source=(cycle.weights_source or "") if cycle else "",
            weight_history_id=cycle.weight_history_id if cycle else None,
            weights_published_at=iso_utc(cycle.weights_published_at, timespec="auto", suffix="+00:00") if cycle and cycle.weights_published_at else None,
        )


def _reloaded_weights(session: Session, book: str, loaded: LoadedWeights, agents: Sequence[str]) -> LoadedWeights:
    """The live weight set read again inside the cycle's transaction (a trader's ``reload``)."""
    row = live_weights(session, book)
    if row is None:
        return replace(loaded, notes=(*loaded.notes, "reload: the ledger has no live weight set; kept the weights loaded"))
    weights = {str(a): float(w) for a, w in (row.new_weights or {}).items()}
    if set(weights) - set(agents) or not all(math.isfinite(w) and w >= 0 for w in weights.values()):
        return replace(loaded, notes=(*loaded.notes, f"reload: live weight_history {row.id} does not fit the agents; kept the weights loaded"))
    version = WeightsVersion(row.id, iso_utc(row.promoted_at, timespec="auto", suffix="+00:00") if row.promoted_at else None)
    return LoadedWeights(weights, "database", (*loaded.notes, f"reload: live weight_history {row.id} re-read from the ledger"), version)


def _confirmed(plan: ControlPlan, commands: Sequence[ControlCommand], skipped: Mapping[str, str]) -> ControlPlan:
    """A force-exit whose symbol the cycle skipped after all (a bad bar) waits for the next bar."""
    applied, waiting = dict(plan.applied), dict(plan.waiting)
    for command in commands:
        blocked = sorted(s for s in plan.force_exit if s in skipped and (command.symbol in (s, "all")))
        if command.action == "forceexit" and command.id in applied and blocked:
            del applied[command.id]
            waiting[command.id] = f"{', '.join(blocked)} skipped this cycle ({skipped[blocked[0]]}); tried again next bar"
    return replace(plan, applied=applied, waiting=waiting)


def record_cycle(
    session: Session,
    book: BookRow,
    cycle: TradingCycleRow,
    result: CycleResult,
    *,
    bar_open_ms: int,
    histories: Mapping[str, BarHistory],
    day_start_equity: Decimal,
    was_halted: bool,
    market_name: str,
    broker_name: str,
    run_id: str | None,
    weight_notes: Sequence[str],
    as_of_ms: int,
    system_health: bool,
) -> None:
    """Everything one traded cycle writes, table by table (the caller commits): the live unit of work
    and ``tradepipe backtest`` (which trades on the walk-forward engine, through ``batch_cycle``) write the same rows."""
    record_bars(session, market_name, _used_histories(histories, result.skipped), bar_open_ms)
    record_fills(session, cycle.book, result.fills, result.cancelled, broker_name)
    record_signals(session, cycle, result.signals, _closes(histories, bar_open_ms))
    record_orders(session, cycle, result.plan.orders, result.plan.rejections, broker_name)
    record_positions(session, cycle.book, result.portfolio, cycle.bar_ts)
    record_snapshot(session, cycle, result, day_start_equity)
    record_agent_work(session, cycle, result, run_id)
    defects = _bar_defects(histories, result.skipped, as_of_ms)
    record_blocked_symbols(session, cycle, result.skipped, defects, run_id, system_health=system_health)
    if result.plan.halted and not was_halted:
        record_halt(session, book, bar_open_ms, result.plan.halt_reason)
    cycle.skipped = _skipped_record(result.skipped, weight_notes)
    cycle.status = "succeeded"
    cycle.finished_at = utcnow()


def batch_cycle(
    batch: CycleBatch,
    book: BookRow,
    cycle: Mapping[str, Any],
    result: CycleResult,
    *,
    bar_open_ms: int,
    histories: Mapping[str, BarHistory],
    day_start_equity: Decimal,
    was_halted: bool,
    market_name: str,
    weight_notes: Sequence[str],
    as_of_ms: int,
) -> None:
    """``record_cycle``'s rows into a ``CycleBatch`` (a backtest's many cycles, written a batch at a time;
    ``cycle``: what ``start_cycle`` is given). The book's halt is set on ``book`` at once."""
    batch.add(
        {**cycle, "status": "succeeded", "started_at": utcnow(), "finished_at": utcnow(), "skipped": _skipped_record(result.skipped, weight_notes)},
        result,
        bars=bar_rows(market_name, _used_histories(histories, result.skipped), bar_open_ms),
        closes=_closes(histories, bar_open_ms),
        day_start_equity=day_start_equity,
        defects=_bar_defects(histories, result.skipped, as_of_ms),
    )
    if result.plan.halted and not was_halted:
        record_halt(batch.session, book, bar_open_ms, result.plan.halt_reason)


def _used_histories(histories: Mapping[str, BarHistory], skipped: Mapping[str, str]) -> dict[str, BarHistory]:
    """Only the bars the decision used: a skipped symbol's bar may be NaN (SQLite stores NaN as NULL
    and refuses it) or otherwise unfit for the return streams."""
    return {symbol: history for symbol, history in histories.items() if symbol not in skipped}


def _closes(histories: Mapping[str, BarHistory], bar_open_ms: int) -> dict[str, float]:
    """The close of the cycle's bar per symbol that has it (the signals' rows keep the close they saw)."""
    return {s: h.last_close for s, h in histories.items() if len(h) and h.last_timestamp == bar_open_ms}


def _skipped_record(skipped: Mapping[str, str], weight_notes: Sequence[str]) -> dict[str, Any]:
    """The cycle row's ``skipped``: the symbols kept out and why, and the notes on the weights."""
    return cast(dict[str, Any], redact_value({**skipped, **{f"weights:{i}": n for i, n in enumerate(weight_notes)}}))


def _bar_defects(histories: Mapping[str, BarHistory], skipped: Mapping[str, str], as_of_ms: int) -> dict[str, list[BarDefect]]:
    """The blocking bar defects behind each skipped symbol (the same rules the core cycle applied)."""
    return {
        symbol: blocking_defects(histories[symbol], as_of_ms)
        for symbol in skipped
        if symbol in histories and len(histories[symbol])
    }


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
        weight_history_id=weights.version.weight_history_id if weights.version else None,
        weights_published_at=weights.version.published_at if weights.version else None,
    )
