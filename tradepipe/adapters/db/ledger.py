"""Reading and writing the ledger: the I/O half of a trading cycle.

Everything a cycle writes goes in through the ``record_*`` functions (one per table) inside one
transaction, so a cycle killed half-way leaves nothing behind and the rerun of the same bar writes it
once. The unique keys
(book, bar) on cycles and ``client_order_id`` on orders make a second write fail loudly instead of
double-counting.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Collection, Mapping, cast

from sqlalchemy import delete, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from tradepipe.adapters.db.models import (
    AgentWorkLogRow,
    BookRow,
    FillRow,
    MarketBarRow,
    OrderRow,
    PortfolioSnapshotRow,
    PositionRow,
    SignalRow,
    TradeAttributionRow,
    TradingCycleRow,
)
from tradepipe.adapters.db.order_status import OPEN_STATUSES, OrderStatus, move_order
from tradepipe.core.ledger import Portfolio
from tradepipe.core.types import BarHistory, OrderIntent, Position, Rejection, Side, Signal

if TYPE_CHECKING:  # the core cycle loads the agents (pandas); `tradepipe status` reads the ledger without them
    from tradepipe.core.cycle import CycleResult, ExecutedFill, PendingOrder


def ms_to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def datetime_to_ms(moment: datetime) -> int:
    return int(round(moment.timestamp() * 1000))


@dataclass(frozen=True)
class StoredBook:
    """A book as the ledger holds it when a cycle starts: its portfolio, its pending orders and its day."""

    portfolio: Portfolio
    pending: list[PendingOrder]
    day_start_equity: Decimal
    halted: bool
    last_marks: dict[str, Decimal]
    last_bar_ms: int | None


def order_intent(order: OrderRow) -> OrderIntent:
    """The core's view of a recorded order."""
    return OrderIntent(
        symbol=order.symbol,
        side=cast(Side, order.side),
        quantity=order.quantity,
        reference_price=order.reference_price or Decimal(0),
        client_order_id=order.client_order_id,
        reason=order.reason,
        requested_quantity=order.requested_quantity,
        contributions=dict(order.contributions or {}),
        bar_open_ms=datetime_to_ms(order.bar_ts),
    )


def ensure_book(session: Session, name: str, starting_cash: Decimal, quote_currency: str) -> BookRow:
    book = session.get(BookRow, name)
    if book is None:
        book = BookRow(name=name, starting_cash=starting_cash, quote_currency=quote_currency)
        session.add(book)
        session.flush()
    return book


def find_cycle(session: Session, book: str, bar_open_ms: int) -> TradingCycleRow | None:
    return session.scalars(
        select(TradingCycleRow).where(TradingCycleRow.book == book, TradingCycleRow.bar_ts == ms_to_datetime(bar_open_ms))
    ).first()


def latest_cycle(session: Session, book: str) -> TradingCycleRow | None:
    return session.scalars(
        select(TradingCycleRow).where(TradingCycleRow.book == book).order_by(TradingCycleRow.bar_ts.desc()).limit(1)
    ).first()


def newest_cycle_bar(session: Session, book: str) -> datetime | None:
    """The bar of the book's newest cycle: cycles run in bar order, never before it."""
    return session.scalars(
        select(TradingCycleRow.bar_ts).where(TradingCycleRow.book == book).order_by(TradingCycleRow.bar_ts.desc()).limit(1)
    ).first()


def start_cycle(session: Session, **values: Any) -> TradingCycleRow:
    """Add the cycle's row (status ``running``); flushed, so a second writer of the same bar fails here."""
    cycle = TradingCycleRow(status="running", **values)
    session.add(cycle)
    session.flush()
    return cycle


def latest_snapshot(session: Session, book: str, before: datetime | None = None) -> PortfolioSnapshotRow | None:
    """The book's newest portfolio snapshot (only those of bars before ``before``, when given)."""
    query = select(PortfolioSnapshotRow).where(PortfolioSnapshotRow.book == book)
    if before is not None:
        query = query.where(PortfolioSnapshotRow.bar_ts < before)
    return session.scalars(query.order_by(PortfolioSnapshotRow.bar_ts.desc()).limit(1)).first()


