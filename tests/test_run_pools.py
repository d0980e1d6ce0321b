"""Trading has priority over analytics in the run queue (issue 10): the instance configs and the job tags agree.

The end-to-end daemon test shows it live (a backfill beside the sensor); this one keeps the
configuration from drifting: whatever the analytics jobs and backfills take, a slot stays free.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest
import yaml

from tradepipe.run_pools import ANALYTICS_TAGS, POOL_TAG

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("config", ["dagster.yaml", "deploy/dagster.postgres.yaml"])
def test_analytics_and_backfills_always_leave_a_run_slot_for_trading(config: str) -> None:
    runs = yaml.safe_load((REPO / config).read_text())["concurrency"]["runs"]
    limits = {(limit["key"], limit.get("value")): limit["limit"] for limit in runs["tag_concurrency_limits"]}
    assert limits[("tradepipe/trading_cycle", None)] == 1
    analytics, other_backfills = limits[(POOL_TAG, "analytics")], limits[("dagster/backfill", None)]
    # worst case: the analytics lane full and the other backfills full; the trading cycle still fits
    assert analytics + other_backfills + 1 <= runs["max_concurrent_runs"]


def test_the_instance_accepts_the_config(tmp_path: Path) -> None:
    shutil.copy(REPO / "dagster.yaml", tmp_path / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    try:
        run_queue = instance.get_concurrency_config().run_queue_config
        assert run_queue is not None
        keys = {limit["key"] for limit in run_queue.tag_concurrency_limits}
        assert {"tradepipe/trading_cycle", POOL_TAG, "dagster/backfill"} <= keys
    finally:
        instance.dispose()


def test_analytics_jobs_are_in_their_lane_and_the_trading_cycle_goes_first() -> None:
    from tradepipe.definitions import defs

    for name in ("performance_job", "weights_job", "promote_weights"):
        assert ANALYTICS_TAGS.items() <= defs.resolve_job_def(name).tags.items(), name
    trading = defs.resolve_job_def("trading_cycle")
    assert POOL_TAG not in trading.tags
    assert int(trading.tags["dagster/priority"]) > 0
