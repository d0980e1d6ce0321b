"""Partitions of the analytics assets: UTC days.

Attribution and performance include today's partition (``end_offset=1``) so the current day can be
refreshed through the day; weights are computed for complete days only.
"""


from datetime import datetime, timedelta, timezone

import dagster as dg

from tradepipe.settings import location_settings

# Partitions are the code location's structure, fixed when it loads (TRADEPIPE_PARTITIONS_START).
_START = location_settings().partitions_start.isoformat()

daily_with_today = dg.DailyPartitionsDefinition(start_date=_START, timezone="UTC", end_offset=1)
daily_complete = dg.DailyPartitionsDefinition(start_date=_START, timezone="UTC")

# Backfills run one day per run: each day's rows are replaced as a unit, a failed day is retried
# alone, and the UI shows one run per day. The assets read one partition's window, never a range.
ONE_DAY_PER_RUN = dg.BackfillPolicy.multi_run(max_partitions_per_run=1)


def partition_bounds(context: dg.AssetExecutionContext) -> tuple[datetime, datetime]:
    window = context.partition_time_window
    return window.start.astimezone(timezone.utc), window.end.astimezone(timezone.utc)


def performance_window(day_end: datetime, window_days: int) -> tuple[datetime, datetime]:
    """The rolling window ending at the partition's end."""
    return day_end - timedelta(days=window_days), day_end
