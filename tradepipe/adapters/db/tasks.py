"""Improvement suggestions and the project tasks they open when they persist across reports."""

from __future__ import annotations

from datetime import datetime
from typing import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from tradepipe.adapters.db.models import (
    ImprovementSuggestionRow,
    ProjectTaskRow,
)
from tradepipe.core.recommendations import Recommendation
from tradepipe.core.report_inputs import TaskRecord
from tradepipe.core.timeframes import iso_utc

TASK_STATUSES = ("open", "acknowledged", "done", "dismissed")
LIVE_TASK_STATUSES = ("open", "acknowledged")


def open_tasks(session: Session) -> list[TaskRecord]:
    rows = session.scalars(
        select(ProjectTaskRow).where(ProjectTaskRow.status.in_(LIVE_TASK_STATUSES)).order_by(ProjectTaskRow.priority, ProjectTaskRow.id)
    )
    return [TaskRecord(r.id, r.title, r.status, r.priority, r.created_at) for r in rows]



def record_suggestions(
    session: Session,
    recommendations: Sequence[Recommendation],
    *,
    seen_at: datetime,
    previous_window_end: datetime,
    persist_reports: int,
) -> list[ProjectTaskRow]:
    """Upsert one improvement_suggestions row per recommendation key; open a task for a persisting one.

    ``seen_at`` is the report window's end: seeing the same window twice (a re-run) counts once; a key
    seen in the window right after ``previous_window_end`` extends its streak, otherwise the streak
    restarts. Keys not seen in this window are resolved. A task opens when the streak reaches
    ``persist_reports`` and the suggestion has no task yet (or its task was done and it came back);
    a dismissed task is never reopened. Returns the tasks opened."""
    seen = {rec.key: rec for rec in recommendations}
    rows = {r.rule_key: r for r in session.scalars(select(ImprovementSuggestionRow).where(ImprovementSuggestionRow.rule_key.is_not(None)))}
    opened = []
    for key, rec in seen.items():
        row = rows.get(key)
        if row is None:
            row = ImprovementSuggestionRow(
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
        task = session.get(ProjectTaskRow, row.task_id) if row.task_id else None
        if task is not None and task.status in LIVE_TASK_STATUSES:
            task.description = _task_description(row)
        reopen = task is not None and task.status == "done" and row.streak == persist_reports
        if row.streak >= persist_reports and (task is None or reopen):
            task = ProjectTaskRow(title=rec.title[:256], description=_task_description(row), status="open", priority=rec.priority)
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


def _task_description(row: ImprovementSuggestionRow) -> str:
    return (
        f"From improvement suggestion #{row.id} ({row.rule_key}), seen in {row.streak} consecutive reports "
        f"({row.times_seen} in all), last {iso_utc(row.last_seen_at, timespec='auto', suffix='+00:00') if row.last_seen_at else '?'}.\n{row.suggestion}"
    )


def list_tasks(session: Session, statuses: Sequence[str] = LIVE_TASK_STATUSES) -> list[ProjectTaskRow]:
    return list(
        session.scalars(select(ProjectTaskRow).where(ProjectTaskRow.status.in_(statuses)).order_by(ProjectTaskRow.priority, ProjectTaskRow.id))
    )


class UnknownTaskError(LookupError):
    pass


def set_task_status(session: Session, task_id: int, status: str) -> ProjectTaskRow:
    if status not in TASK_STATUSES:
        raise ValueError(f"unknown task status {status!r}: expected one of {', '.join(TASK_STATUSES)}")
    task = session.get(ProjectTaskRow, task_id)
    if task is None:
        raise UnknownTaskError(f"no project task #{task_id} (see `tradepipe tasks list --all`)")
    task.status = status
    return task
