"""Reads and writes of the project report: its inputs from the ledger, the stored reports and their email state.

Suggestions and tasks live in ``tasks.py``, the email settings in ``email_settings.py``, the system-health
metrics in ``system_metrics.py``."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from tradepipe.adapters.db.models import (
    AgentPerformanceRow,
    AgentWorkLogRow,
    BookRow,
    FillRow,
    OrderRow,
    PortfolioSnapshotRow,
    ProjectReportRow,
    TradingCycleRow,
    WeightHistoryRow,
)
from tradepipe.core.report_inputs import AgentDay, AgentWork, CycleRecord, DeliveryFailure, EquityPoint, FillRecord, OrderRecord, WeightDecisionRecord

# Unsent reports older than this are not retried any more (a week of outage would otherwise mail 84 reports).
RETRY_UNSENT_FOR = timedelta(days=2)
MAX_RETRIES_PER_REPORT = 12


# --- report inputs ---------------------------------------------------------------------------------


def load_equity(session: Session, book: str, start: datetime, end: datetime) -> list[EquityPoint]:
    """Snapshots in [start, end) plus the last one before ``start`` (the P&L reference), oldest first."""
    before = session.execute(
        select(PortfolioSnapshotRow.bar_ts, PortfolioSnapshotRow.equity, PortfolioSnapshotRow.cash)
        .where(PortfolioSnapshotRow.book == book, PortfolioSnapshotRow.bar_ts < start)
        .order_by(PortfolioSnapshotRow.bar_ts.desc())
        .limit(1)
    ).all()
    rows = session.execute(
        select(PortfolioSnapshotRow.bar_ts, PortfolioSnapshotRow.equity, PortfolioSnapshotRow.cash)
        .where(PortfolioSnapshotRow.book == book, PortfolioSnapshotRow.bar_ts >= start, PortfolioSnapshotRow.bar_ts < end)
        .order_by(PortfolioSnapshotRow.bar_ts)
    ).all()
    return [EquityPoint(ts, float(equity), float(cash)) for ts, equity, cash in [*before, *rows]]


def latest_positions(session: Session, book: str, end: datetime) -> list[dict[str, Any]]:
    """Positions of the newest snapshot before ``end``, as floats for the report."""
    positions = session.scalars(
        select(PortfolioSnapshotRow.positions)
        .where(PortfolioSnapshotRow.book == book, PortfolioSnapshotRow.bar_ts < end)
        .order_by(PortfolioSnapshotRow.bar_ts.desc())
        .limit(1)
    ).first() or {}
    return [
        {"symbol": symbol, **{k: float(v) for k, v in values.items() if k in ("quantity", "average_price", "mark", "value")}}
        for symbol, values in sorted(positions.items())
    ]


def starting_cash(session: Session, book: str) -> float | None:
    row = session.get(BookRow, book)
    return float(row.starting_cash) if row else None


def load_cycles(session: Session, book: str, start: datetime, end: datetime) -> list[CycleRecord]:
    rows = session.execute(
        select(TradingCycleRow.bar_ts, TradingCycleRow.status, TradingCycleRow.skipped, TradingCycleRow.weights_source)
        .where(TradingCycleRow.book == book, TradingCycleRow.bar_ts >= start, TradingCycleRow.bar_ts < end)
        .order_by(TradingCycleRow.bar_ts)
    ).all()
    return [CycleRecord(ts, status, dict(skipped or {}), source) for ts, status, skipped, source in rows]


def load_orders(session: Session, book: str, start: datetime, end: datetime) -> list[OrderRecord]:
    rows = session.execute(
        select(OrderRow.bar_ts, OrderRow.symbol, OrderRow.side, OrderRow.status, OrderRow.reject_kind)
        .where(OrderRow.book == book, OrderRow.bar_ts >= start, OrderRow.bar_ts < end)
    ).all()
    return [OrderRecord(*row) for row in rows]


def load_fills(session: Session, book: str, start: datetime, end: datetime) -> list[FillRecord]:
    rows = session.execute(
        select(FillRow.ts, FillRow.symbol, FillRow.fee, FillRow.realized_pnl).where(FillRow.book == book, FillRow.ts >= start, FillRow.ts < end)
    ).all()
    return [FillRecord(ts, symbol, float(fee), float(pnl)) for ts, symbol, fee, pnl in rows]


def load_performance_days(session: Session, book: str, first_day: date, last_day: date) -> list[AgentDay]:
    rows = session.scalars(
        select(AgentPerformanceRow).where(
            AgentPerformanceRow.book == book, AgentPerformanceRow.date >= first_day, AgentPerformanceRow.date <= last_day
        )
    )
    return [
        AgentDay(
            day=r.date, agent=r.agent_name, sharpe=r.sharpe_ratio, win_rate=r.win_rate, total_return=r.total_return,
            signals=r.total_signals, attributed_pnl=float(r.attributed_pnl), rank=r.rank, top=r.is_top_performer,
            under=r.is_underperformer,
        )
        for r in rows
    ]


def load_weight_changes(session: Session, book: str, start: datetime, end: datetime) -> list[WeightDecisionRecord]:
    rows = session.scalars(
        select(WeightHistoryRow).where(WeightHistoryRow.book == book, WeightHistoryRow.timestamp >= start, WeightHistoryRow.timestamp < end)
    )
    return [
        WeightDecisionRecord(r.timestamp, r.method, dict(r.old_weights or {}), dict(r.new_weights or {}), r.reason, r.weights_updated, r.is_live)
        for r in rows
    ]


def last_weights_update(session: Session, book: str, end: datetime) -> datetime | None:
    return session.scalars(
        select(WeightHistoryRow.timestamp)
        .where(WeightHistoryRow.book == book, WeightHistoryRow.weights_updated.is_(True), WeightHistoryRow.timestamp < end)
        .order_by(WeightHistoryRow.timestamp.desc())
        .limit(1)
    ).first()


def current_weights(session: Session, book: str, end: datetime) -> dict[str, float]:
    """The weights the newest cycle before ``end`` traded with."""
    weights = session.scalars(
        select(TradingCycleRow.weights).where(TradingCycleRow.book == book, TradingCycleRow.bar_ts < end).order_by(TradingCycleRow.bar_ts.desc()).limit(1)
    ).first()
    return {str(k): float(v) for k, v in (weights or {}).items()}


def load_work(session: Session, book: str, start: datetime, end: datetime) -> list[AgentWork]:
    """What each agent did in the book's cycles of [start, end) (by bar time, like the rest of the window)."""
    rows = session.execute(
        select(TradingCycleRow.bar_ts, AgentWorkLogRow.agent_name, AgentWorkLogRow.task, AgentWorkLogRow.status, AgentWorkLogRow.duration_ms)
        .join(TradingCycleRow, AgentWorkLogRow.cycle_id == TradingCycleRow.id)
        .where(TradingCycleRow.book == book, TradingCycleRow.bar_ts >= start, TradingCycleRow.bar_ts < end)
    ).all()
    return [AgentWork(*row) for row in rows]


