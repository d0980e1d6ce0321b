"""Every schedule of the code location (UTC), in the order of a day.

Performance is refreshed every 6 hours for today (TRADEPIPE_PERFORMANCE_INTRADAY_CRON) and finalised
for yesterday shortly after midnight; weights are optimised daily after that; the daily summary alert
follows. Charts are redrawn every 10 minutes, data quality is checked hourly after the hour's cycle,
and the project report covers each closed 2-hour window. The self-improvement loop's schedules (a weekly
generation, a monthly model) are stopped by default: the loop is off until evidence supports it
(docs/self-improvement.md); a user turns them on in the UI.
"""

from datetime import datetime, timedelta, timezone

import dagster as dg


from tradepipe.assets.reports import closed_window_key, report_windows
from tradepipe.jobs import (
    daily_summary_job,
    data_quality_job,
    day_charts_job,
    ml_model_job,
    performance_job,
    report_job,
    variant_generation_job,
    weights_job,
)

_RUNNING = dg.DefaultScheduleStatus.RUNNING
_STOPPED = dg.DefaultScheduleStatus.STOPPED


def _day(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d")


def build_performance_intraday(cron_schedule: str) -> dg.ScheduleDefinition:
    """Today's partition on ``cron_schedule`` (default every 6 hours: 00, 06, 12, 18 UTC)."""

    @dg.schedule(job=performance_job, cron_schedule=cron_schedule, execution_timezone="UTC", default_status=_RUNNING)
    def performance_intraday(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        """Today's partition, refreshed during the day."""
        day = _day(context.scheduled_execution_time)
        return dg.RunRequest(run_key=f"intraday-{context.scheduled_execution_time.isoformat()}", partition_key=day)

    return performance_intraday


@dg.schedule(job=performance_job, cron_schedule="10 0 * * *", execution_timezone="UTC", default_status=_RUNNING)
def performance_finalize(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Yesterday's partition once the day is complete."""
    day = _day(context.scheduled_execution_time - timedelta(days=1))
    return dg.RunRequest(run_key=f"final-{day}", partition_key=day)


@dg.schedule(job=weights_job, cron_schedule="30 0 * * *", execution_timezone="UTC", default_status=_RUNNING)
def weights_daily(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Weights for yesterday's window, after its performance was finalised at 00:10."""
    day = _day(context.scheduled_execution_time - timedelta(days=1))
    return dg.RunRequest(run_key=f"weights-{day}", partition_key=day)


@dg.schedule(job=daily_summary_job, cron_schedule="20 0 * * *", execution_timezone="UTC", default_status=_RUNNING)
def daily_summary(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """The previous UTC day's profit and live weights, to the alerts webhook."""
    day = (context.scheduled_execution_time.astimezone(timezone.utc) - timedelta(days=1)).date().isoformat()
    return dg.RunRequest(run_key=f"summary-{day}", tags={"tradepipe/summary_day": day})


@dg.schedule(job=day_charts_job, cron_schedule="*/10 * * * *", execution_timezone="UTC", default_status=_RUNNING)
def day_charts_every_10_minutes(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    return dg.RunRequest(run_key=f"charts-{context.scheduled_execution_time.isoformat()}")


@dg.schedule(job=data_quality_job, cron_schedule="20 * * * *", execution_timezone="UTC", default_status=_RUNNING)
def data_quality_hourly(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Every hour at :20, after the hour's trading cycle."""
    return dg.RunRequest(run_key=f"data-quality-{context.scheduled_execution_time.isoformat()}")


@dg.schedule(job=report_job, cron_schedule="15 */2 * * *", execution_timezone="UTC", default_status=_RUNNING)
def project_report_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    """The window that closed 15 minutes ago: its last bar's cycle and the 6-hourly performance run are done by then."""
    key = closed_window_key(context.scheduled_execution_time)
    if key < report_windows.get_first_partition_key():  # type: ignore[operator]
        return dg.SkipReason(f"window {key} is before the first report window ({report_windows.get_first_partition_key()})")
    return dg.RunRequest(run_key=f"report-{key}", partition_key=key)


@dg.schedule(job=variant_generation_job, cron_schedule="0 3 * * 1", execution_timezone="UTC", default_status=_STOPPED)
def variant_generation_weekly(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Mondays 03:00: one generation of candidates (the variant_generation_sensor fans out their evaluations)."""
    return dg.RunRequest(run_key=f"generation-{_day(context.scheduled_execution_time)}")


@dg.schedule(job=ml_model_job, cron_schedule="0 4 1 * *", execution_timezone="UTC", default_status=_STOPPED)
def ml_model_monthly(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """The 1st of each month at 04:00: the models of the month that starts that day (trained on bars before it)."""
    month = context.scheduled_execution_time.astimezone(timezone.utc).strftime("%Y-%m-01")
    return dg.RunRequest(run_key=f"ml-{month}", partition_key=month)


def all_schedules(performance_intraday_cron: str) -> list[dg.ScheduleDefinition]:
    return [
        build_performance_intraday(performance_intraday_cron),
        performance_finalize,
        weights_daily,
        daily_summary,
        day_charts_every_10_minutes,
        project_report_schedule,
        data_quality_hourly,
        variant_generation_weekly,
        ml_model_monthly,
    ]
