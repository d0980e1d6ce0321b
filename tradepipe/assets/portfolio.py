"""``portfolio_state``: materialised by every trading cycle; its metadata is the trader's dashboard.

Equity, cash and P&L are numeric metadata, so the asset's page plots them across materialisations
as an equity curve.
"""


from dataclasses import replace
from decimal import Decimal
from typing import Any, Mapping

import dagster as dg

from tradepipe.adapters.db.ledger import ms_to_datetime
from tradepipe.adapters.db.system_metrics import record_metrics
from tradepipe.assets.metadata import table
from tradepipe.core.redaction import redact_value
from tradepipe.core.timeframes import iso_utc, last_closed_bar_open, timeframe_ms
from tradepipe.resources import (
    AlertsResource,
    BrokerResource,
    LedgerDatabase,
    MarketDataResource,
    TradingConfigResource,
    WallClock,
    WeightsReplicaResource,
)
from tradepipe.trading.runner import CycleOutcome, TradingRunner
from tradepipe.config.settings import Settings
from tradepipe.core.formatting import cents, rounded

LIVE_WEIGHTS_KEY = dg.AssetKey("live_weights")


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


def _cents(value: Decimal | float) -> float:
    return float(cents(value))


def _on_tick(price: float, tick: Decimal | None) -> float:
    return float(rounded(price, tick)) if tick else price


def shown_positions(positions: list[dict[str, Any]], ticks: Mapping[str, Decimal]) -> list[dict[str, Any]]:
    """Prices to the market's tick and values to the cent, as a trader reads them (the ledger keeps full precision)."""
    return [
        dict(p, average_price=_on_tick(p["average_price"], ticks.get(p["symbol"])), mark=_on_tick(p["mark"], ticks.get(p["symbol"])), value=_cents(p["value"]))
        for p in positions
    ]


def portfolio_metadata(outcome: CycleOutcome, market_source: str, ticks: Mapping[str, Decimal] | None = None) -> dict[str, Any]:
    # Reasons quote outside errors (feed, exchange, Redis): no credential of theirs reaches the UI.
    outcome = replace(
        outcome,
        skipped=redact_value(outcome.skipped),
        last_signals=redact_value(outcome.last_signals),
        orders_placed=redact_value(outcome.orders_placed),
        orders_rejected=redact_value(outcome.orders_rejected),
    )
    label = " (SYNTHETIC prices)" if market_source == "synthetic" else ""
    return {
        "equity": _cents(outcome.equity),
        "cash": _cents(outcome.cash),
        "day_pnl": _cents(outcome.day_pnl),
        "realized_pnl": _cents(outcome.realized_pnl),
        "unrealized_pnl": _cents(outcome.unrealized_pnl),
        "bar": dg.MetadataValue.timestamp(outcome.bar_open_ms / 1000),
        "bar_open": iso_utc(outcome.bar_open_ms),
        "cycle_status": outcome.status,
        "market": f"{market_source}{label}",
        "positions": table(shown_positions(outcome.positions, ticks or {}), ["symbol", "quantity", "average_price", "mark", "value"]),
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
        # The loop closing, as a link: live_weights cannot be drawn upstream of this asset (it is downstream
        # of it through attribution, performance and the weights, and Dagster's asset graph has no cycles).
        "weights_published_by": dg.MetadataValue.asset(LIVE_WEIGHTS_KEY),
        "weights_version": dg.MetadataValue.json(
            {"weight_history_id": outcome.weight_history_id, "published_at": outcome.weights_published_at}
        ),
        "halted_daily_loss": outcome.halted,
        "cycle_seconds": round(outcome.seconds, 4),
    }


@dg.asset(
    group_name="trading",
    kinds={"python", "sql"},
    deps=["market_bars"],  # the checked bars; the cycle's guard re-applies the same rules
    description="The paper (or exchange) book after the latest trading cycle: equity, cash, positions, signals, orders. "
    "Each cycle trades with the weights live_weights published last (metadata weights_published_by, weights_version).",
)
def portfolio_state(
    context: dg.AssetExecutionContext,
    config: TradingCycleConfig,
    trading: TradingConfigResource,
    ledger: LedgerDatabase,
    market: MarketDataResource,
    broker: BrokerResource,
    weights_cache: WeightsReplicaResource,
    clock: WallClock,
    alerts: AlertsResource,
) -> dg.MaterializeResult:
    settings = trading.settings()
    timeframe = settings.resolved_timeframe
    newest = last_closed_bar_open(clock.now_ms(), timeframe)
    bar = newest if config.bar_open_ms is None else config.bar_open_ms
    if _launched_by_sensor(context) and newest - bar > _stale_after_ms(timeframe):
        # A request queued before a crash and launched minutes later would trade at prices that are gone.
        context.log.warning(f"bar {iso_utc(bar)} is stale (newest closed bar {iso_utc(newest)}): not traded")
        with ledger.sessions().begin() as session:  # a skipped run is system health too
            record_metrics(session, ms_to_datetime(bar), [("cycle_skipped", 1.0, {"book": settings.book, "reason": "stale", "newest_bar": iso_utc(newest)})])
        return dg.MaterializeResult(metadata={"cycle_status": "skipped_stale", "bar": dg.MetadataValue.timestamp(bar / 1000)})
    sessions = ledger.sessions()
    runner = TradingRunner(
        settings,
        market=market.build(),
        sessions=sessions,
        broker=broker.build(sessions, settings.book, timeframe),
        redis_url=weights_cache.redis_url,
    )
    outcome = runner.run_cycle(bar, run_id=context.run_id, now_ms=clock.now_ms())
    context.log.info(
        f"cycle {outcome.status} for bar {iso_utc(bar)}: equity {outcome.equity:.2f}, "
        f"{len(outcome.orders_placed)} orders, {len(outcome.orders_rejected)} rejected, {len(outcome.fills)} fills"
    )
    if outcome.halted:
        alert_daily_loss_halt(settings, ledger, alerts, outcome)
    metadata = portfolio_metadata(outcome, runner.market.name, {s: r.price_tick for s, r in runner.rules().items()})
    metadata.update(day_chart_links(settings, outcome.bar_open_ms))
    return dg.MaterializeResult(metadata=metadata)


def alert_daily_loss_halt(settings: Settings, ledger: LedgerDatabase, alerts: AlertsResource, outcome: CycleOutcome) -> None:
    """Once per book and UTC day (the alert's key): the book stopped opening risk for the rest of the day."""
    day = iso_utc(outcome.bar_open_ms)[:10]
    alerts.send(
        ledger.sessions(),
        "daily_loss_halt",
        f"tradepipe: book {outcome.book!r} HALTED for {day} UTC by the daily-loss limit "
        f"({settings.daily_loss_limit_fraction:.1%}): day P&L {outcome.day_pnl:,.2f}, equity {outcome.equity:,.2f}. "
        "Only risk-reducing orders pass until midnight UTC or `tradepipe risk reset`.",
        {"book": outcome.book, "day": day, "equity": f"{outcome.equity:.2f}", "day_pnl": f"{outcome.day_pnl:.2f}"},
        key=f"halt:{outcome.book}:{day}",
    )


def day_chart_links(settings: Settings, bar_ms: int) -> dict[str, Any]:
    """Links to the day's charts, drawn every 10 minutes by ``day_charts`` (not here: the cycle stays fast)."""
    from tradepipe.reports.day_charts import chart_path

    day = iso_utc(bar_ms)[:10]
    return {
        f"chart {symbol}": dg.MetadataValue.path(str(chart_path(settings.home, settings.book, symbol, day).resolve()))
        for symbol in settings.symbols
    }