# The metrics a report reads; naming them lets the (metric_name, timestamp) index find the window.
# --- stored reports and their email --------------------------------------------------------------


def save_report(
    session: Session,
    *,
    document: dict[str, Any],
    json_text: str,
    html: str,
    files: dict[str, str],
    window_start: datetime,
    window_end: datetime,
    generated_at: datetime,
    run_id: str | None,
) -> ProjectReportRow:
    """One row per partition: a re-materialised window replaces its report (its email history stays)."""
    key = document["report"]["partition_key"]
    row = report_for_partition(session, key)
    if row is None:
        row = ProjectReportRow(partition_key=key, delivery={"status": document["delivery"]["status"], "attempts": []}, delivered_to=[])
        session.add(row)
    row.generated_at = generated_at
    row.period_start = window_start
    row.period_end = window_end
    row.summary = document["summary"]
    row.recommendations = document["recommendations"]
    row.content = json_text
    row.html = html
    row.files = files
    row.run_id = run_id
    session.flush()
    return row


def report_for_partition(session: Session, partition_key: str | None) -> ProjectReportRow | None:
    if partition_key is None:
        return None
    return session.scalars(select(ProjectReportRow).where(ProjectReportRow.partition_key == partition_key).limit(1)).first()


def report_by_id(session: Session, report_id: int) -> ProjectReportRow:
    row = session.get(ProjectReportRow, report_id)
    if row is None:
        raise LookupError(f"no project report #{report_id}")
    return row


def report_document(row: ProjectReportRow) -> dict[str, Any]:
    """The stored JSON document of a report (``content``)."""
    return json.loads(row.content)


def record_delivery(
    session: Session, report: ProjectReportRow, *, at: datetime, status: str, recipients: Sequence[str], error: str | None = None
) -> None:
    """One attempt: ``status`` sent, failed or not_configured. ``delivered_to`` lists who received it."""
    attempts = list((report.delivery or {}).get("attempts", []))
    attempts.append({"at": at.isoformat(), "status": status, "recipients": list(recipients), "error": error})
    report.delivery = {"status": status, "attempts": attempts, "last_error": error}
    if status == "sent":
        report.delivered_to = list(recipients)


def unsent_reports(session: Session, now: datetime, exclude_id: int | None = None) -> list[ProjectReportRow]:
    """Reports whose email failed, recent enough to retry and not retried too often, oldest first."""
    rows = session.scalars(
        select(ProjectReportRow)
        .where(ProjectReportRow.generated_at >= now - RETRY_UNSENT_FOR)
        .order_by(ProjectReportRow.period_end, ProjectReportRow.id)
    )
    return [
        r
        for r in rows
        if r.id != exclude_id
        and (r.delivery or {}).get("status") == "failed"
        and len((r.delivery or {}).get("attempts", [])) <= MAX_RETRIES_PER_REPORT
    ]


def delivery_failures(session: Session, now: datetime, exclude_id: int | None = None) -> list[DeliveryFailure]:
    failures = []
    for report in unsent_reports(session, now, exclude_id):
        last = report.delivery["attempts"][-1]
        failures.append(DeliveryFailure(report.id, datetime.fromisoformat(last["at"]), str(last.get("error") or "")))
    return failures


def latest_reports(session: Session, limit: int) -> list[ProjectReportRow]:
    """The newest ``limit`` stored reports, newest first (what the schema check re-validates)."""
    return list(session.scalars(select(ProjectReportRow).order_by(ProjectReportRow.generated_at.desc()).limit(limit)))
