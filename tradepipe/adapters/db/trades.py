"""Reads behind ``tradepipe trades``, ``profit`` and ``plot``: the ledger's fills, snapshots, bars and votes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from tradepipe.adapters.db.ledger import datetime_to_ms
from tradepipe.adapters.db.models import (
    BookRow,
    FillRow,
    MarketBarRow,
    OrderRow,
    PortfolioSnapshotRow,
    SignalRow,
    TradingCycleRow,
)
from tradepipe.core.types import Fill
from tradepipe.core.results import ClosingOrder
from tradepipe.core.trades import LedgerFill, RoundTrip, SnapshotPoint, round_trips


def book_exists(session: Session, book: str) -> bool:
    return session.get(BookRow, book) is not None


def load_ledger_fills(session: Session, book: str) -> list[LedgerFill]:
    """Every fill of the book in the order the ledger applied it, with its order's contributions."""
    rows = session.execute(
        select(FillRow, OrderRow.contributions).join(OrderRow, OrderRow.id == FillRow.order_id).where(FillRow.book == book).order_by(FillRow.id)
    ).all()
    return [
        LedgerFill(
            fill_id=fill.id,
            fill=Fill(
                client_order_id=fill.client_order_id,
                symbol=fill.symbol,
                side=fill.side,  # type: ignore[arg-type]
                quantity=fill.quantity,
                price=fill.price,
                fee=fill.fee,
                notional=fill.notional,
                fill_ms=datetime_to_ms(fill.ts),
            ),
            contributions={str(k): float(v) for k, v in (contributions or {}).items()},
            booked_realized_pnl=fill.realized_pnl,
        )
        for fill, contributions in rows
    ]


def load_snapshots(session: Session, book: str, since: datetime | None = None) -> list[SnapshotPoint]:
    query = select(PortfolioSnapshotRow.bar_ts, PortfolioSnapshotRow.equity, PortfolioSnapshotRow.unrealized_pnl).where(
        PortfolioSnapshotRow.book == book
    )
    if since is not None:
        query = query.where(PortfolioSnapshotRow.bar_ts >= since)
    return [
        SnapshotPoint(bar_ms=datetime_to_ms(ts), equity=equity, unrealized_pnl=unrealized)
        for ts, equity, unrealized in session.execute(query.order_by(PortfolioSnapshotRow.bar_ts))
    ]


@dataclass(frozen=True)
class LatestBook:
    """The book at its newest snapshot: the ledger's own marks, realised and unrealised P&L, fees."""

    bar_ms: int
    marks: dict[str, Decimal]
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fees_paid: Decimal
    equity: Decimal


def load_latest_book(session: Session, book: str) -> LatestBook | None:
    snapshot = session.scalars(
        select(PortfolioSnapshotRow).where(PortfolioSnapshotRow.book == book).order_by(PortfolioSnapshotRow.bar_ts.desc()).limit(1)
    ).first()
    if snapshot is None:
        return None
    marks = {s: Decimal(str(v["mark"])) for s, v in (snapshot.positions or {}).items() if v.get("mark") is not None}
    return LatestBook(
        bar_ms=datetime_to_ms(snapshot.bar_ts),
        marks=marks,
        realized_pnl=snapshot.realized_pnl,
        unrealized_pnl=snapshot.unrealized_pnl,
        fees_paid=snapshot.fees_paid,
        equity=snapshot.equity,
    )


@dataclass(frozen=True)
class ChartBar:
    bar_ms: int
    open: float
    high: float
    low: float
    close: float


def load_chart_bars(session: Session, book: str, symbol: str, since: datetime | None) -> list[ChartBar]:
    """The bars the book's cycles decided on for ``symbol`` (one per cycle, as the decision saw it)."""
    cycles = select(TradingCycleRow.bar_ts, TradingCycleRow.market_source, TradingCycleRow.timeframe).where(TradingCycleRow.book == book)
    if since is not None:
        cycles = cycles.where(TradingCycleRow.bar_ts >= since)
    sub = cycles.subquery()
    rows = session.execute(
        select(MarketBarRow.ts, MarketBarRow.open, MarketBarRow.high, MarketBarRow.low, MarketBarRow.close)
        .join(sub, (sub.c.bar_ts == MarketBarRow.ts) & (sub.c.market_source == MarketBarRow.source) & (sub.c.timeframe == MarketBarRow.timeframe))
        .where(MarketBarRow.symbol == symbol)
        .order_by(MarketBarRow.ts)
    ).all()
    return [ChartBar(datetime_to_ms(ts), o, h, low, c) for ts, o, h, low, c in rows]


@dataclass(frozen=True)
class ChartVote:
    bar_ms: int
    agent: str
    value: float
    confidence: float
    abstained: bool


