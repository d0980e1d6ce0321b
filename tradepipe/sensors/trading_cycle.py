"""The trading-cycle sensor: one run per newly closed bar, keyed by the bar, never two at once.

The decision is a pure function (``next_bar_to_trade``) so it is tested without a clock; the sensor
only reads the clock (the ``clock`` resource), the cursor and the in-flight runs. Its cursor (the open time of
the last bar requested, ISO UTC) lives in Dagster's instance storage, so it survives a restart of ``dagster dev`` or
the daemon; the
run key makes Dagster itself refuse a second run for the same bar, and the ledger's unique
(book, bar) key refuses a second cycle even if a run were launched by hand.
"""


import dagster as dg

from tradepipe.core.timeframes import iso_utc, last_closed_bar_open, parse_utc_ms, timeframe_ms
from tradepipe.resources import TradingConfigResource, WallClock

TRADING_CYCLE_TAG = "tradepipe/trading_cycle"
BAR_TAG = "tradepipe/bar_open"  # ISO UTC; the run config keeps the integer bar_open_ms
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def next_bar_to_trade(now_ms: int, timeframe: str, cursor: str | None) -> int | None:
    """The newest closed bar if it is newer than the cursor, else None.

    After downtime only the newest closed bar is traded: deciding on stale bars in a live loop would
    place orders at prices that are gone. History is replayed with ``tradepipe backtest`` instead.
    """
    bar = last_closed_bar_open(now_ms, timeframe)
    if cursor is not None and bar <= parse_utc_ms(cursor):
        return None
    return bar


def run_key(book: str, bar_open_ms: int) -> str:
    return f"{book}:{bar_open_ms}"


def build_trading_cycle_sensor(job, interval_seconds: int) -> dg.SensorDefinition:  # type: ignore[no-untyped-def]
    """``job`` is the ``trading_cycle`` asset job (what ``define_asset_job`` returns)."""
    @dg.sensor(
        name="trading_cycle_sensor",
        job=job,
        minimum_interval_seconds=interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Requests one trading_cycle run per newly closed bar (run key = book:bar open ms).",
    )
    def trading_cycle_sensor(
        context: dg.SensorEvaluationContext, trading: TradingConfigResource, clock: WallClock
    ) -> dg.RunRequest | dg.SkipReason:
        settings = trading.settings()
        timeframe = settings.resolved_timeframe
        in_flight = context.instance.get_run_records(
            dg.RunsFilter(job_name=job.name, statuses=IN_FLIGHT), limit=1
        )
        if in_flight:
            return dg.SkipReason(f"a trading cycle is still {in_flight[0].dagster_run.status.value.lower()}")
        now_ms = clock.now_ms()
        bar = next_bar_to_trade(now_ms, timeframe, context.cursor)
        if bar is None:
            assert context.cursor is not None  # without a cursor the newest closed bar is always new
            last = parse_utc_ms(context.cursor)
            wait_s = (last + 2 * timeframe_ms(timeframe) - now_ms) / 1000
            return dg.SkipReason(
                f"no new closed {timeframe} bar yet (last traded {iso_utc(last)}; next in about {max(wait_s, 0):.0f} s)"
            )
        context.update_cursor(iso_utc(bar))
        return dg.RunRequest(
            run_key=run_key(settings.book, bar),
            run_config={"ops": {name: {"config": {"bar_open_ms": bar}} for name in ("market_bars", "portfolio_state")}},
            tags={TRADING_CYCLE_TAG: settings.book, BAR_TAG: iso_utc(bar)},
        )

    return trading_cycle_sensor
