"""Every job of the code location, in one place: what runs together, in which lane of the run queue.

The trading cycle is never retried automatically (a cycle that died may already have sent orders; the
next bar's cycle reconciles them). Analytics jobs carry the analytics pool tag, so a backfill of them
never takes the slot a trading cycle needs (``tradepipe/config/run_pools.py``).
"""

from __future__ import annotations

import dagster as dg

from tradepipe.assets.analytics import agent_performance, trade_attribution
from tradepipe.assets.charts import day_charts
from tradepipe.assets.controls import queue_trader_control
from tradepipe.assets.market_bars import market_bars, market_bars_expectations

from tradepipe.assets.portfolio import portfolio_state
from tradepipe.assets.reports import project_report, report_windows
from tradepipe.assets.variants import live_pool, ml_model, model_months, variant_candidates, variant_evaluations, variant_partitions
from tradepipe.assets.walkforward import sweep_partitions, walk_forward_sweep
from tradepipe.assets.weights import agent_weights, live_weights, promote_weight_set
from tradepipe.checks.ledger_quality import signals_expectations
from tradepipe.config.preflight import location_settings
from tradepipe.config.run_pools import ANALYTICS_TAGS, POOL_TAG, TRADING_PRIORITY_TAGS
from tradepipe.sensors.alerts import send_daily_summary
from tradepipe.sensors.trading_cycle import TRADING_CYCLE_TAG
from tradepipe.sensors.warmup import WARMUP_TAG

CYCLE_MAX_RUNTIME_SECONDS = 300

# Importing Great Expectations costs seconds, so the trading cycle leaves these checks out and the
# ``data_quality`` job runs them every hour (and on demand from the UI).
OFF_CYCLE_CHECKS = (market_bars_expectations, signals_expectations)

trading_cycle_job = dg.define_asset_job(
    "trading_cycle",
    # The cycle's input bars are a step of their own; Great Expectations checks run elsewhere.
    selection=dg.AssetSelection.assets(market_bars, portfolio_state) - dg.AssetSelection.checks(*OFF_CYCLE_CHECKS),
    description="One trading cycle: fill last cycle's orders, vote, risk-check, place orders, snapshot the book.",
    # A run whose process died (dagster dev killed mid-cycle) would otherwise stay "started" for
    # ever and the sensor, which waits for in-flight cycles, would never trade again.
    tags={
        TRADING_CYCLE_TAG: location_settings().book,
        "dagster/max_runtime": str(CYCLE_MAX_RUNTIME_SECONDS),
        # Never retried automatically, whatever the instance's run_retries say: a cycle that died may
        # already have sent orders; the next bar's cycle reconciles them instead.
        "dagster/max_retries": "0",
        "dagster/retry_on_asset_or_op_failure": "false",
        POOL_TAG: "trading",
        **TRADING_PRIORITY_TAGS,
    },
    # One process: the cycle and its two cheap checks would otherwise each pay the import cost.
    executor_def=dg.in_process_executor,
)

performance_job = dg.define_asset_job(
    "performance_job",
    selection=dg.AssetSelection.assets(trade_attribution, agent_performance),
    description="Attribution and per-agent performance for one UTC day.",
    tags=ANALYTICS_TAGS,
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

warmup_analytics_job = dg.define_asset_job(
    "warmup_analytics",
    selection=dg.AssetSelection.assets(trade_attribution, agent_performance, agent_weights, live_weights),
    description="After a warm-up: attribution, performance and weights of one day in one run.",
    tags={WARMUP_TAG: "analytics"},
)


@dg.job(description="Promote a recorded weight set to live (config: weight_history_id).", tags=ANALYTICS_TAGS)
def promote_weights() -> None:
    promote_weight_set()


@dg.job(description="Pause/resume new entries, force-exit a symbol or all, reload weights (config: action, symbol, reason).")
def trader_control() -> None:
    queue_trader_control()


@dg.job(description="The daily summary alert (previous UTC day).")
def daily_summary_job() -> None:
    send_daily_summary()


day_charts_job = dg.define_asset_job("day_charts_job", selection=[day_charts], description="Redraw today's charts.")

report_job = dg.define_asset_job(
    "project_report_job",
    selection=dg.AssetSelection.assets(project_report),
    partitions_def=report_windows,
    description="The 2-hour report: build, store, email.",
)

data_quality_job = dg.define_asset_job(
    "data_quality",
    selection=dg.AssetSelection.checks(*OFF_CYCLE_CHECKS),
    description="Great Expectations suites on the newest cycle's market bars and signals.",
)

walk_forward_sweep_job = dg.define_asset_job(
    "walk_forward_sweep_job",
    selection=dg.AssetSelection.assets(walk_forward_sweep),
    partitions_def=sweep_partitions,
    description="Backfill this job over the partitions to run the experiments (one run each, side by side).",
)

# The self-improvement loop, in the analytics lane: a backfill of a generation's evaluations never takes
# the slot a trading cycle needs.
variant_generation_job = dg.define_asset_job(
    "variant_generation_job",
    selection=dg.AssetSelection.assets(variant_candidates),
    description="Propose one generation of strategy-variant candidates (or resume the open one) and add their partitions.",
    tags=ANALYTICS_TAGS,
    executor_def=dg.in_process_executor,
)

variant_evaluation_job = dg.define_asset_job(
    "variant_evaluation_job",
    selection=dg.AssetSelection.assets(variant_evaluations),
    partitions_def=variant_partitions,
    description="Evaluate candidates: backfill this job over a generation's partitions (one run per variant, side by side).",
    tags=ANALYTICS_TAGS,
    executor_def=dg.in_process_executor,
)

live_pool_job = dg.define_asset_job(
    "live_pool_job",
    selection=dg.AssetSelection.assets(live_pool),
    description="Select the evaluated generation into the live pool by the documented rules.",
    tags=ANALYTICS_TAGS,
    executor_def=dg.in_process_executor,
)

ml_model_job = dg.define_asset_job(
    "ml_model_job",
    selection=dg.AssetSelection.assets(ml_model),
    partitions_def=model_months,
    description="Train each ML model kind on the bars closed before the month starts.",
    tags=ANALYTICS_TAGS,
    executor_def=dg.in_process_executor,
)

ALL_JOBS: list[dg.JobDefinition | dg.UnresolvedAssetJobDefinition] = [
    trading_cycle_job,
    performance_job,
    weights_job,
    promote_weights,
    trader_control,
    warmup_analytics_job,
    daily_summary_job,
    day_charts_job,
    report_job,
    data_quality_job,
    walk_forward_sweep_job,
    variant_generation_job,
    variant_evaluation_job,
    live_pool_job,
    ml_model_job,
]
