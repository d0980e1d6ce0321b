"""[`clock`] The wall clock the sensor and the trading cycle read (which bar has closed, is a request stale).

A resource so that a test can fix the time (``FixedClock``) instead of patching a module's ``time``.
"""

from __future__ import annotations

import time

import dagster as dg


class WallClock(dg.ConfigurableResource):
    def now_ms(self) -> int:
        """Milliseconds since the epoch, UTC."""
        return int(time.time() * 1000)


class FixedClock(WallClock):
    """A clock standing still at ``now`` (ms): for tests and replays of a sensor's decisions."""

    now: int

    def now_ms(self) -> int:
        return self.now
