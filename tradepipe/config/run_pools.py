"""Which runs may take the instance's run slots: trading first, analytics and backfills in their own lane.

``dagster.yaml`` (and ``deploy/dagster.yaml``) allow 4 (8) runs at once, at most one trading
cycle (tag ``tradepipe/trading_cycle``), at most 2 runs of the analytics pool (tag
``tradepipe/pool=analytics``, carried by ``performance_job``, ``weights_job``, ``promote_weights`` and so
by every backfill of them) and at most 1 other backfill run (tag ``dagster/backfill``, which Dagster
puts on every backfill run, e.g. an asset backfill from the UI). So analytics and backfills together
hold at most 3 slots of 4 and a trading cycle always finds one free; its ``dagster/priority`` puts it
ahead of any queued analytics run, so a long backfill delays it by at most one sensor tick.
"""

from __future__ import annotations

POOL_TAG = "tradepipe/pool"
ANALYTICS_TAGS = {POOL_TAG: "analytics"}
TRADING_PRIORITY_TAGS = {"dagster/priority": "100"}

__all__ = ["ANALYTICS_TAGS", "POOL_TAG", "TRADING_PRIORITY_TAGS"]
