"""Alerts the trader gets without asking, through the [`alerts`] webhook resource:

* ``trading_cycle_failure_alert``: a run-failure sensor on the trading-cycle job;
* ``stale_weights_alert``: a sensor that says once when the live weight set has not been renewed for
  TRADEPIPE_STALE_WEIGHTS_HOURS (the daily weights run was missed or failed), and retries alerts
  that did not get through;
* ``daily_summary``: a schedule at 00:20 UTC sending the previous UTC day's profit and the live weights.

The daily-loss halt alert is sent by ``portfolio_state`` itself, in the cycle that halts. Every alert
has a key (run id, live set, day), so a restart or a second evaluation never sends it twice.
"""


from datetime import date, datetime, timedelta, timezone
from typing import Any, Mapping

import dagster as dg

from tradepipe.adapters.db.ledger import datetime_to_ms, latest_cycle
from tradepipe.adapters.db.trades import (
    first_cycle_bar,
    load_book_trips,
    load_snapshots,
)
from tradepipe.adapters.db.weights import live_weights
from tradepipe.core.timeframes import iso_utc
from tradepipe.core.trades import PeriodProfit, period_profit
from tradepipe.resources.alerts import AlertsResource
from tradepipe.resources.ledger import LedgerDatabase
from tradepipe.resources.trading import TradingConfigResource
from tradepipe.core.formatting import money

HOUR_MS = 3_600_000


def stale_weights_reason(
    now_ms: int, stale_hours: float, live_promoted_ms: int | None, first_cycle_ms: int | None, last_cycle_source: str | None
) -> str | None:
    """Why the weights the book trades with are stale, or None. Pure, so it is tested without a clock.

    Stale: the live set was published more than ``stale_hours`` ago; or none was ever published and the
    book has traded for longer than that on static defaults; or the last cycle fell back to the
    last-known file because both the database and Redis were unreadable.
    """
    limit_ms = stale_hours * HOUR_MS
    if last_cycle_source == "last_known":
        return "the last trading cycle could read neither the database nor Redis and traded on the last-known weights file"
    if live_promoted_ms is not None:
        if now_ms - live_promoted_ms > limit_ms:
            return f"the live weight set was published {iso_utc(live_promoted_ms)}, more than {stale_hours:g} h ago"
        return None
    if first_cycle_ms is not None and now_ms - first_cycle_ms > limit_ms:
        return f"no weight set was ever published and the book has traded on static defaults since {iso_utc(first_cycle_ms)}"
    return None


def daily_summary_text(book: str, day: PeriodProfit | None, day_label: str, equity: Any, weights: Mapping[str, float], source: str) -> str:
    shown = ", ".join(f"{a} {w:.2f}" for a, w in sorted(weights.items(), key=lambda kv: -kv[1]))
    if day is None:
        body = "no trading that day"
    else:
        rate = "-" if day.win_rate is None else f"{day.win_rate:.0%}"
        body = (
            f"realised {money(day.realized_pnl)}, unrealised at day end {money(day.unrealized_pnl)}, fees {money(day.fees)}, "
            f"{day.trades} trades closed (win rate {rate})"
        )
    return f"tradepipe daily summary {day_label} UTC, book {book!r}: {body}; equity {money(equity)}; weights ({source}): {shown or '-'}"


def build_alert_sensors(trading_cycle_job: Any) -> list[dg.SensorDefinition]:
    @dg.run_failure_sensor(
        name="trading_cycle_failure_alert",
        monitored_jobs=[trading_cycle_job],
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Webhook alert when a trading-cycle run fails.",
    )
    def trading_cycle_failure_alert(context: dg.RunFailureSensorContext, ledger: LedgerDatabase, alerts: AlertsResource) -> None:
        run = context.dagster_run
        bar = run.tags.get("tradepipe/bar_open", "?")
        error = context.failure_event.message or "run failed"
        alerts.send(
            ledger.sessions(),
            "trading_cycle_failed",
            f"tradepipe: trading cycle for bar {bar} FAILED (run {run.run_id[:8]}): {error[:300]}",
            {"run_id": run.run_id, "bar_open": bar, "book": run.tags.get("tradepipe/trading_cycle")},
            key=f"cycle_failed:{run.run_id}",
        )

    @dg.sensor(
        name="stale_weights_alert",
        minimum_interval_seconds=600,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Webhook alert (once per live set) when the live agent weights are stale; retries undelivered alerts.",
    )
    def stale_weights_alert(
        context: dg.SensorEvaluationContext, ledger: LedgerDatabase, alerts: AlertsResource, trading: TradingConfigResource
    ) -> dg.SkipReason:
        if not alerts.enabled:
            return dg.SkipReason("alerts are off (TRADEPIPE_WEBHOOK_URL not set)")
        settings = trading.settings()
        sessions = ledger.sessions()
        retried = alerts.retry_undelivered(sessions)
        now_ms = int(datetime.now(timezone.utc).timestamp() * 1000)
        with sessions() as session:
            live = live_weights(session, settings.book)
            first = first_cycle_bar(session, settings.book)
            cycle = latest_cycle(session, settings.book)
        reason = stale_weights_reason(
            now_ms,
            settings.stale_weights_hours,
            datetime_to_ms(live.promoted_at) if live and live.promoted_at else None,
            datetime_to_ms(first) if first else None,
            cycle.weights_source if cycle else None,
        )
        note = f"; {retried} undelivered alert(s) resent" if retried else ""
        if reason is None:
            return dg.SkipReason(f"live weights are fresh{note}")
        alerts.send(
            sessions,
            "stale_weights",
            f"tradepipe: STALE agent weights in book {settings.book!r}: {reason}",
            {"book": settings.book, "live_weight_history_id": live.id if live else None},
            key=f"stale:{settings.book}:{live.id if live else 'defaults'}:{cycle.weights_source if cycle else ''}",
        )
        return dg.SkipReason(f"stale weights: {reason}{note}")

    return [trading_cycle_failure_alert, stale_weights_alert]


@dg.op(description="Send the previous UTC day's profit, equity and live weights to the webhook.")
def send_daily_summary(
    context: dg.OpExecutionContext, ledger: LedgerDatabase, alerts: AlertsResource, trading: TradingConfigResource
) -> None:
    settings = trading.settings()
    tags = context.run.tags
    day = date.fromisoformat(tags["tradepipe/summary_day"]) if "tradepipe/summary_day" in tags else datetime.now(timezone.utc).date() - timedelta(days=1)
    sessions = ledger.sessions()
    with sessions() as session:
        fills, trips, latest = load_book_trips(session, settings.book)
        periods = {p.start: p for p in period_profit(fills, trips, load_snapshots(session, settings.book), "daily")}
        live = live_weights(session, settings.book)
    weights = {k: float(v) for k, v in live.new_weights.items()} if live else settings.default_weights
    source = f"weight_history {live.id}" if live else "static defaults"
    period = periods.get(day)
    text = daily_summary_text(settings.book, period, day.isoformat(), period.equity_end if period else (latest.equity if latest else None), weights, source)
    delivery = alerts.send(sessions, "daily_summary", text, {"book": settings.book, "day": day.isoformat()}, key=f"summary:{settings.book}:{day}")
    context.log.info(f"daily summary for {day}: {'sent' if delivery.delivered else delivery.error}")


