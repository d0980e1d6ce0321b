"""``portfolio_state``: materialised by every trading cycle; its metadata is the trader's dashboard.

Equity, cash and P&L are numeric metadata, so the asset's page plots them across materialisations
as an equity curve.
"""


from typing import Any

import dagster as dg

from tradepipe.assets.metadata import table
from tradepipe.core.timeframes import last_closed_bar_open, timeframe_ms
from tradepipe.resources import (
    BrokerResource,
    LedgerDatabase,
    MarketDataResource,
    TradingConfigResource,
    WallClock,
    WeightsCacheResource,
)
from tradepipe.runner import CycleOutcome, TradingRunner


# A sensor-launched bar older than this is not traded: two bars, but never under two minutes, so a
# slow launch on a busy machine (short test bars) is not mistaken for a request left over from a crash.
STALE_AFTER_BARS = 2
STALE_AFTER_MS_AT_LEAST = 120_000


def _launched_by_sensor(context: dg.AssetExecutionContext) -> bool:
    """Sensor runs trade the live clock; a user may materialise any explicit bar on purpose."""
    return context.run.tags.get("dagster/sensor_name") is not None


def _stale_after_ms(timeframe: str) -> int:
    return max(STALE_AFTER_BARS * timeframe_ms(timeframe), STALE_AFTER_MS_AT_LEAST)


class TradingCycleConfig(dg.Config):
    bar_open_ms: int | None = None
    """Open time (UTC ms) of the closed bar to trade; empty means the newest closed bar."""


def portfolio_metadata(outcome: CycleOutcome, market_source: str) -> dict[str, Any]:
    label = " (SYNTHETIC prices)" if market_source == "synthetic" else ""
    return {
        "equity": float(outcome.equity),
        "cash": float(outcome.cash),
        "day_pnl": float(outcome.day_pnl),
        "realized_pnl": float(outcome.realized_pnl),
        "unrealized_pnl": float(outcome.unrealized_pnl),
        "bar": dg.MetadataValue.timestamp(outcome.bar_open_ms / 1000),
        "cycle_status": outcome.status,
        "market": f"{market_source}{label}",
        "positions": table(outcome.positions, ["symbol", "quantity", "average_price", "mark", "value"]),
        "agent_signals": table(outcome.last_signals, ["agent", "symbol", "signal", "confidence", "reason"]),
        "orders_placed": len(outcome.orders_placed),
        "orders_rejected": len(outcome.orders_rejected),
        "fills": len(outcome.fills),
        "orders": table(
            outcome.orders_placed + [dict(r, quantity=r["requested"]) for r in outcome.orders_rejected],
            ["symbol", "side", "quantity", "reason"],
        ),
        "skipped": dg.MetadataValue.json(outcome.skipped),
        "weights": dg.MetadataValue.json(outcome.weights),
        "weights_source": outcome.weights_source,
        "halted_daily_loss": outcome.halted,
        "cycle_seconds": round(outcome.seconds, 4),
    }


@dg.asset(
    group_name="trading",
    kinds={"python", "sql"},
    description="The paper (or exchange) book after the latest trading cycle: equity, cash, positions, signals, orders.",
)
def portfolio_state(
    context: dg.AssetExecutionContext,
    config: TradingCycleConfig,
    trading: TradingConfigResource,
    ledger: LedgerDatabase,
    market: MarketDataResource,
    broker: BrokerResource,
    weights_cache: WeightsCacheResource,
    clock: WallClock,
) -> dg.MaterializeResult:
    settings = trading.settings()
    timeframe = settings.resolved_timeframe
    newest = last_closed_bar_open(clock.now_ms(), timeframe)
    bar = newest if config.bar_open_ms is None else config.bar_open_ms
    if _launched_by_sensor(context) and newest - bar > _stale_after_ms(timeframe):
        # A request queued before a crash and launched minutes later would trade at prices that are gone.
        context.log.warning(f"bar {bar} is stale (newest closed bar {newest}): not traded")
        return dg.MaterializeResult(metadata={"cycle_status": "skipped_stale", "bar": dg.MetadataValue.timestamp(bar / 1000)})
    sessions = ledger.sessions()
    runner = TradingRunner(
        settings,
        market=market.build(),
        sessions=sessions,
        broker=broker.build(sessions, settings.book, timeframe),
        redis_url=weights_cache.redis_url,
    )
    outcome = runner.run_cycle(bar, run_id=context.run_id)
    context.log.info(
        f"cycle {outcome.status} for bar {bar}: equity {outcome.equity:.2f}, "
        f"{len(outcome.orders_placed)} orders, {len(outcome.orders_rejected)} rejected, {len(outcome.fills)} fills"
    )
    return dg.MaterializeResult(metadata=portfolio_metadata(outcome, runner.market.name))
