"""The ``data_quality`` job: the Great Expectations checks of the trading cycle's assets, off its path.

``market_bars_expectations`` and ``signals_expectations`` check what the newest cycle read and wrote,
but importing Great Expectations costs seconds, so the ``trading_cycle`` job leaves them out
(``OFF_CYCLE_CHECKS``) and this job runs them every hour (and on demand from the UI). The
partitioned analytics checks (attribution, performance) run with their own assets' jobs.
"""

import dagster as dg

from tradepipe.assets.market_bars import market_bars_expectations
from tradepipe.checks.ledger_quality import signals_expectations

OFF_CYCLE_CHECKS = (market_bars_expectations, signals_expectations)

data_quality_job = dg.define_asset_job(
    "data_quality",
    selection=dg.AssetSelection.checks(*OFF_CYCLE_CHECKS),
    description="Great Expectations suites on the newest cycle's market bars and signals.",
)


@dg.schedule(job=data_quality_job, cron_schedule="20 * * * *", execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING)
def data_quality_hourly(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Every hour at :20, after the hour's trading cycle."""
    return dg.RunRequest(run_key=f"data-quality-{context.scheduled_execution_time.isoformat()}")
