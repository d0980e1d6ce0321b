"""After a warm-up (``tradepipe warmup``), the analytics and the weights of today, in one launch.

The warm-up trades the last day of synthetic bars into an empty live book; this sensor then requests
one run of attribution, performance and weights for today's partition, so the first weight decision
is made on real votes minutes after the first start instead of after midnight. Once per book and day
(run key); a book without warm-up cycles is left to the schedules.
"""


from datetime import datetime, timezone
from typing import Any

import dagster as dg

from tradepipe.adapters.db.trades import warmup_cycle_count
from tradepipe.adapters.db.weights import latest_weight_decision
from tradepipe.resources.ledger import LedgerDatabase
from tradepipe.resources.trading import TradingConfigResource

WARMUP_RUN_PREFIX = "warmup:"  # tradepipe.warmup tags its cycles' run_id with it
WARMUP_TAG = "tradepipe/warmup"


def build_warmup_analytics_sensor(job: Any) -> dg.SensorDefinition:
    @dg.sensor(
        name="warmup_analytics",
        job=job,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Once after a warm-up: attribution, performance and weights for today's partition in one run.",
    )
    def warmup_analytics(context: dg.SensorEvaluationContext, ledger: LedgerDatabase, trading: TradingConfigResource) -> dg.RunRequest | dg.SkipReason:
        settings = trading.settings()
        today = datetime.now(timezone.utc).date()
        with ledger.sessions()() as session:
            warm = warmup_cycle_count(session, settings.book, WARMUP_RUN_PREFIX)
            decided = latest_weight_decision(session, settings.book, today) if warm else None
        if not warm:
            return dg.SkipReason(f"book {settings.book!r} has no warm-up cycles: performance and weights follow their schedules")
        if decided is not None:
            return dg.SkipReason(f"today's weights were decided (weight_history {decided.id}); nothing to do")
        return dg.RunRequest(
            run_key=f"warmup-analytics:{settings.book}:{today.isoformat()}",
            partition_key=today.isoformat(),
            tags={WARMUP_TAG: f"{warm} warm-up cycles"},
        )

    return warmup_analytics
