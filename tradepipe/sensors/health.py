"""Failed runs as system health: every failed run of this code location becomes a ``run_failed`` row in
``system_metrics``, which the 2-hour report lists (job, run id, partition, error)."""

from datetime import datetime, timezone

import dagster as dg

from tradepipe.adapters.db.system_metrics import record_metrics
from tradepipe.resources.ledger import LedgerDatabase

# The error shown in the report is Dagster's failure message, cut short: a stack trace belongs in the UI.
MAX_ERROR_CHARS = 500


@dg.run_failure_sensor(
    name="record_failed_runs",
    description="Records each failed run in system_metrics (run_failed), for the project report's health section.",
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
)
def record_failed_runs(context: dg.RunFailureSensorContext, ledger: LedgerDatabase) -> None:
    run = context.dagster_run
    message = context.failure_event.message or "run failed"
    step_errors = [
        entry.dagster_event.step_failure_data.error
        for entry in context.instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
        if entry.dagster_event is not None and entry.dagster_event.step_failure_data.error is not None
    ]
    if step_errors:  # the cause a trader needs ("exchange down"), not only "Steps failed: [...]"
        cause = step_errors[0].cause or step_errors[0]
        message = f"{message} {cause.cls_name}: {cause.message.strip()}"
    record = context.instance.get_run_record_by_id(run.run_id)
    end = record.end_time if record is not None and record.end_time else None
    at = datetime.fromtimestamp(end, tz=timezone.utc) if end else datetime.now(timezone.utc)
    tags = {
        "job": run.job_name,
        "run_id": run.run_id,
        "partition": run.tags.get("dagster/partition"),
        "error": message[:MAX_ERROR_CHARS],
    }
    with ledger.sessions().begin() as session:
        record_metrics(session, at, [("run_failed", 1.0, tags)])
