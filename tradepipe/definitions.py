"""Assembles the Dagster code location: assets, checks, jobs, schedules, sensors and resources.

The settings are read once, here, when the code location loads (a bad value stops the load with one
line naming the variable); everything else receives them through the resources. Nothing connects to
a database or an exchange until a run uses a resource.
"""

import dagster as dg

from tradepipe.alerting import build_alert_sensors, daily_summary, daily_summary_job
from tradepipe.assets.analytics import agent_performance, trade_attribution
from tradepipe.assets.charts import day_charts, day_charts_every_10_minutes, day_charts_job
from tradepipe.assets.market_bars import market_bars, market_bars_expectations, market_bars_tradable
from tradepipe.assets.portfolio import portfolio_state
from tradepipe.assets.reports import project_report, project_report_schedule, report_job
from tradepipe.assets.walkforward import walk_forward, walk_forward_sweep, walk_forward_sweep_job  # issue 9
from tradepipe.assets.weights import agent_weights, live_weights, promote_weights, weights_are_sound
from tradepipe.checks.document_schemas import report_matches_schema, walk_forward_summaries_match_schema
from tradepipe.checks.ledger import equity_invariant, no_double_fills
from tradepipe.checks.ledger_quality import (
    attribution_expectations,
    ledger_replays_to_the_book,
    orders_within_risk_limits,
    signals_expectations,
)
from tradepipe.checks.quality import performance_rows_are_valid
from tradepipe.checks.quality_jobs import OFF_CYCLE_CHECKS, data_quality_hourly, data_quality_job
from tradepipe.resources import build_resources
from tradepipe.run_pools import POOL_TAG, TRADING_PRIORITY_TAGS
from tradepipe.schedules import (
    build_performance_intraday,
    performance_finalize,
    performance_job,
    weights_daily,
    weights_job,
)
from tradepipe.sensors.health import record_failed_runs
from tradepipe.sensors.trading_cycle import TRADING_CYCLE_TAG, build_trading_cycle_sensor
from tradepipe.sensors.warmup import WARMUP_TAG, build_warmup_analytics_sensor
from tradepipe.settings import location_settings

settings = location_settings()
CYCLE_MAX_RUNTIME_SECONDS = 300

trading_cycle_job = dg.define_asset_job(
    "trading_cycle",
    # The cycle's input bars are a step of its own (issue 12); Great Expectations checks run elsewhere.
    selection=dg.AssetSelection.assets(market_bars, portfolio_state) - dg.AssetSelection.checks(*OFF_CYCLE_CHECKS),
    description="One trading cycle: fill last cycle's orders, vote, risk-check, place orders, snapshot the book.",
    # A run whose process died (dagster dev killed mid-cycle) would otherwise stay "started" for
    # ever and the sensor, which waits for in-flight cycles, would never trade again.
    tags={
        TRADING_CYCLE_TAG: settings.book,
        "dagster/max_runtime": str(CYCLE_MAX_RUNTIME_SECONDS),
        # Issue 13: never retried automatically, whatever the instance's run_retries say: a cycle that
        # died may already have sent orders; the next bar's cycle reconciles them instead.
        "dagster/max_retries": "0",
        "dagster/retry_on_asset_or_op_failure": "false",
        POOL_TAG: "trading",
        **TRADING_PRIORITY_TAGS,
    },
    # One process: the cycle and its two cheap checks would otherwise each pay the import cost.
    executor_def=dg.in_process_executor,
)

warmup_analytics_job = dg.define_asset_job(
    "warmup_analytics",
    selection=dg.AssetSelection.assets(trade_attribution, agent_performance, agent_weights, live_weights),
    description="After a warm-up: attribution, performance and weights of one day in one run.",
    tags={WARMUP_TAG: "analytics"},
)

defs = dg.Definitions(
    assets=[
        market_bars,
        portfolio_state,
        trade_attribution,
        agent_performance,
        agent_weights,
        live_weights,
        day_charts,
        project_report,
        walk_forward,
        walk_forward_sweep,
    ],
    asset_checks=[
        equity_invariant,
        no_double_fills,
        weights_are_sound,
        performance_rows_are_valid,
        # issue 12: data quality
        market_bars_tradable,
        market_bars_expectations,
        orders_within_risk_limits,
        ledger_replays_to_the_book,
        signals_expectations,
        attribution_expectations,
        report_matches_schema,
        walk_forward_summaries_match_schema,
    ],
    jobs=[
        trading_cycle_job,
        performance_job,
        weights_job,
        promote_weights,
        warmup_analytics_job,
        daily_summary_job,
        day_charts_job,
        report_job,
        data_quality_job,
        walk_forward_sweep_job,
    ],
    schedules=[
        build_performance_intraday(settings.performance_intraday_cron),
        performance_finalize,
        weights_daily,
        daily_summary,
        day_charts_every_10_minutes,
        project_report_schedule,
        data_quality_hourly,
    ],
    sensors=[
        build_trading_cycle_sensor(trading_cycle_job, settings.sensor_interval_seconds),
        build_warmup_analytics_sensor(warmup_analytics_job, performance_job),
        *build_alert_sensors(trading_cycle_job),
        record_failed_runs,
    ],
    resources=build_resources(settings),
    # issue 14: a quiet terminal. Runs log INFO and up (cycles, warnings), not Dagster's DEBUG step events.
    loggers={"console": dg.colored_console_logger.configured({"log_level": "INFO", "name": "tradepipe"})},
)
