"""The system-health metrics (``system_metrics``): what the trading cycle and the sensors record, what the report reads."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from tradepipe.adapters.db.models import (
    SystemMetricRow,
)
from tradepipe.core.report_inputs import MetricRecord


REPORT_METRICS = ("cycle_latency_seconds", "data_fetch_errors", "data_fetch_retries", "run_failed", "cycle_skipped")


def load_metrics(session: Session, start: datetime, end: datetime, book: str | None = None) -> list[MetricRecord]:
    rows = session.execute(
        select(SystemMetricRow.timestamp, SystemMetricRow.metric_name, SystemMetricRow.value, SystemMetricRow.tags).where(
            SystemMetricRow.metric_name.in_(REPORT_METRICS), SystemMetricRow.timestamp >= start, SystemMetricRow.timestamp < end
        )
    ).all()
    records = [MetricRecord(ts, name, value, dict(tags or {})) for ts, name, value, tags in rows]
    return [m for m in records if book is None or m.tags.get("book") in (None, book)]



def record_metrics(session: Session, at: datetime, metrics: Iterable[tuple[str, float, dict[str, Any]]]) -> int:
    """``(name, value, tags)`` rows at ``at``; the caller commits."""
    rows = [SystemMetricRow(timestamp=at, metric_name=name, value=float(value), tags=tags) for name, value, tags in metrics]
    session.add_all(rows)
    return len(rows)
