"""Assembles the Dagster code location: assets, checks, jobs, schedules, sensors and resources.

The settings are read once, when the code location loads (a bad value stops the load with one line
naming the variable); everything else receives them through the resources. Nothing connects to a
database or an exchange until a run uses a resource.
"""

import dagster as dg

from tradepipe.assets.analytics import agent_performance, trade_attribution
from tradepipe.assets.charts import day_charts
from tradepipe.assets.market_bars import market_bars, market_bars_expectations, market_bars_tradable
from tradepipe.assets.portfolio import portfolio_state
from tradepipe.assets.reports import project_report
from tradepipe.assets.variants import live_pool, live_pool_within_rules, ml_model, variant_candidates, variant_evaluations
from tradepipe.assets.walkforward import walk_forward, walk_forward_sweep
from tradepipe.assets.weights import agent_weights, live_weights, weights_are_sound
from tradepipe.checks.document_schemas import report_matches_schema, walk_forward_summaries_match_schema
from tradepipe.checks.ledger import equity_invariant, no_double_fills
from tradepipe.checks.ledger_quality import (
    attribution_expectations,
    ledger_replays_to_the_book,
    orders_within_risk_limits,
    signals_expectations,
)
from tradepipe.checks.quality import performance_rows_are_valid
from tradepipe.config.preflight import location_settings
from tradepipe.jobs import ALL_JOBS, live_pool_job, performance_job, trading_cycle_job, variant_evaluation_job, warmup_analytics_job
from tradepipe.resources import build_resources
from tradepipe.schedules import all_schedules
from tradepipe.sensors.alerts import build_alert_sensors
from tradepipe.sensors.health import record_failed_runs
from tradepipe.sensors.variants import build_variant_generation_sensor
from tradepipe.sensors.trading_cycle import build_trading_cycle_sensor
from tradepipe.sensors.warmup import build_warmup_analytics_sensor

settings = location_settings()

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
        variant_candidates,
        variant_evaluations,
        live_pool,
        ml_model,
    ],
    asset_checks=[
        equity_invariant,
        no_double_fills,
        weights_are_sound,
        performance_rows_are_valid,
        market_bars_tradable,
        market_bars_expectations,
        orders_within_risk_limits,
        ledger_replays_to_the_book,
        signals_expectations,
        attribution_expectations,
        report_matches_schema,
        walk_forward_summaries_match_schema,
        live_pool_within_rules,
    ],
    jobs=ALL_JOBS,
    schedules=all_schedules(settings.performance_intraday_cron),
    sensors=[
        build_trading_cycle_sensor(trading_cycle_job, settings.sensor_interval_seconds),
        build_warmup_analytics_sensor(warmup_analytics_job, performance_job),
        *build_alert_sensors(trading_cycle_job),
        record_failed_runs,
        build_variant_generation_sensor(variant_evaluation_job, live_pool_job),
    ],
    resources=build_resources(settings),
    # Every run in one process unless its job says otherwise: what the UI launches for a selection of
    # assets (a materialisation, a backfill) runs as Dagster's implicit asset job, whose default
    # executor would start one process per step, each importing the code location again.
    executor=dg.in_process_executor,
    # A quiet terminal: runs log INFO and up (cycles, warnings), not Dagster's DEBUG step events.
    loggers={"console": dg.colored_console_logger.configured({"log_level": "INFO", "name": "tradepipe"})},
)
