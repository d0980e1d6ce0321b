"""Partitions of the analytics and weights assets: UTC days, today included.

Attribution, performance and weights all use ``daily_with_today`` (``end_offset=1``): the current day
can be refreshed through the day, a first start decides weights on its warm-up the same day, and the
analytics and the weights of one day can be materialised in one launch (a job needs one partitions
definition). The scheduled weights run still decides on the complete previous day after midnight.
``daily_complete`` (complete days only) remains for callers that mean "the newest finished day".
"""


from datetime import date, datetime, timedelta, timezone

import dagster as dg

from tradepipe.config.preflight import location_settings
from tradepipe.config.settings import Settings

# Partitions are the code location's structure, fixed when it loads (TRADEPIPE_PARTITIONS_START).
_START = location_settings().partitions_start.isoformat()

daily_with_today = dg.DailyPartitionsDefinition(start_date=_START, timezone="UTC", end_offset=1)
daily_complete = dg.DailyPartitionsDefinition(start_date=_START, timezone="UTC")

# Report windows are 12 a day: since the default start (2025-01-01) that is thousands of partitions, and
# the UI's Materialize dialog and Partitions tab slow down to a minute. Unless TRADEPIPE_PARTITIONS_START
# is set, they start this many days before the code location loads.
REPORT_HISTORY_DAYS = 14


def report_windows_start(settings: Settings, today: date) -> datetime:
    """Midnight UTC of the first report window: TRADEPIPE_PARTITIONS_START when it is set, else
    ``REPORT_HISTORY_DAYS`` before ``today`` (never before the default start)."""
    if "partitions_start" in settings.model_fields_set:
        first = settings.partitions_start
    else:
        first = max(settings.partitions_start, today - timedelta(days=REPORT_HISTORY_DAYS))
    return datetime(first.year, first.month, first.day, tzinfo=timezone.utc)


# Backfills run one day per run: each day's rows are replaced as a unit, a failed day is retried
# alone, and the UI shows one run per day. The assets read one partition's window, never a range.
ONE_DAY_PER_RUN = dg.BackfillPolicy.multi_run(max_partitions_per_run=1)


def partition_bounds(context: dg.AssetExecutionContext) -> tuple[datetime, datetime]:
    window = context.partition_time_window
    return window.start.astimezone(timezone.utc), window.end.astimezone(timezone.utc)


def performance_window(day_end: datetime, window_days: int) -> tuple[datetime, datetime]:
    """The rolling window ending at the partition's end."""
    return day_end - timedelta(days=window_days), day_end


def is_replay_partition(partition_key: str, live_partition: date | None, today: date | None = None) -> bool:
    """A weights partition is a replay when it is older than yesterday (UTC) or older than the live set's.

    Today's and yesterday's partitions are live decisions (yesterday's is the scheduled run on the
    complete day); re-deciding an older day, or a day older than what is already live, never
    replaces the live weights: it is recorded as a replay and published only by an explicit promote.
    """
    day = date.fromisoformat(partition_key)
    today = today or datetime.now(timezone.utc).date()
    if day < today - timedelta(days=1):
        return True
    return live_partition is not None and day < live_partition