def open_positions(session: Session, book: str) -> list[PositionRow]:
    """The book's non-zero positions, by symbol."""
    return list(
        session.scalars(
            select(PositionRow).where(PositionRow.book == book, PositionRow.quantity != 0).order_by(PositionRow.symbol)
        )
    )


def ledger_counts(session: Session, book: str) -> dict[str, int]:
    """How many cycles, signals, orders and fills the book has."""
    return {
        "cycles": session.scalar(select(func.count()).select_from(TradingCycleRow).where(TradingCycleRow.book == book)) or 0,
        "signals": session.scalar(select(func.count()).select_from(SignalRow).where(SignalRow.book == book)) or 0,
        "orders": session.scalar(select(func.count()).select_from(OrderRow).where(OrderRow.book == book)) or 0,
        "fills": count_fills(session, book),
    }


def pending_orders(session: Session, book: str, broker: str) -> list[OrderRow]:
    """Orders the book decided that ``broker`` has not taken yet, oldest first."""
    return list(
        session.scalars(
            select(OrderRow)
            .where(OrderRow.book == book, OrderRow.status == OrderStatus.PENDING, OrderRow.broker == broker)
            .order_by(OrderRow.id)
        )
    )


def open_exchange_orders(session: Session, book: str) -> list[OrderRow]:
    """The book's ccxt orders not final yet (pending or at the exchange), oldest first."""
    return list(
        session.scalars(
            select(OrderRow)
            .where(OrderRow.book == book, OrderRow.broker == "ccxt", OrderRow.status.in_(OPEN_STATUSES))
            .order_by(OrderRow.id)
        )
    )


def fill_quantities_by_order(session: Session, book: str) -> list[tuple[str, Decimal, Decimal]]:
    """(client order id, order quantity, fill quantity): one row per fill of the book's orders."""
    rows = session.execute(
        select(OrderRow.client_order_id, OrderRow.quantity, FillRow.quantity).join(FillRow, FillRow.order_id == OrderRow.id).where(OrderRow.book == book)
    ).all()
    return [(cid, ordered, filled) for cid, ordered, filled in rows]


def count_fills(session: Session, book: str) -> int:
    return session.scalar(select(func.count()).select_from(FillRow).where(FillRow.book == book)) or 0


def book_has_cycles(session: Session, book: str) -> bool:
    return session.scalars(select(TradingCycleRow.id).where(TradingCycleRow.book == book).limit(1)).first() is not None


BACKTEST_RUN_PREFIX = "backtest:"
"""A backtest records its cycles with run id ``backtest:<book>``; any other cycle was traded live."""


def live_cycle_count(session: Session, book: str) -> int:
    """How many of ``book``'s cycles were not recorded by a backtest (a live loop's, a run's, a CLI cycle's)."""
    live = or_(TradingCycleRow.run_id.is_(None), TradingCycleRow.run_id.not_like(f"{BACKTEST_RUN_PREFIX}%"))
    return session.scalar(select(func.count()).select_from(TradingCycleRow).where(TradingCycleRow.book == book, live)) or 0


def delete_book(session: Session, book: str) -> None:
    """Remove every ledger row of ``book`` (the caller names the book: never the live one by accident)."""
    cycle_ids = select(TradingCycleRow.id).where(TradingCycleRow.book == book)
    fill_ids = select(FillRow.id).where(FillRow.book == book)
    session.execute(delete(TradeAttributionRow).where(TradeAttributionRow.fill_id.in_(fill_ids)))
    session.execute(delete(FillRow).where(FillRow.book == book))
    session.execute(delete(AgentWorkLogRow).where(AgentWorkLogRow.cycle_id.in_(cycle_ids)))
    for model in (OrderRow, SignalRow, PortfolioSnapshotRow, PositionRow):
        session.execute(delete(model).where(model.book == book))
    session.execute(delete(TradingCycleRow).where(TradingCycleRow.book == book))
    session.execute(delete(BookRow).where(BookRow.name == book))


def lift_daily_loss_halt(session: Session, book_name: str) -> Decimal | None:
    """Lift today's halt: losses count from the current equity for the rest of the UTC day.

    Returns that equity, or None when the book is not halted."""
    book = session.get(BookRow, book_name)
    if book is None or book.halted_day is None:
        return None
    latest = latest_snapshot(session, book_name)
    book.risk_reset_day = book.halted_day
    book.risk_reset_equity = latest.equity if latest else book.starting_cash
    book.halted_day = None
    book.halt_reason = f"reset by operator at equity {book.risk_reset_equity} (was: {book.halt_reason})"
    return book.risk_reset_equity


