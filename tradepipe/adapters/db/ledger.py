"""Reading and writing the ledger: the I/O half of a trading cycle.

Everything a cycle writes goes in through ``record_cycle`` inside one transaction, so a cycle killed
half-way leaves nothing behind and the rerun of the same bar writes it once. The unique keys
(book, bar) on cycles and ``client_order_id`` on orders make a second write fail loudly instead of
double-counting.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, Mapping

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from tradepipe.adapters.db.models import (
    AgentWorkLog,
    Book,
    Fill,
    MarketBar,
    Order,
    PortfolioSnapshot,
    PositionRow,
    SignalRow,
    TradingCycle,
)
from tradepipe.core.cycle import CycleResult, PendingOrder
from tradepipe.core.ledger import Portfolio
from tradepipe.core.risk import OrderIntent
from tradepipe.core.types import BarHistory, Position


def ms_to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def datetime_to_ms(moment: datetime) -> int:
    return int(round(moment.timestamp() * 1000))


@dataclass(frozen=True)
class BookState:
    portfolio: Portfolio
    pending: list[PendingOrder]
    day_start_equity: Decimal
    halted: bool
    last_marks: dict[str, Decimal]
    last_bar_ms: int | None


def order_intent(order: Order) -> OrderIntent:
    """The core's view of a recorded order."""
    return OrderIntent(
        symbol=order.symbol,
        side=order.side,
        quantity=order.quantity,
        reference_price=order.reference_price or Decimal(0),
        client_order_id=order.client_order_id,
        reason=order.reason,
        requested_quantity=order.requested_quantity,
        contributions=dict(order.contributions or {}),
        bar_open_ms=datetime_to_ms(order.bar_ts),
    )


def ensure_book(session: Session, name: str, starting_cash: Decimal, quote_currency: str) -> Book:
    book = session.get(Book, name)
    if book is None:
        book = Book(name=name, starting_cash=starting_cash, quote_currency=quote_currency)
        session.add(book)
        session.flush()
    return book


def find_cycle(session: Session, book: str, bar_open_ms: int) -> TradingCycle | None:
    return session.scalars(
        select(TradingCycle).where(TradingCycle.book == book, TradingCycle.bar_ts == ms_to_datetime(bar_open_ms))
    ).first()


def load_book_state(session: Session, book: Book, bar_open_ms: int) -> BookState:
    snapshot = session.scalars(
        select(PortfolioSnapshot)
        .where(PortfolioSnapshot.book == book.name, PortfolioSnapshot.bar_ts < ms_to_datetime(bar_open_ms))
        .order_by(PortfolioSnapshot.bar_ts.desc())
        .limit(1)
    ).first()
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
        PendingOrder(intent=order_intent(o), decided_bar_ms=datetime_to_ms(o.bar_ts))
        for o in session.scalars(
            select(Order).where(Order.book == book.name, Order.status == "pending", Order.broker == "paper").order_by(Order.id)
        )
    ]
    if snapshot is None:
        portfolio = Portfolio(cash=book.starting_cash, positions=positions, realized_pnl=Decimal(0), fees_paid=Decimal(0))
        return BookState(portfolio, pending, book.starting_cash, False, {}, None)
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
    return BookState(portfolio, pending, day_start, halted, marks, datetime_to_ms(snapshot.bar_ts))


def _upsert_ignore(session: Session, model: type, rows: list[dict[str, Any]], keys: list[str]) -> None:
    if not rows:
        return
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(model).values(rows).on_conflict_do_nothing(index_elements=keys))


def record_bars(session: Session, source: str, histories: Mapping[str, BarHistory], bar_open_ms: int) -> None:
    """Keep the cycle's own bar per symbol: what the decision saw, for audits and return streams."""
    rows = []
    for symbol, history in histories.items():
        if len(history) == 0 or history.last_timestamp != bar_open_ms:
            continue
        rows.append(
            {
                "source": source,
                "symbol": symbol,
                "timeframe": history.timeframe,
                "ts": ms_to_datetime(bar_open_ms),
                "open": float(history.open[-1]),
                "high": float(history.high[-1]),
                "low": float(history.low[-1]),
                "close": float(history.close[-1]),
                "volume": float(history.volume[-1]),
            }
        )
    _upsert_ignore(session, MarketBar, rows, ["source", "symbol", "timeframe", "ts"])


def _position_rows(session: Session, book: str, portfolio: Portfolio, bar_ts: datetime) -> None:
    existing = {row.symbol: row for row in session.scalars(select(PositionRow).where(PositionRow.book == book))}
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


