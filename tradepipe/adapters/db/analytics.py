"""Reads and writes for the analytics assets: attribution, performance, weight history.

Every writer replaces the rows of its (book, partition) inside the caller's transaction, so a
re-materialised partition replaces its rows and never duplicates them.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tradepipe.adapters.db.models import AgentPerformanceRow, FillRow, SignalRow, TradeAttributionRow
# Weight history moved to tradepipe.adapters.db.weights; re-exported because other modules import them from here.
from tradepipe.adapters.db.weights import live_weights, promote  # noqa: F401


def load_signals(session: Session, book: str, start: datetime, end: datetime) -> pd.DataFrame:
    """Signals with bar_ts in [start, end), one row per (bar, symbol, agent)."""
    rows = session.execute(
        select(SignalRow.bar_ts, SignalRow.symbol, SignalRow.agent_name, SignalRow.value, SignalRow.confidence, SignalRow.abstained, SignalRow.close)
        .where(SignalRow.book == book, SignalRow.bar_ts >= start, SignalRow.bar_ts < end)
        .order_by(SignalRow.bar_ts)
    ).all()
    return pd.DataFrame(rows, columns=["bar_ts", "symbol", "agent_name", "value", "confidence", "abstained", "close"])


def signal_counts(signals: pd.DataFrame) -> dict[str, int]:
    """Votes cast per agent (abstentions are not signals)."""
    if signals.empty:
        return {}
    voted = signals[~signals["abstained"].astype(bool)]
    return {str(k): int(v) for k, v in voted.groupby("agent_name").size().items()}


def load_realized_fills(session: Session, book: str, start: datetime, end: datetime) -> list[FillRow]:
    """Fills that realised P&L in [start, end): closing or reducing a position, and the fee of an
    opening fill (realised when paid), so attributed P&L adds up to the ledger's realised P&L.

    Filtered in Python: money columns are text on SQLite, where ``> 0`` would compare strings.
    """
    fills = session.scalars(
        select(FillRow).where(FillRow.book == book, FillRow.ts >= start, FillRow.ts < end).order_by(FillRow.ts, FillRow.id)
    )
    return [fill for fill in fills if fill.closed_quantity > 0 or fill.realized_pnl != 0]


def replace_attribution(session: Session, book: str, day: date, rows: Iterable[dict[str, Any]]) -> int:
    session.execute(delete(TradeAttributionRow).where(TradeAttributionRow.book == book, TradeAttributionRow.date == day))
    objects = [TradeAttributionRow(book=book, date=day, **row) for row in rows]
    session.add_all(objects)
    return len(objects)


def load_attribution(session: Session, book: str, first_day: date, last_day: date) -> pd.DataFrame:
    """Attributed parts in the days, with ``closing`` telling a closed/reduced trade from an entry fee."""
    rows = session.execute(
        select(
            TradeAttributionRow.agent_name,
            TradeAttributionRow.pnl,
            TradeAttributionRow.fill_id,
            TradeAttributionRow.date,
            FillRow.closed_quantity != 0,
        )
        .join(FillRow, FillRow.id == TradeAttributionRow.fill_id)
        .where(TradeAttributionRow.book == book, TradeAttributionRow.date >= first_day, TradeAttributionRow.date <= last_day)
    ).all()
    return pd.DataFrame(rows, columns=["agent_name", "pnl", "fill_id", "date", "closing"])


METRIC_COLUMNS = {
    "sharpe": "sharpe_ratio",
    "sortino": "sortino_ratio",
    "volatility": "volatility",
    "total_return": "total_return",
    "max_drawdown": "max_drawdown",
    "calmar": "calmar_ratio",
    "win_rate": "win_rate",
    "profit_factor": "profit_factor",
    "avg_win": "avg_win",
    "avg_loss": "avg_loss",
    "max_consecutive_wins": "max_consecutive_wins",
    "max_consecutive_losses": "max_consecutive_losses",
    "signal_count": "total_signals",
    "trade_count": "total_trades",
    "attributed_pnl": "attributed_pnl",
    "trade_win_rate": "trade_win_rate",
    "trade_profit_factor": "trade_profit_factor",
    "rank": "rank",
    "is_top_performer": "is_top_performer",
    "is_underperformer": "is_underperformer",
    "null_reasons": "null_reasons",
}


def replace_performance(
    session: Session, book: str, day: date, window_days: int, rows: Mapping[str, Mapping[str, Any]], run_id: str | None
) -> None:
    session.execute(delete(AgentPerformanceRow).where(AgentPerformanceRow.book == book, AgentPerformanceRow.date == day))
    for agent, row in rows.items():
        values = {column: row[key] for key, column in METRIC_COLUMNS.items() if key in row}
        session.add(AgentPerformanceRow(book=book, date=day, agent_name=agent, window_days=window_days, run_id=run_id, **values))


def load_performance(session: Session, book: str, day: date) -> dict[str, dict[str, Any]]:
    """The partition's rows keyed by agent, with the metric names the core uses."""
    result: dict[str, dict[str, Any]] = {}
    for row in session.scalars(select(AgentPerformanceRow).where(AgentPerformanceRow.book == book, AgentPerformanceRow.date == day)):
        result[row.agent_name] = {key: getattr(row, column) for key, column in METRIC_COLUMNS.items()}
        result[row.agent_name]["window_days"] = row.window_days
    return result


def load_performance_columns(session: Session, book: str, day: date, columns: Sequence[str]) -> list[tuple[Any, ...]]:
    """The partition's ``agent_performance`` rows, only ``columns`` (table column names), by agent."""
    selected = [getattr(AgentPerformanceRow, name) for name in columns]
    rows = session.execute(
        select(*selected).where(AgentPerformanceRow.book == book, AgentPerformanceRow.date == day).order_by(AgentPerformanceRow.agent_name)
    ).all()
    return [tuple(row) for row in rows]
