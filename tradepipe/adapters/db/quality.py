"""Data-quality reads and writes: why a symbol was kept out of a trading cycle (``agent_work_log``,
``system_metrics``), and what the ledger checks read back.

Users of the old system watch both tables; the reports read ``system_metrics``:

    SELECT timestamp, tags->>'symbol', tags->>'rule', tags->>'reason'
    FROM system_metrics WHERE metric_name = 'market_bars_blocked' ORDER BY timestamp DESC;
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tradepipe.adapters.db.ledger import datetime_to_ms
from tradepipe.adapters.db.models import (
    AgentWorkLogRow,
    BookRow,
    FillRow,
    OrderRow,
    PortfolioSnapshotRow,
    PositionRow,
    SignalRow,
    SystemMetricRow,
    TradeAttributionRow,
    TradingCycleRow,
)
from tradepipe.core.bar_quality import BarDefect

if TYPE_CHECKING:
    import pandas as pd

BLOCKED_METRIC = "market_bars_blocked"
DATA_QUALITY_AGENT = "data_quality"


def record_blocked_symbols(
    session: Session,
    cycle: TradingCycleRow,
    skipped: Mapping[str, str],
    defects: Mapping[str, Sequence[BarDefect]],
    run_id: str | None,
    *,
    system_health: bool = True,
) -> None:
    """When symbols were kept out of the cycle: one ``agent_work_log`` row (agent ``data_quality``, task
    ``market_bars``) and, for the live book (``system_health``), one ``system_metrics`` row per symbol
    (``skipped``: symbol -> reason; ``defects``: the blocking bar defects behind a reason): a backtest's
    bad bars are not the system's health. A cycle that kept nobody out writes nothing."""
    work = blocked_work_row(cycle.id, cycle.bar_ts, skipped, defects, run_id)
    if work is None:
        return
    session.add(AgentWorkLogRow(**work))
    if not system_health:
        return
    bar, blocked = work["details"]["bar"], work["details"]["blocked"]
    for symbol, reason in sorted(blocked.items()):
        rules = sorted({defect.rule for defect in defects.get(symbol, ())})
        session.add(
            SystemMetricRow(
                metric_name=BLOCKED_METRIC,
                value=1.0,
                tags={
                    "book": cycle.book,
                    "bar": bar,
                    "symbol": symbol,
                    "rule": ",".join(rules) if rules else "market_data",
                    "reason": reason,
                    "run_id": run_id,
                },
            )
        )


def blocked_work_row(
    cycle_id: int, bar_ts: datetime, skipped: Mapping[str, str], defects: Mapping[str, Sequence[BarDefect]], run_id: str | None
) -> dict[str, Any] | None:
    """The ``agent_work_log`` row (agent ``data_quality``) of a cycle that kept symbols out; None when it kept nobody out."""
    blocked = dict(skipped)
    if not blocked:
        return None
    return {
        "agent_name": DATA_QUALITY_AGENT,
        "task": "market_bars",
        "status": "blocked",
        "details": {
            "bar": bar_ts.isoformat(),
            "blocked": blocked,
            "defects": {symbol: [defect.as_dict() for defect in found[:20]] for symbol, found in defects.items() if found},
        },
        "duration_ms": None,
        "cycle_id": cycle_id,
        "run_id": run_id,
    }


def book_fills(session: Session, book: str) -> list[FillRow]:
    """Every fill of ``book``, in the order they were booked."""
    return list(session.scalars(select(FillRow).where(FillRow.book == book).order_by(FillRow.ts, FillRow.id)))


def starting_cash(session: Session, book: str) -> Decimal | None:
    row = session.get(BookRow, book)
    return row.starting_cash if row is not None else None


def stored_positions(session: Session, book: str) -> dict[str, Decimal]:
    """The ``positions`` table's non-zero quantities of ``book``."""
    rows = session.scalars(select(PositionRow).where(PositionRow.book == book))
    return {row.symbol: row.quantity for row in rows if row.quantity != 0}


def latest_cycle_orders(session: Session, book: str) -> tuple[TradingCycleRow | None, PortfolioSnapshotRow | None, list[OrderRow]]:
    """The book's newest cycle, its snapshot (the book its orders were sized on) and the orders it let through."""
    cycle = session.scalars(select(TradingCycleRow).where(TradingCycleRow.book == book).order_by(TradingCycleRow.bar_ts.desc()).limit(1)).first()
    if cycle is None:
        return None, None, []
    snapshot = session.scalars(select(PortfolioSnapshotRow).where(PortfolioSnapshotRow.cycle_id == cycle.id)).first()
    orders = session.scalars(select(OrderRow).where(OrderRow.cycle_id == cycle.id, OrderRow.status != "rejected").order_by(OrderRow.id))
    return cycle, snapshot, list(orders)


def latest_cycle_signals(session: Session, book: str) -> pd.DataFrame:
    """The signal rows of the book's newest cycle: agent_name, symbol, bar_ts (ms), value, confidence, abstained."""
    import pandas as pd  # only the data-quality checks read a frame; the trading cycle imports this module

    cycle = session.scalars(select(TradingCycleRow).where(TradingCycleRow.book == book).order_by(TradingCycleRow.bar_ts.desc()).limit(1)).first()
    columns = ["agent_name", "symbol", "bar_ts", "value", "confidence", "abstained"]
    if cycle is None:
        return pd.DataFrame(columns=columns)
    rows = session.execute(
        select(SignalRow.agent_name, SignalRow.symbol, SignalRow.bar_ts, SignalRow.value, SignalRow.confidence, SignalRow.abstained)
        .where(SignalRow.cycle_id == cycle.id)
        .order_by(SignalRow.id)
    ).all()
    frame = pd.DataFrame([tuple(row) for row in rows], columns=columns)
    frame["bar_ts"] = [datetime_to_ms(moment) for moment in frame["bar_ts"]]
    return frame


def attribution_with_fills(session: Session, book: str, day: date) -> list[tuple[int, Decimal, Decimal]]:
    """``(fill_id, agent part, the fill's realised P&L)`` for the day's attribution rows."""
    rows = session.execute(
        select(TradeAttributionRow.fill_id, TradeAttributionRow.pnl, FillRow.realized_pnl)
        .join(FillRow, FillRow.id == TradeAttributionRow.fill_id)
        .where(TradeAttributionRow.book == book, TradeAttributionRow.date == day)
        .order_by(TradeAttributionRow.fill_id, TradeAttributionRow.agent_name)
    ).all()
    return [(int(fill_id), part, realized) for fill_id, part, realized in rows]
