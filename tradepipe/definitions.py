"""Assembles the Dagster code location: assets, checks, jobs, schedules, sensors and resources.

The settings are read once, here, when the code location loads (a bad value stops the load with one
line naming the variable); everything else receives them through the resources. Nothing connects to
a database or an exchange until a run uses a resource.
"""

import dagster as dg

from tradepipe.assets.analytics import agent_performance, trade_attribution
from tradepipe.assets.portfolio import portfolio_state
from tradepipe.assets.weights import agent_weights, live_weights, promote_weights, weights_are_sound
from tradepipe.checks.ledger import equity_invariant, no_double_fills
from tradepipe.checks.quality import performance_rows_are_valid
from tradepipe.resources import build_resources
from tradepipe.schedules import performance_finalize, performance_intraday, performance_job, weights_daily, weights_job
from tradepipe.sensors.trading_cycle import TRADING_CYCLE_TAG, build_trading_cycle_sensor
from tradepipe.settings import location_settings

settings = location_settings()
CYCLE_MAX_RUNTIME_SECONDS = 300

trading_cycle_job = dg.define_asset_job(
    "trading_cycle",
    selection=dg.AssetSelection.assets(portfolio_state),
    description="One trading cycle: fill last cycle's orders, vote, risk-check, place orders, snapshot the book.",
    # A run whose process died (dagster dev killed mid-cycle) would otherwise stay "started" for
    # ever and the sensor, which waits for in-flight cycles, would never trade again.
    tags={TRADING_CYCLE_TAG: settings.book, "dagster/max_runtime": str(CYCLE_MAX_RUNTIME_SECONDS)},
    # One process: the cycle and its two cheap checks would otherwise each pay the import cost.
    executor_def=dg.in_process_executor,
)

defs = dg.Definitions(
    assets=[portfolio_state, trade_attribution, agent_performance, agent_weights, live_weights],
    asset_checks=[equity_invariant, no_double_fills, weights_are_sound, performance_rows_are_valid],
    jobs=[trading_cycle_job, performance_job, weights_job, promote_weights],
    schedules=[performance_intraday, performance_finalize, weights_daily],
    sensors=[build_trading_cycle_sensor(trading_cycle_job, settings.sensor_interval_seconds)],
    resources=build_resources(settings),
)
