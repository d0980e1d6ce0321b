"""After a warm-up (``tradepipe warmup``), the analytics and the weights of today, in one launch.

The warm-up trades the last day of synthetic bars into an empty live book; this sensor then asks for
the analytics of every earlier day the warm-up traded (``performance_job``, one run per day, so
today's rolling window finds their attribution), and once those are materialised, one run of
attribution, performance and weights for today's partition. So the first weight decision is made on
real votes minutes after the first start instead of after midnight. Each run once per book and day
(run keys); a book without warm-up cycles is left to the schedules.
"""

from datetime import date, datetime, timedelta, timezone
from typing import Any

import dagster as dg

from tradepipe.adapters.db.trades import warmup_cycles
from tradepipe.adapters.db.weights import latest_weight_decision
from tradepipe.resources.ledger import LedgerDatabase
from tradepipe.resources.trading import TradingConfigResource
from tradepipe.trading.warmup import WARMUP_RUN_PREFIX


WARMUP_TAG = "tradepipe/warmup"


def warmup_days(first_bar: date, today: date) -> list[date]:
    return [first_bar + timedelta(days=i) for i in range((today - first_bar).days + 1)]


def build_warmup_analytics_sensor(analytics_job: Any, performance_job: Any) -> dg.SensorDefinition:
    @dg.sensor(
        name="warmup_analytics",
        jobs=[analytics_job, performance_job],
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Once after a warm-up: the earlier warm-up days' analytics, then today's analytics and weights in one run.",
    )
    def warmup_analytics(context: dg.SensorEvaluationContext, ledger: LedgerDatabase, trading: TradingConfigResource) -> dg.RunRequest | dg.SkipReason:
        settings = trading.settings()
        today = datetime.now(timezone.utc).date()
        with ledger.sessions()() as session:
            count, first_bar = warmup_cycles(session, settings.book, WARMUP_RUN_PREFIX)
            decided = latest_weight_decision(session, settings.book, today) if count else None
        if not count or first_bar is None:
            return dg.SkipReason(f"book {settings.book!r} has no warm-up cycles: performance and weights follow their schedules")
        if decided is not None:
            return dg.SkipReason(f"today's weights were decided (weight_history {decided.id}); nothing to do")
        done = context.instance.get_materialized_partitions(dg.AssetKey("agent_performance"))
        for day in warmup_days(first_bar.date(), today)[:-1]:
            if day.isoformat() not in done:
                return dg.RunRequest(
                    run_key=f"warmup-performance:{settings.book}:{day.isoformat()}",
                    job_name=performance_job.name,
                    partition_key=day.isoformat(),
                    tags={WARMUP_TAG: "earlier warm-up day"},
                )
        return dg.RunRequest(
            run_key=f"warmup-analytics:{settings.book}:{today.isoformat()}",
            job_name=analytics_job.name,
            partition_key=today.isoformat(),
            tags={WARMUP_TAG: f"{count} warm-up cycles"},
        )

    return warmup_analytics
