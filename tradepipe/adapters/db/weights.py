"""Reads and writes of ``weight_history``: the optimiser's decisions and the one live row per book."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tradepipe.adapters.db.models import WeightHistoryRow


def live_weights(session: Session, book: str) -> WeightHistoryRow | None:
    """The book's live weight set (the most recently promoted, should two ever be marked live)."""
    return session.scalars(
        select(WeightHistoryRow)
        .where(WeightHistoryRow.book == book, WeightHistoryRow.is_live.is_(True))
        .order_by(WeightHistoryRow.promoted_at.desc(), WeightHistoryRow.id.desc())
        .limit(1)
    ).first()


def promote(session: Session, row: WeightHistoryRow, when: datetime) -> None:
    """Make ``row`` the book's live weights; exactly one row per book is live.

    The caller holds the book's weights lock (``hold_weights_lock``) for the transaction; the unique
    index on live rows (one per book) makes a second live row impossible even without it."""
    session.execute(
        update(WeightHistoryRow)
        .where(WeightHistoryRow.book == row.book, WeightHistoryRow.is_live.is_(True), WeightHistoryRow.id != row.id)
        .values(is_live=False)
        .execution_options(synchronize_session="fetch")
    )
    session.flush()  # the old live row is cleared before the new one is marked (the index checks each statement)
    row.is_live = True
    row.promoted_at = when
    session.flush()


def record_weight_decision(session: Session, **values: Any) -> WeightHistoryRow:
    """Add one optimiser decision (columns of ``weight_history``); flushed so its id is known."""
    row = WeightHistoryRow(**values)
    session.add(row)
    session.flush()
    return row


def find_weight_decision(session: Session, weight_history_id: int) -> WeightHistoryRow | None:
    return session.get(WeightHistoryRow, weight_history_id)


def latest_weight_decision(session: Session, book: str, partition_date: date) -> WeightHistoryRow | None:
    """The newest decision recorded for the book's partition (a re-materialisation adds a row)."""
    return session.scalars(
        select(WeightHistoryRow)
        .where(WeightHistoryRow.book == book, WeightHistoryRow.partition_date == partition_date)
        .order_by(WeightHistoryRow.id.desc())
        .limit(1)
    ).first()


def recent_weight_decisions(session: Session, book: str, limit: int) -> list[WeightHistoryRow]:
    return list(
        session.scalars(select(WeightHistoryRow).where(WeightHistoryRow.book == book).order_by(WeightHistoryRow.id.desc()).limit(limit))
    )
