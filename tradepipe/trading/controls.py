"""Queueing a trader's control command for the trading cycle: the one path the CLI, the Dagster job and
the HTTP endpoint share. Nothing here trades: the cycle applies the command under its book lock."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from tradepipe.adapters.db.controls import last_cycle_finished, queue_control
from tradepipe.config.settings import Settings
from tradepipe.core.timeframes import iso_utc, timeframe_ms

# A book whose last cycle finished within this many bars counts as running.
RUNNING_WITHIN_BARS = 3


@dataclass(frozen=True)
class QueuedControl:
    id: int
    book: str
    action: str
    symbol: str | None
    running: bool
    message: str


def submit_control(
    settings: Settings, sessions: sessionmaker[Session], *, book: str, action: str, symbol: str | None, reason: str,
    requested_by: str, source: str, now_ms: int | None = None,
) -> QueuedControl:
    """Record the command as pending and say whether the book is running (applied next bar) or not (queued until it trades).

    Raises :class:`tradepipe.core.controls.ControlInputError` (one line) for a bad command; nothing is recorded then.
    """
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    with sessions.begin() as session:
        row = queue_control(session, book, action, symbol, reason, requested_by, source, settings.symbols)
        exists, finished = last_cycle_finished(session, book)
        command_id, action, symbol = row.id, row.action, row.symbol
    what = f"{action} {symbol}" if symbol else action
    window_ms = RUNNING_WITHIN_BARS * timeframe_ms(settings.resolved_timeframe)
    running = finished is not None and now_ms - int(finished.timestamp() * 1000) <= window_ms
    if running:
        assert finished is not None
        message = f"queued control #{command_id} {what} for book {book!r}: the running book applies it on its next bar (last cycle finished {iso_utc(finished)})"
    elif not exists:
        message = f"queued control #{command_id} {what} for book {book!r}, which has never traded: it is applied when the book first trades"
    else:
        last = iso_utc(finished) if finished else "never finished"
        message = f"queued control #{command_id} {what} for book {book!r}, which is not running (last cycle {last}): it is applied when the book trades again"
    return QueuedControl(command_id, book, action, symbol, running, message)