def load_chart_votes(session: Session, book: str, symbol: str, since: datetime | None) -> list[ChartVote]:
    query = select(SignalRow.bar_ts, SignalRow.agent_name, SignalRow.value, SignalRow.confidence, SignalRow.abstained).where(
        SignalRow.book == book, SignalRow.symbol == symbol
    )
    if since is not None:
        query = query.where(SignalRow.bar_ts >= since)
    return [ChartVote(datetime_to_ms(ts), a, v, c, bool(ab)) for ts, a, v, c, ab in session.execute(query.order_by(SignalRow.bar_ts))]


def load_cycle_weights(session: Session, book: str, since: datetime | None) -> dict[int, dict[str, float]]:
    """The weights each cycle traded with, by bar."""
    query = select(TradingCycleRow.bar_ts, TradingCycleRow.weights).where(TradingCycleRow.book == book)
    if since is not None:
        query = query.where(TradingCycleRow.bar_ts >= since)
    return {datetime_to_ms(ts): {str(k): float(v) for k, v in (w or {}).items()} for ts, w in session.execute(query)}


def load_book_trips(session: Session, book: str) -> tuple[list[LedgerFill], list[RoundTrip], LatestBook | None]:
    """The book's fills, its round trips (open ones valued at the newest snapshot's marks) and that snapshot."""
    fills = load_ledger_fills(session, book)
    latest = load_latest_book(session, book)
    return fills, round_trips(fills, latest.marks if latest else None), latest


def warmup_cycles(session: Session, book: str, run_prefix: str) -> tuple[int, datetime | None]:
    """How many cycles the warm-up traded into the book (run_id starting with ``run_prefix``), and its first bar."""
    from sqlalchemy import func

    count, first = session.execute(
        select(func.count(), func.min(TradingCycleRow.bar_ts)).where(TradingCycleRow.book == book, TradingCycleRow.run_id.startswith(run_prefix))
    ).one()
    return int(count or 0), first


def first_cycle_bar(session: Session, book: str) -> datetime | None:
    return session.scalars(select(TradingCycleRow.bar_ts).where(TradingCycleRow.book == book).order_by(TradingCycleRow.bar_ts).limit(1)).first()


def days_missing_attribution(session: Session, book: str, start: datetime, end: datetime) -> list[str]:
    """UTC days in [start, end) whose fills realised P&L but have no trade_attribution rows yet:
    counts built from attribution over such a window are incomplete until those partitions run."""
    from tradepipe.adapters.db.analytics import load_realized_fills
    from tradepipe.adapters.db.models import TradeAttributionRow

    realized_days = {fill.ts.date() for fill in load_realized_fills(session, book, start, end)}
    attributed = set(
        session.scalars(
            select(TradeAttributionRow.date)
            .where(TradeAttributionRow.book == book, TradeAttributionRow.date >= start.date(), TradeAttributionRow.date < end.date())
            .distinct()
        )
    )
    return sorted(day.isoformat() for day in realized_days - attributed)


def load_closing_orders(session: Session, book: str) -> dict[int, ClosingOrder]:
    """Per fill id of the book: the order that fill belongs to (its reason, requested and sent quantity)."""
    rows = session.execute(
        select(FillRow.id, OrderRow.reason, OrderRow.requested_quantity, OrderRow.quantity)
        .join(OrderRow, OrderRow.id == FillRow.order_id)
        .where(FillRow.book == book)
    )
    return {fill_id: ClosingOrder(reason or "", requested, quantity) for fill_id, reason, requested, quantity in rows}


@dataclass(frozen=True)
class CurvePoint:
    """The book after one cycle: equity, and what of it sat in positions (zero: flat)."""

    bar_ms: int
    equity: Decimal
    positions_value: Decimal


def load_equity_curve(session: Session, book: str) -> list[CurvePoint]:
    query = (
        select(PortfolioSnapshotRow.bar_ts, PortfolioSnapshotRow.equity, PortfolioSnapshotRow.positions_value)
        .where(PortfolioSnapshotRow.book == book)
        .order_by(PortfolioSnapshotRow.bar_ts)
    )
    return [CurvePoint(datetime_to_ms(ts), equity, value) for ts, equity, value in session.execute(query)]


def book_header(session: Session, book: str) -> tuple[Decimal, str, str | None]:
    """Starting cash, quote currency and timeframe (of the newest cycle) of a book."""
    row = session.get(BookRow, book)
    if row is None:
        raise KeyError(book)
    timeframe = session.scalars(
        select(TradingCycleRow.timeframe).where(TradingCycleRow.book == book).order_by(TradingCycleRow.bar_ts.desc()).limit(1)
    ).first()
    return row.starting_cash, row.quote_currency, timeframe
