"""Cadence (UTC): performance refreshed every 6 hours for today (TRADEPIPE_PERFORMANCE_INTRADAY_CRON)
and finalised for yesterday shortly after midnight; weights optimised daily after that."""


from datetime import datetime, timedelta, timezone

import dagster as dg

from tradepipe.assets.analytics import agent_performance, trade_attribution
from tradepipe.assets.weights import agent_weights, live_weights
from tradepipe.run_pools import ANALYTICS_TAGS


performance_job = dg.define_asset_job(
    "performance_job",
    selection=dg.AssetSelection.assets(trade_attribution, agent_performance),
    description="Attribution and per-agent performance for one UTC day.",
    tags=ANALYTICS_TAGS,  # its own lane in the run queue: trading always has a slot (tradepipe/run_pools.py)
    # One process per run, not one per step: a 20-day backfill then costs the trading host 20 processes, not 60.
    executor_def=dg.in_process_executor,
)
weights_job = dg.define_asset_job(
    "weights_job",
    selection=dg.AssetSelection.assets(agent_weights, live_weights),
    description="Optimise, check and publish agent weights for one complete UTC day.",
    tags=ANALYTICS_TAGS,
    executor_def=dg.in_process_executor,
)


def _day(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d")


def build_performance_intraday(cron_schedule: str) -> dg.ScheduleDefinition:
    """Today's partition on ``cron_schedule`` (default every 6 hours: 00, 06, 12, 18 UTC)."""

    @dg.schedule(job=performance_job, cron_schedule=cron_schedule, execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING)
    def performance_intraday(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        """Today's partition, refreshed during the day."""
        day = _day(context.scheduled_execution_time)
        return dg.RunRequest(run_key=f"intraday-{context.scheduled_execution_time.isoformat()}", partition_key=day)

    return performance_intraday


@dg.schedule(job=performance_job, cron_schedule="10 0 * * *", execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING)
def performance_finalize(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Yesterday's partition once the day is complete."""
    day = _day(context.scheduled_execution_time - timedelta(days=1))
    return dg.RunRequest(run_key=f"final-{day}", partition_key=day)


@dg.schedule(job=weights_job, cron_schedule="30 0 * * *", execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING)
def weights_daily(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Weights for yesterday's window, after its performance was finalised at 00:10."""
    day = _day(context.scheduled_execution_time - timedelta(days=1))
    return dg.RunRequest(run_key=f"weights-{day}", partition_key=day)
