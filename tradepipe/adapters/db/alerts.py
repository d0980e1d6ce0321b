"""Alert bookkeeping in ``system_metrics`` (no new table): ``alert_sent`` per alert that went out, and one
``alert_undelivered`` row per alert that failed to.

``metric_name = "alert_undelivered"``, ``value`` = delivery attempts so far, ``tags`` = the event, its
de-duplication key, the message body, the last error (never the URL) and ``delivered_at`` once a retry got it through.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from tradepipe.adapters.db.models import SystemMetricRow

UNDELIVERED = "alert_undelivered"
SENT = "alert_sent"


def alert_seen(session: Session, key: str) -> bool:
    """An alert with this key went out or is waiting to (one alert per halt, stale set, summary...)."""
    rows = session.scalars(select(SystemMetricRow.tags).where(SystemMetricRow.metric_name.in_((SENT, UNDELIVERED))))
    return any((tags or {}).get("key") == key for tags in rows)


def record_sent(session: Session, event: str, key: str | None, attempts: int, when: datetime) -> None:
    session.add(SystemMetricRow(timestamp=when, metric_name=SENT, value=float(attempts), tags={"event": event, "key": key}))


def record_undelivered(
    session: Session, body: Mapping[str, Any], attempts: int, error: str, when: datetime, key: str | None = None
) -> int:
    row = SystemMetricRow(
        timestamp=when,
        metric_name=UNDELIVERED,
        value=float(attempts),
        tags={"event": body.get("event"), "key": key, "body": dict(body), "error": error, "delivered_at": None},
    )
    session.add(row)
    session.flush()
    return row.id


def pending_undelivered(session: Session, limit: int = 20) -> list[SystemMetricRow]:
    """Alerts still waiting to go out, oldest first (filtered in Python: JSON null tests differ by database)."""
    rows = session.scalars(select(SystemMetricRow).where(SystemMetricRow.metric_name == UNDELIVERED).order_by(SystemMetricRow.id))
    return [row for row in rows if not (row.tags or {}).get("delivered_at")][:limit]


def mark_retry(row: SystemMetricRow, attempts: int, delivered_at: datetime | None, error: str | None) -> None:
    tags = dict(row.tags or {})
    tags["delivered_at"] = delivered_at.isoformat() if delivered_at else None
    if error:
        tags["error"] = error
    row.tags = tags  # a new dict, so the JSON column is written
    row.value = float(row.value + attempts)
