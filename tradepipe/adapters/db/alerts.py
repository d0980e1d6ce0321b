"""Undelivered alerts, kept in ``system_metrics`` (no new table): one row per alert that failed to go out.

``metric_name = "alert_undelivered"``, ``value`` = delivery attempts so far, ``tags`` = the event, the
message body, the last error (never the URL) and ``delivered_at`` once a retry got it through.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from tradepipe.adapters.db.models import SystemMetric

UNDELIVERED = "alert_undelivered"


def record_undelivered(session: Session, body: Mapping[str, Any], attempts: int, error: str, when: datetime) -> int:
    row = SystemMetric(
        timestamp=when,
        metric_name=UNDELIVERED,
        value=float(attempts),
        tags={"event": body.get("event"), "body": dict(body), "error": error, "delivered_at": None},
    )
    session.add(row)
    session.flush()
    return row.id


def pending_undelivered(session: Session, limit: int = 20) -> list[SystemMetric]:
    """Alerts still waiting to go out, oldest first (filtered in Python: JSON null tests differ by database)."""
    rows = session.scalars(select(SystemMetric).where(SystemMetric.metric_name == UNDELIVERED).order_by(SystemMetric.id))
    return [row for row in rows if not (row.tags or {}).get("delivered_at")][:limit]


def mark_retry(row: SystemMetric, attempts: int, delivered_at: datetime | None, error: str | None) -> None:
    tags = dict(row.tags or {})
    tags["delivered_at"] = delivered_at.isoformat() if delivered_at else None
    if error:
        tags["error"] = error
    row.tags = tags  # a new dict, so the JSON column is written
    row.value = float(row.value + attempts)
