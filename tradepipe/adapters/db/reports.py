"""Reads and writes of the project manager: report inputs, stored reports and their email state,
suggestions and tasks, email settings, and the system-health metrics the trading cycle records."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any, Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from tradepipe.adapters.db.models import (
    AgentPerformance,
    AgentWorkLog,
    Book,
    EmailConfig,
    Fill,
    ImprovementSuggestion,
    Order,
    PortfolioSnapshot,
    ProjectReport,
    ProjectTask,
    SystemMetric,
    TradingCycle,
    WeightHistory,
)
from tradepipe.core.recommendations import Recommendation
from tradepipe.core.report import (
    AgentDay,
    AgentWork,
    CycleRecord,
    DeliveryFailure,
    EquityPoint,
    FillRecord,
    MetricRecord,
    OrderRecord,
    TaskRecord,
    WeightChange,
)

TASK_STATUSES = ("open", "acknowledged", "done", "dismissed")
LIVE_TASK_STATUSES = ("open", "acknowledged")
# Unsent reports older than this are not retried any more (a week of outage would otherwise mail 84 reports).
RETRY_UNSENT_FOR = timedelta(days=2)
MAX_RETRIES_PER_REPORT = 12


# --- report inputs ---------------------------------------------------------------------------------


def load_equity(session: Session, book: str, start: datetime, end: datetime) -> list[EquityPoint]:
    """Snapshots in [start, end) plus the last one before ``start`` (the P&L reference), oldest first."""
    before = session.execute(
        select(PortfolioSnapshot.bar_ts, PortfolioSnapshot.equity, PortfolioSnapshot.cash)
        .where(PortfolioSnapshot.book == book, PortfolioSnapshot.bar_ts < start)
        .order_by(PortfolioSnapshot.bar_ts.desc())
        .limit(1)
    ).all()
    rows = session.execute(
        select(PortfolioSnapshot.bar_ts, PortfolioSnapshot.equity, PortfolioSnapshot.cash)
        .where(PortfolioSnapshot.book == book, PortfolioSnapshot.bar_ts >= start, PortfolioSnapshot.bar_ts < end)
        .order_by(PortfolioSnapshot.bar_ts)
    ).all()
    return [EquityPoint(ts, float(equity), float(cash)) for ts, equity, cash in [*before, *rows]]


def latest_positions(session: Session, book: str, end: datetime) -> list[dict[str, Any]]:
    """Positions of the newest snapshot before ``end``, as floats for the report."""
    positions = session.scalars(
        select(PortfolioSnapshot.positions)
        .where(PortfolioSnapshot.book == book, PortfolioSnapshot.bar_ts < end)
        .order_by(PortfolioSnapshot.bar_ts.desc())
        .limit(1)
    ).first() or {}
    return [
        {"symbol": symbol, **{k: float(v) for k, v in values.items() if k in ("quantity", "average_price", "mark", "value")}}
        for symbol, values in sorted(positions.items())
    ]


def starting_cash(session: Session, book: str) -> float | None:
    row = session.get(Book, book)
    return float(row.starting_cash) if row else None


def load_cycles(session: Session, book: str, start: datetime, end: datetime) -> list[CycleRecord]:
    rows = session.execute(
        select(TradingCycle.bar_ts, TradingCycle.status, TradingCycle.skipped, TradingCycle.weights_source)
        .where(TradingCycle.book == book, TradingCycle.bar_ts >= start, TradingCycle.bar_ts < end)
        .order_by(TradingCycle.bar_ts)
    ).all()
    return [CycleRecord(ts, status, dict(skipped or {}), source) for ts, status, skipped, source in rows]


def load_orders(session: Session, book: str, start: datetime, end: datetime) -> list[OrderRecord]:
    rows = session.execute(
        select(Order.bar_ts, Order.symbol, Order.side, Order.status, Order.reject_kind)
        .where(Order.book == book, Order.bar_ts >= start, Order.bar_ts < end)
    ).all()
    return [OrderRecord(*row) for row in rows]


def load_fills(session: Session, book: str, start: datetime, end: datetime) -> list[FillRecord]:
    rows = session.execute(
        select(Fill.ts, Fill.symbol, Fill.fee, Fill.realized_pnl).where(Fill.book == book, Fill.ts >= start, Fill.ts < end)
    ).all()
    return [FillRecord(ts, symbol, float(fee), float(pnl)) for ts, symbol, fee, pnl in rows]


def load_performance_days(session: Session, book: str, first_day: date, last_day: date) -> list[AgentDay]:
    rows = session.scalars(
        select(AgentPerformance).where(
            AgentPerformance.book == book, AgentPerformance.date >= first_day, AgentPerformance.date <= last_day
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


def load_weight_changes(session: Session, book: str, start: datetime, end: datetime) -> list[WeightChange]:
    rows = session.scalars(
        select(WeightHistory).where(WeightHistory.book == book, WeightHistory.timestamp >= start, WeightHistory.timestamp < end)
    )
    return [
        WeightChange(r.timestamp, r.method, dict(r.old_weights or {}), dict(r.new_weights or {}), r.reason, r.weights_updated, r.is_live)
        for r in rows
    ]


def last_weights_update(session: Session, book: str, end: datetime) -> datetime | None:
    return session.scalars(
        select(WeightHistory.timestamp)
        .where(WeightHistory.book == book, WeightHistory.weights_updated.is_(True), WeightHistory.timestamp < end)
        .order_by(WeightHistory.timestamp.desc())
        .limit(1)
    ).first()


def current_weights(session: Session, book: str, end: datetime) -> dict[str, float]:
    """The weights the newest cycle before ``end`` traded with."""
    weights = session.scalars(
        select(TradingCycle.weights).where(TradingCycle.book == book, TradingCycle.bar_ts < end).order_by(TradingCycle.bar_ts.desc()).limit(1)
    ).first()
    return {str(k): float(v) for k, v in (weights or {}).items()}


def load_work(session: Session, book: str, start: datetime, end: datetime) -> list[AgentWork]:
    """What each agent did in the book's cycles of [start, end) (by bar time, like the rest of the window)."""
    rows = session.execute(
        select(TradingCycle.bar_ts, AgentWorkLog.agent_name, AgentWorkLog.task, AgentWorkLog.status, AgentWorkLog.duration_ms)
        .join(TradingCycle, AgentWorkLog.cycle_id == TradingCycle.id)
        .where(TradingCycle.book == book, TradingCycle.bar_ts >= start, TradingCycle.bar_ts < end)
    ).all()
    return [AgentWork(*row) for row in rows]


