"""Timeframe arithmetic in integer milliseconds (UTC)."""

from __future__ import annotations

import re

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


def iso_utc(ms: int) -> str:
    """``2026-12-02T06:15:00Z``: how a bar time is shown in tags, cursors and messages (never raw ms)."""
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_utc_ms(text: str) -> int:
    """Milliseconds of an ISO UTC time written by :func:`iso_utc`; a legacy all-digit value is taken as ms."""
    from datetime import datetime, timezone

    if text.strip().isdigit():
        return int(text)
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(round(moment.timestamp() * 1000))