def record_halt(session: Session, book: BookRow, bar_open_ms: int, reason: str | None) -> None:
    """The daily-loss halt: the book takes no new risk for the rest of the bar's UTC day."""
    book.halted_day = today_utc(bar_open_ms)
    book.halt_reason = reason


def _pending_order(**fields: Any) -> PendingOrder:
    from tradepipe.core.cycle import PendingOrder

    return PendingOrder(**fields)


def load_book_state(session: Session, book: BookRow, bar_open_ms: int) -> StoredBook:
    snapshot = latest_snapshot(session, book.name, before=ms_to_datetime(bar_open_ms))
    positions = {
        row.symbol: Position(
            symbol=row.symbol,
            quantity=row.quantity,
            average_price=row.average_price,
            opening_contributions=dict(row.opening_contributions or {}),
            opened_ms=datetime_to_ms(row.opened_at) if row.opened_at else 0,
        )
        for row in session.scalars(select(PositionRow).where(PositionRow.book == book.name))
        if row.quantity != 0
    }
    pending = [
        _pending_order(intent=order_intent(o), decided_bar_ms=datetime_to_ms(o.bar_ts))
        for o in pending_orders(session, book.name, "paper")
    ]
    if snapshot is None:
        portfolio = Portfolio(cash=book.starting_cash, positions=positions, realized_pnl=Decimal(0), fees_paid=Decimal(0))
        return StoredBook(portfolio, pending, book.starting_cash, False, {}, None)
    portfolio = Portfolio(
        cash=snapshot.cash, positions=positions, realized_pnl=snapshot.realized_pnl, fees_paid=snapshot.fees_paid
    )
    today = ms_to_datetime(bar_open_ms).date()
    new_day = today != snapshot.bar_ts.date()
    day_start = snapshot.equity if new_day else snapshot.day_start_equity
    if book.risk_reset_day == today and book.risk_reset_equity is not None:
        day_start = book.risk_reset_equity
    halted = book.halted_day is not None and book.halted_day == today
    marks = {s: Decimal(str(v["mark"])) for s, v in (snapshot.positions or {}).items() if v.get("mark") is not None}
    return StoredBook(portfolio, pending, day_start, halted, marks, datetime_to_ms(snapshot.bar_ts))


def _upsert_ignore(session: Session, model: type, rows: list[dict[str, Any]], keys: list[str]) -> None:
    if not rows:
        return
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(model).values(rows).on_conflict_do_nothing(index_elements=keys))


def record_bars(session: Session, source: str, histories: Mapping[str, BarHistory], bar_open_ms: int) -> None:
    """Keep the cycle's own bar per symbol: what the decision saw, for audits and return streams."""
    rows = bar_rows(source, histories, bar_open_ms)
    _upsert_ignore(session, MarketBarRow, rows, ["source", "symbol", "timeframe", "ts"])


def bar_rows(source: str, histories: Mapping[str, BarHistory], bar_open_ms: int) -> list[dict[str, Any]]:
    """The ``market_bars`` rows of the cycle's own bar per symbol (symbols without that bar have none)."""
    rows = []
    ts = ms_to_datetime(bar_open_ms)
    for symbol, history in histories.items():
        if len(history) == 0 or history.last_timestamp != bar_open_ms:
            continue
        rows.append(
            {
                "source": source,
                "symbol": symbol,
                "timeframe": history.timeframe,
                "ts": ts,
                "open": float(history.open[-1]),
                "high": float(history.high[-1]),
                "low": float(history.low[-1]),
                "close": float(history.close[-1]),
                "volume": float(history.volume[-1]),
            }
        )
    return rows


