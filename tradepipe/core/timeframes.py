"""Timeframe arithmetic in integer milliseconds (UTC)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_TIMEFRAME = re.compile(r"^(\d+)([smhdw])$")
DAY_MS = 86_400_000


def timeframe_ms(timeframe: str) -> int:
    """Length of one bar, e.g. ``timeframe_ms("1h") == 3_600_000``. ccxt spelling (1m, 5m, 1h, 4h, 1d)."""
    match = _TIMEFRAME.match(timeframe)
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"unknown timeframe {timeframe!r}: expected a number and one of s, m, h, d, w (e.g. 1m, 1h, 1d)")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def bars_per_day(timeframe: str) -> float:
    return DAY_MS / timeframe_ms(timeframe)


def periods_per_year(timeframe: str) -> float:
    """365 x bars per day: crypto trades every day, so 1h bars give 8760."""
    return 365 * bars_per_day(timeframe)


def last_closed_bar_open(now_ms: int, timeframe: str) -> int:
    """Open time of the newest bar that has fully closed at ``now_ms``."""
    step = timeframe_ms(timeframe)
    return (now_ms // step) * step - step


def iso_utc(moment: int | float | datetime, *, timespec: str = "seconds", suffix: str = "Z") -> str:
    """The one ISO 8601 UTC time formatter: ``2026-12-02T06:15:00Z`` (never raw ms).

    ``moment`` is UTC milliseconds or a datetime (a naive one is taken as UTC: SQLite hands stored UTC
    times back naive). ``timespec`` as ``datetime.isoformat`` ("minutes" for messages, "auto" keeps
    sub-second digits when there are any); ``suffix`` "+00:00" for the JSON contracts that always wrote it.
    """
    if isinstance(moment, datetime):
        at = moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
    else:
        # Whole seconds plus integer milliseconds: ms / 1000 as a float can land a microsecond short.
        at = datetime.fromtimestamp(moment // 1000, tz=timezone.utc) + timedelta(milliseconds=moment % 1000)
    return at.replace(tzinfo=None).isoformat(timespec=timespec) + suffix


def parse_utc_ms(text: str) -> int:
    """Milliseconds of an ISO UTC time written by :func:`iso_utc`; a legacy all-digit value is taken as ms."""
    if text.strip().isdigit():
        return int(text)
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(round(moment.timestamp() * 1000))
