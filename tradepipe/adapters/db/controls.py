"""The ``control_commands`` table: queued by the CLI, the Dagster job or the HTTP endpoint; applied by the cycle."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tradepipe.adapters.db.models import BookRow, ControlCommandRow, TradingCycleRow, utcnow
from tradepipe.core.controls import ControlCommand, ControlPlan, checked_command


def queue_control(
    session: Session, book: str, action: str, symbol: str | None, reason: str, requested_by: str, source: str, symbols: Collection[str]
) -> ControlCommandRow:
    """Record a pending command (validated first: :class:`ControlInputError` is one line for the trader)."""
    action, symbol, reason, requested_by = checked_command(action, symbol, reason, requested_by, symbols)
    row = ControlCommandRow(book=book, action=action, symbol=symbol, reason=reason, requested_by=requested_by, source=source, status="pending", outcome="")
    session.add(row)
    session.flush()
    return row


def pending_controls(session: Session, book: str) -> list[ControlCommand]:
    rows = session.scalars(
        select(ControlCommandRow).where(ControlCommandRow.book == book, ControlCommandRow.status == "pending").order_by(ControlCommandRow.id)
    )
    return [ControlCommand(r.id, r.action, r.symbol, r.requested_by, r.reason) for r in rows]


def paused_by(session: Session, book: str) -> str | None:
    """Who paused the book's entries and why, while the last applied pause/resume is a pause."""
    row = session.scalars(
        select(ControlCommandRow)
        .where(ControlCommandRow.book == book, ControlCommandRow.status == "applied", ControlCommandRow.action.in_(("pause", "resume")))
        .order_by(ControlCommandRow.applied_at.desc(), ControlCommandRow.id.desc())
        .limit(1)
    ).first()
    if row is None or row.action != "pause":
        return None
    return f"by {row.requested_by} ({row.reason})"


def record_control_outcomes(session: Session, plan: ControlPlan, cycle_id: int, at: datetime | None = None) -> None:
    """Applied commands get their outcome and cycle; waiting ones stay pending with the reason they wait."""
    for command_id, outcome in plan.applied.items():
        row = session.get(ControlCommandRow, command_id)
        if row is not None:
            row.status, row.outcome, row.applied_at, row.cycle_id = "applied", outcome, at or utcnow(), cycle_id
    for command_id, why in plan.waiting.items():
        row = session.get(ControlCommandRow, command_id)
        if row is not None:
            row.outcome = why


def recent_controls(session: Session, book: str, limit: int = 20) -> list[ControlCommandRow]:
    return list(
        session.scalars(select(ControlCommandRow).where(ControlCommandRow.book == book).order_by(ControlCommandRow.id.desc()).limit(limit))
    )


def last_cycle_finished(session: Session, book: str) -> tuple[bool, datetime | None]:
    """Whether the book exists, and when its newest cycle finished (None: it never traded)."""
    if session.get(BookRow, book) is None:
        return False, None
    finished = session.scalars(
        select(TradingCycleRow.finished_at).where(TradingCycleRow.book == book).order_by(TradingCycleRow.bar_ts.desc()).limit(1)
    ).first()
    return True, finished