def record_fills(session: Session, book: str, fills: list[ExecutedFill], cancelled: list[tuple[OrderIntent, str]], broker: str) -> None:
    """``fills``: the fills booked this cycle (each order filled once); ``cancelled``: orders that ended without one."""
    client_ids = [e.fill.client_order_id for e in fills] + [intent.client_order_id for intent, _ in cancelled]
    orders_by_client_id = {o.client_order_id: o for o in session.scalars(select(OrderRow).where(OrderRow.client_order_id.in_(client_ids)))}
    for executed in fills:
        order = orders_by_client_id[executed.fill.client_order_id]
        move_order(order, OrderStatus.FILLED)
        session.add(FillRow(**fill_row(order.id, book, executed, broker)))
    for intent, reason in cancelled:
        move_order(orders_by_client_id[intent.client_order_id], OrderStatus.CANCELLED, cancel_note(reason))


def cancel_note(reason: str) -> str:
    """What an order that ended without a fill appends to its reason."""
    return f"cancelled: {reason}"


def fill_row(order_id: int | None, book: str, executed: ExecutedFill, broker: str) -> dict[str, Any]:
    """The ``fills`` row of one fill of order ``order_id``."""
    fill = executed.fill
    realization = executed.realization
    return {
        "order_id": order_id,
        "client_order_id": fill.client_order_id,
        "trade_id": f"{broker}-{fill.client_order_id}",
        "book": book,
        "symbol": fill.symbol,
        "side": fill.side,
        "quantity": fill.quantity,
        "price": fill.price,
        "fee": fill.fee,
        "notional": fill.notional,
        "ts": ms_to_datetime(fill.fill_ms),
        "realized_pnl": realization.realized_pnl if realization else Decimal(0),
        "closed_quantity": realization.quantity_closed if realization else Decimal(0),
        "opening_contributions": dict(realization.opening_contributions) if realization else {},
    }


def record_signals(session: Session, cycle: TradingCycleRow, signals: list[Signal], close_by_symbol: Mapping[str, float]) -> None:
    for row in signal_rows(cycle.id, cycle.book, cycle.bar_ts, signals, close_by_symbol):
        session.add(SignalRow(**row))


def signal_rows(
    cycle_id: int, book: str, bar_ts: datetime, signals: list[Signal], close_by_symbol: Mapping[str, float]
) -> list[dict[str, Any]]:
    """The ``signals`` rows of one cycle: each agent's vote per symbol, with the close it saw."""
    return [
        {
            "cycle_id": cycle_id,
            "book": book,
            "bar_ts": bar_ts,
            "symbol": signal.symbol,
            "agent_name": signal.agent,
            "value": signal.value,
            "confidence": signal.confidence,
            "abstained": signal.abstained,
            "reason": signal.reason,
            "close": close_by_symbol.get(signal.symbol),
        }
        for signal in signals
    ]


def record_orders(
    session: Session, cycle: TradingCycleRow, orders: list[OrderIntent], rejections: list[Rejection], broker: str
) -> None:
    """The cycle's orders (``pending`` until the broker takes them) and its risk rejections (final)."""
    for row in order_rows(cycle.id, cycle.book, cycle.bar_ts, orders, rejections, broker):
        session.add(OrderRow(**row))


def order_rows(
    cycle_id: int, book: str, bar_ts: datetime, orders: list[OrderIntent], rejections: list[Rejection], broker: str
) -> list[dict[str, Any]]:
    """The ``orders`` rows of one cycle: its orders, ``pending``, then its risk rejections, final (every row has every key)."""
    placed: list[dict[str, Any]] = [
        {
            "client_order_id": intent.client_order_id,
            "cycle_id": cycle_id,
            "book": book,
            "bar_ts": bar_ts,
            "symbol": intent.symbol,
            "side": intent.side,
            "quantity": intent.quantity,
            "requested_quantity": intent.requested_quantity,
            "reference_price": intent.reference_price,
            "status": OrderStatus.PENDING,
            "reason": intent.reason,
            "reject_kind": None,
            "broker": broker,
            "contributions": dict(intent.contributions),
        }
        for intent in orders
    ]
    refused: list[dict[str, Any]] = [
        {
            "client_order_id": f"rej-{cycle_id}-{rejection.symbol}-{rejection.kind}"[:64],
            "cycle_id": cycle_id,
            "book": book,
            "bar_ts": bar_ts,
            "symbol": rejection.symbol,
            "side": rejection.side,
            "quantity": Decimal(0),
            "requested_quantity": rejection.requested_quantity,
            "reference_price": None,
            "status": OrderStatus.REJECTED,
            "reason": rejection.reason,
            "reject_kind": rejection.kind,
            "broker": broker,
            "contributions": {},
        }
        for rejection in rejections
    ]
    return placed + refused