# The metrics a report reads; naming them lets the (metric_name, timestamp) index find the window.
REPORT_METRICS = ("cycle_latency_seconds", "data_fetch_errors", "data_fetch_retries", "run_failed", "cycle_skipped")


def load_metrics(session: Session, start: datetime, end: datetime, book: str | None = None) -> list[MetricRecord]:
    rows = session.execute(
        select(SystemMetric.timestamp, SystemMetric.metric_name, SystemMetric.value, SystemMetric.tags).where(
            SystemMetric.metric_name.in_(REPORT_METRICS), SystemMetric.timestamp >= start, SystemMetric.timestamp < end
        )
    ).all()
    records = [MetricRecord(ts, name, value, dict(tags or {})) for ts, name, value, tags in rows]
    return [m for m in records if book is None or m.tags.get("book") in (None, book)]


def open_tasks(session: Session) -> list[TaskRecord]:
    rows = session.scalars(
        select(ProjectTask).where(ProjectTask.status.in_(LIVE_TASK_STATUSES)).order_by(ProjectTask.priority, ProjectTask.id)
    )
    return [TaskRecord(r.id, r.title, r.status, r.priority, r.created_at) for r in rows]


# --- system health ---------------------------------------------------------------------------------


def record_metrics(session: Session, at: datetime, metrics: Iterable[tuple[str, float, dict[str, Any]]]) -> int:
    """``(name, value, tags)`` rows at ``at``; the caller commits."""
    rows = [SystemMetric(timestamp=at, metric_name=name, value=float(value), tags=tags) for name, value, tags in metrics]
    session.add_all(rows)
    return len(rows)


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
) -> ProjectReport:
    """One row per partition: a re-materialised window replaces its report (its email history stays)."""
    key = document["report"]["partition_key"]
    row = report_for_partition(session, key)
    if row is None:
        row = ProjectReport(partition_key=key, delivery={"status": document["delivery"]["status"], "attempts": []}, delivered_to=[])
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


def report_for_partition(session: Session, partition_key: str | None) -> ProjectReport | None:
    if partition_key is None:
        return None
    return session.scalars(select(ProjectReport).where(ProjectReport.partition_key == partition_key).limit(1)).first()


def report_by_id(session: Session, report_id: int) -> ProjectReport:
    row = session.get(ProjectReport, report_id)
    if row is None:
        raise LookupError(f"no project report #{report_id}")
    return row


def report_document(row: ProjectReport) -> dict[str, Any]:
    """The stored JSON document of a report (``content``)."""
    return json.loads(row.content)


def record_delivery(
    session: Session, report: ProjectReport, *, at: datetime, status: str, recipients: Sequence[str], error: str | None = None
) -> None:
    """One attempt: ``status`` sent, failed or not_configured. ``delivered_to`` lists who received it."""
    attempts = list((report.delivery or {}).get("attempts", []))
    attempts.append({"at": at.isoformat(), "status": status, "recipients": list(recipients), "error": error})
    report.delivery = {"status": status, "attempts": attempts, "last_error": error}
    if status == "sent":
        report.delivered_to = list(recipients)