def record_cycle(
    session: Session,
    *,
    cycle: TradingCycle,
    result: CycleResult,
    close_by_symbol: Mapping[str, float],
    broker: str,
    day_start_equity: Decimal,
    run_id: str | None,
) -> PortfolioSnapshot:
    """Write everything one cycle produced; the caller commits once."""
    book = cycle.book
    bar_ts = cycle.bar_ts
    orders_by_client_id = {
        o.client_order_id: o
        for o in session.scalars(
            select(Order).where(Order.client_order_id.in_([e.fill.client_order_id for e in result.fills] + [c[0].client_order_id for c in result.cancelled]))
        )
    }
    for executed in result.fills:
        fill = executed.fill
        order = orders_by_client_id[fill.client_order_id]
        order.status = "filled"
        realization = executed.realization
        session.add(
            Fill(
                order_id=order.id,
                client_order_id=fill.client_order_id,
                trade_id=f"{broker}-{fill.client_order_id}",
                book=book,
                symbol=fill.symbol,
                side=fill.side,
                quantity=fill.quantity,
                price=fill.price,
                fee=fill.fee,
                notional=fill.notional,
                ts=ms_to_datetime(fill.fill_ms),
                realized_pnl=realization.realized_pnl if realization else Decimal(0),
                closed_quantity=realization.quantity_closed if realization else Decimal(0),
                opening_contributions=dict(realization.opening_contributions) if realization else {},
            )
        )
    for intent, reason in result.cancelled:
        order = orders_by_client_id[intent.client_order_id]
        order.status = "cancelled"
        order.reason = f"{order.reason}; cancelled: {reason}"

    for signal in result.signals:
        session.add(
            SignalRow(
                cycle_id=cycle.id,
                book=book,
                bar_ts=bar_ts,
                symbol=signal.symbol,
                agent_name=signal.agent,
                value=signal.value,
                confidence=signal.confidence,
                abstained=signal.abstained,
                reason=signal.reason,
                close=close_by_symbol.get(signal.symbol),
            )
        )
    for intent in result.plan.orders:
        session.add(
            Order(
                client_order_id=intent.client_order_id,
                cycle_id=cycle.id,
                book=book,
                bar_ts=bar_ts,
                symbol=intent.symbol,
                side=intent.side,
                quantity=intent.quantity,
                requested_quantity=intent.requested_quantity,
                reference_price=intent.reference_price,
                status="pending",
                reason=intent.reason,
                broker=broker,
                contributions=dict(intent.contributions),
            )
        )
    for rejection in result.plan.rejections:
        session.add(
            Order(
                client_order_id=f"rej-{cycle.id}-{rejection.symbol}-{rejection.kind}"[:64],
                cycle_id=cycle.id,
                book=book,
                bar_ts=bar_ts,
                symbol=rejection.symbol,
                side=rejection.side,
                quantity=Decimal(0),
                requested_quantity=rejection.requested_quantity,
                reference_price=None,
                status="rejected",
                reason=rejection.reason,
                reject_kind=rejection.kind,
                broker=broker,
            )
        )
    _position_rows(session, book, result.portfolio, bar_ts)
    valuation = result.valuation
    snapshot = PortfolioSnapshot(
        book=book,
        bar_ts=bar_ts,
        cycle_id=cycle.id,
        cash=valuation.cash,
        positions_value=valuation.positions_value,
        equity=valuation.equity,
        realized_pnl=result.portfolio.realized_pnl,
        unrealized_pnl=valuation.unrealized_pnl,
        fees_paid=result.portfolio.fees_paid,
        day_start_equity=day_start_equity,
        positions={
            symbol: {
                "quantity": format(position.quantity, "f"),
                "average_price": format(position.average_price, "f"),
                "mark": format(result.marks[symbol], "f"),
                "value": format(position.quantity * result.marks[symbol], "f"),
            }
            for symbol, position in sorted(result.portfolio.positions.items())
        },
    )
    session.add(snapshot)
    for agent, seconds in result.agent_seconds.items():
        votes = [s for s in result.signals if s.agent == agent]
        voted = [s for s in votes if not s.abstained]
        session.add(
            AgentWorkLog(
                agent_name=agent,
                task="signal",
                status="voted" if voted else "abstained",
                details={
                    "bar": bar_ts.isoformat(),
                    "symbols": len(votes),
                    "voted": len(voted),
                    "abstained": len(votes) - len(voted),
                    "mean_signal": sum(s.value for s in voted) / len(voted) if voted else None,
                    "reasons": {s.symbol: s.reason for s in votes},
                },
                duration_ms=seconds * 1000,
                cycle_id=cycle.id,
                run_id=run_id,
            )
        )
    return snapshot


def today_utc(ms: int) -> date:
    return ms_to_datetime(ms).date()