def record_positions(session: Session, book: str, portfolio: Portfolio, bar_ts: datetime, held_since: Collection[str] = ()) -> None:
    """One row per symbol ever held; a closed position keeps its row at quantity 0.

    ``held_since``: symbols held since the rows were last written (a batch of cycles writes them once at
    its end): one opened and closed within the batch gets its row at quantity 0 too."""
    existing = {row.symbol: row for row in session.scalars(select(PositionRow).where(PositionRow.book == book))}
    for symbol in sorted(set(held_since) - set(existing) - set(portfolio.positions)):
        existing[symbol] = PositionRow(book=book, symbol=symbol)
        session.add(existing[symbol])
    for symbol, position in portfolio.positions.items():
        row = existing.pop(symbol, None) or PositionRow(book=book, symbol=symbol)
        row.quantity = position.quantity
        row.average_price = position.average_price
        row.opening_contributions = dict(position.opening_contributions)
        row.opened_at = ms_to_datetime(position.opened_ms) if position.opened_ms else bar_ts
        session.add(row)
    for row in existing.values():
        row.quantity = Decimal(0)
        row.average_price = Decimal(0)
        row.opening_contributions = {}
        row.opened_at = None


def record_snapshot(session: Session, cycle: TradingCycleRow, result: CycleResult, day_start_equity: Decimal) -> PortfolioSnapshotRow:
    snapshot = PortfolioSnapshotRow(**snapshot_row(cycle.id, cycle.book, cycle.bar_ts, result, day_start_equity))
    session.add(snapshot)
    return snapshot


def snapshot_row(cycle_id: int, book: str, bar_ts: datetime, result: CycleResult, day_start_equity: Decimal) -> dict[str, Any]:
    """The ``portfolio_snapshots`` row of one cycle: the book valued at the cycle's marks."""
    valuation = result.valuation
    return {
        "book": book,
        "bar_ts": bar_ts,
        "cycle_id": cycle_id,
        "cash": valuation.cash,
        "positions_value": valuation.positions_value,
        "equity": valuation.equity,
        "realized_pnl": result.portfolio.realized_pnl,
        "unrealized_pnl": valuation.unrealized_pnl,
        "fees_paid": result.portfolio.fees_paid,
        "day_start_equity": day_start_equity,
        "positions": {
            symbol: {
                "quantity": format(position.quantity, "f"),
                "average_price": format(position.average_price, "f"),
                "mark": format(result.marks[symbol], "f"),
                "value": format(position.quantity * result.marks[symbol], "f"),
            }
            for symbol, position in sorted(result.portfolio.positions.items())
        },
    }


def record_agent_work(session: Session, cycle: TradingCycleRow, result: CycleResult, run_id: str | None) -> None:
    """One work-log row per agent: how it voted this cycle and how long it took."""
    for row in agent_work_rows(cycle.id, cycle.bar_ts, result, run_id):
        session.add(AgentWorkLogRow(**row))


def agent_work_rows(cycle_id: int, bar_ts: datetime, result: CycleResult, run_id: str | None) -> list[dict[str, Any]]:
    """The ``agent_work_log`` rows of one cycle, one per agent: how it voted and how long it took."""
    by_agent: dict[str, list[Signal]] = {}
    for signal in result.signals:
        by_agent.setdefault(signal.agent, []).append(signal)
    bar = bar_ts.isoformat()
    rows = []
    for agent, seconds in result.agent_seconds.items():
        votes = by_agent.get(agent, [])
        voted = [s for s in votes if not s.abstained]
        rows.append(
            {
                "agent_name": agent,
                "task": "signal",
                "status": "voted" if voted else "abstained",
                "details": {
                    "bar": bar,
                    "symbols": len(votes),
                    "voted": len(voted),
                    "abstained": len(votes) - len(voted),
                    "mean_signal": sum(s.value for s in voted) / len(voted) if voted else None,
                    "reasons": {s.symbol: s.reason for s in votes},
                },
                "duration_ms": seconds * 1000,
                "cycle_id": cycle_id,
                "run_id": run_id,
            }
        )
    return rows


def today_utc(ms: int) -> date:
    return ms_to_datetime(ms).date()