def unsent_reports(session: Session, now: datetime, exclude_id: int | None = None) -> list[ProjectReport]:
    """Reports whose email failed, recent enough to retry and not retried too often, oldest first."""
    rows = session.scalars(
        select(ProjectReport)
        .where(ProjectReport.generated_at >= now - RETRY_UNSENT_FOR)
        .order_by(ProjectReport.period_end, ProjectReport.id)
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


# --- suggestions and tasks -----------------------------------------------------------------------


def record_suggestions(
    session: Session,
    recommendations: Sequence[Recommendation],
    *,
    seen_at: datetime,
    previous_window_end: datetime,
    persist_reports: int,
) -> list[ProjectTask]:
    """Upsert one improvement_suggestions row per recommendation key; open a task for a persisting one.

    ``seen_at`` is the report window's end: seeing the same window twice (a re-run) counts once; a key
    seen in the window right after ``previous_window_end`` extends its streak, otherwise the streak
    restarts. Keys not seen in this window are resolved. A task opens when the streak reaches
    ``persist_reports`` and the suggestion has no task yet (or its task was done and it came back);
    a dismissed task is never reopened. Returns the tasks opened."""
    seen = {rec.key: rec for rec in recommendations}
    rows = {r.rule_key: r for r in session.scalars(select(ImprovementSuggestion).where(ImprovementSuggestion.rule_key.is_not(None)))}
    opened = []
    for key, rec in seen.items():
        row = rows.get(key)
        if row is None:
            row = ImprovementSuggestion(
                rule_key=key, source=rec.rule, agent_name=(rec.subject or None) and rec.subject[:64], created_at=seen_at,
                times_seen=1, streak=1,
            )
            session.add(row)
        elif row.last_seen_at is None or row.last_seen_at < seen_at:
            row.times_seen += 1
            row.streak = row.streak + 1 if row.last_seen_at == previous_window_end else 1
        row.suggestion = f"{rec.title}. {rec.detail}"
        row.priority = rec.priority
        row.evidence = rec.evidence
        row.status = "open"
        if row.last_seen_at is None or row.last_seen_at < seen_at:
            row.last_seen_at = seen_at
        row.updated_at = seen_at
        session.flush()
        task = session.get(ProjectTask, row.task_id) if row.task_id else None
        if task is not None and task.status in LIVE_TASK_STATUSES:
            task.description = _task_description(row)
        reopen = task is not None and task.status == "done" and row.streak == persist_reports
        if row.streak >= persist_reports and (task is None or reopen):
            task = ProjectTask(title=rec.title[:256], description=_task_description(row), status="open", priority=rec.priority)
            session.add(task)
            session.flush()
            row.task_id = task.id
            opened.append(task)
    for stored_key, row in rows.items():
        if stored_key not in seen and row.status == "open" and row.last_seen_at is not None and row.last_seen_at < seen_at:
            row.status = "resolved"
            row.streak = 0
            row.updated_at = seen_at
    return opened


def _task_description(row: ImprovementSuggestion) -> str:
    return (
        f"From improvement suggestion #{row.id} ({row.rule_key}), seen in {row.streak} consecutive reports "
        f"({row.times_seen} in all), last {row.last_seen_at.isoformat() if row.last_seen_at else '?'}.\n{row.suggestion}"
    )


def list_tasks(session: Session, statuses: Sequence[str] = LIVE_TASK_STATUSES) -> list[ProjectTask]:
    return list(
        session.scalars(select(ProjectTask).where(ProjectTask.status.in_(statuses)).order_by(ProjectTask.priority, ProjectTask.id))
    )


class UnknownTaskError(LookupError):
    pass


def set_task_status(session: Session, task_id: int, status: str) -> ProjectTask:
    if status not in TASK_STATUSES:
        raise ValueError(f"unknown task status {status!r}: expected one of {', '.join(TASK_STATUSES)}")
    task = session.get(ProjectTask, task_id)
    if task is None:
        raise UnknownTaskError(f"no project task #{task_id} (see `tradepipe tasks list --all`)")
    task.status = status
    return task


# --- email settings --------------------------------------------------------------------------------


_EMAIL_FIELDS = ("smtp_host", "smtp_port", "smtp_user", "use_starttls", "sender", "recipients", "enabled")


def load_email_config(session: Session) -> dict[str, Any] | None:
    """The stored non-secret email settings (the newest row), or None; a disabled row counts as none."""
    row = session.scalars(select(EmailConfig).order_by(EmailConfig.id.desc()).limit(1)).first()
    if row is None or not row.enabled:
        return None
    return {name: getattr(row, name) for name in _EMAIL_FIELDS}


def store_email_config(session: Session, **values: Any) -> EmailConfig:
    """Update the one email_config row (create it on first use) with the given non-secret values."""
    unknown = set(values) - set(_EMAIL_FIELDS)
    if unknown:
        raise ValueError(f"email_config has no column for {sorted(unknown)} (the password comes from TRADEPIPE_SMTP_PASSWORD)")
    row = session.scalars(select(EmailConfig).order_by(EmailConfig.id.desc()).limit(1)).first()
    if row is None:
        row = EmailConfig(smtp_host=values.get("smtp_host") or "")
        session.add(row)
    for name, value in values.items():
        setattr(row, name, value)
    session.flush()
    return row


def latest_reports(session: Session, limit: int) -> list[ProjectReport]:
    """The newest ``limit`` stored reports, newest first (what the schema check re-validates)."""
    return list(session.scalars(select(ProjectReport).order_by(ProjectReport.generated_at.desc()).limit(limit)))
