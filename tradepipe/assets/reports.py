"""``project_report``: every 2-hour UTC window, a report (JSON and HTML) stored and emailed; its schedule.

The asset reads the ledger, the analytics tables and the health metrics through its resources, builds
the report (``tradepipe.reports.service``), stores it in ``project_reports`` and under
TRADEPIPE_HOME/reports/, and emails it with any earlier report whose email failed. A failed send is
recorded and shown here (metadata and a warning); it does not fail the run, which would lose nothing
but would hide the report behind a red run.
"""


from datetime import datetime, timedelta, timezone
from typing import cast

import dagster as dg

from tradepipe.adapters.db.email_settings import load_email_config
from tradepipe.assets.analytics import agent_performance
from tradepipe.assets.partitions import report_windows_start
from tradepipe.config.preflight import location_settings
from tradepipe.assets.portfolio import portfolio_state
from tradepipe.assets.weights import agent_weights
from tradepipe.core.report_inputs import FailedCheck
from tradepipe.core.timeframes import timeframe_ms
from tradepipe.resources.clock import WallClock
from tradepipe.resources.ledger import LedgerDatabase
from tradepipe.resources.mail import MailResource
from tradepipe.resources.trading import TradingConfigResource

REPORT_PARTITION_FORMAT = "%Y-%m-%d-%H:%M"
report_windows = dg.TimeWindowPartitionsDefinition(
    cron_schedule="0 */2 * * *",
    start=report_windows_start(location_settings(), datetime.now(timezone.utc).date()),
    fmt=REPORT_PARTITION_FORMAT,
    timezone="UTC",
)


def failed_checks(instance: dg.DagsterInstance, start: datetime, end: datetime) -> list[FailedCheck]:
    """Asset checks that failed in [start, end), from the instance's event log."""
    records = instance.get_event_records(
        dg.EventRecordsFilter(event_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION, after_timestamp=start.timestamp()),
        limit=1000,
    )
    result = []
    for record in records:
        evaluation = cast(dg.AssetCheckEvaluation, record.event_log_entry.dagster_event.event_specific_data)  # type: ignore[union-attr]
        at = datetime.fromtimestamp(record.timestamp, tz=timezone.utc)
        if at < end and not evaluation.passed:
            result.append(
                FailedCheck(at, evaluation.asset_key.to_user_string(), evaluation.check_name, str(evaluation.description or ""))
            )
    return result


@dg.asset(
    partitions_def=report_windows,
    deps=[portfolio_state, agent_performance, agent_weights],
    group_name="reports",
    kinds={"python", "sql", "email"},
    description="The project manager's report for a 2-hour UTC window: portfolio, activity, agents, weights, "
    "health, tasks and recommendations, as JSON and HTML, stored and emailed.",
)
def project_report(
    context: dg.AssetExecutionContext,
    ledger: LedgerDatabase,
    trading: TradingConfigResource,
    mail: MailResource,
    clock: WallClock,
) -> dg.MaterializeResult:
    # Rendering (matplotlib, jinja2) loads here, not when the code location loads for a trading cycle.
    from tradepipe.reports.service import ReportRequest, deliver, store_report

    settings = trading.settings()
    window = context.partition_time_window
    start, end = window.start.astimezone(timezone.utc), window.end.astimezone(timezone.utc)
    sessions = ledger.existing_sessions()  # a home that never traded: one line, not a driver's traceback
    with sessions() as session:
        smtp, recipients = mail.effective(load_email_config(session))
    now = datetime.fromtimestamp(clock.now_ms() / 1000, tz=timezone.utc)
    request = ReportRequest(
        book=settings.book,
        window_start=start,
        window_end=end,
        now=now,
        quote_currency=settings.quote_currency,
        timeframe=settings.resolved_timeframe,
        bar_seconds=timeframe_ms(settings.resolved_timeframe) / 1000,
        default_starting_cash=float(settings.starting_cash),
        recipients=recipients if smtp else [],
        partition_key=context.partition_key,
        failed_checks=failed_checks(context.instance, start, end),
    )
    stored = store_report(sessions, request, settings.home / "reports", context.run_id)
    delivery = deliver(sessions, stored.report_id, smtp, recipients, now)
    if delivery.status == "failed":
        context.log.warning(f"report #{stored.report_id} stored but not emailed: {delivery.error}; retried with the next report")
    document = stored.document
    return dg.MaterializeResult(
        metadata={
            "summary": dg.MetadataValue.md(document["summary"]),
            "report_id": stored.report_id,
            "html_path": dg.MetadataValue.path(stored.files["html"]),
            "json_path": dg.MetadataValue.path(stored.files["json"]),
            "email": delivery.status if delivery.error is None else f"{delivery.status}: {delivery.error}",
            "retried_sent": dg.MetadataValue.json(delivery.retried_sent),
            "retried_failed": dg.MetadataValue.json(delivery.retried_failed),
            "recommendations": len(document["recommendations"]),
            "tasks_opened": dg.MetadataValue.json(stored.tasks_opened),
            "equity": document["portfolio"]["equity"],
            "pnl_window": document["portfolio"]["pnl"]["window"],
        }
    )


def closed_window_key(moment: datetime) -> str:
    """The key of the last 2-hour UTC window that ended at or before ``moment``."""
    moment = moment.astimezone(timezone.utc)
    end = moment.replace(minute=0, second=0, microsecond=0) - timedelta(hours=moment.hour % 2)
    return (end - timedelta(hours=2)).strftime(REPORT_PARTITION_FORMAT)


