"""Trading has priority over analytics in the run queue: the instance configs and the job tags agree.

The end-to-end daemon test shows it live (a backfill beside the sensor); this one keeps the
configuration from drifting: whatever the analytics jobs and backfills take, a slot stays free.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest
import yaml

from tradepipe.config.run_pools import ANALYTICS_TAGS, POOL_TAG

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("config", ["dagster.yaml", "deploy/dagster.yaml"])
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
    assert trading.tags.get(POOL_TAG) == "trading"  # never counted against the analytics lane's limit
    assert int(trading.tags["dagster/priority"]) > 0


def _queue_decision(tmp_path: Path, config: str, running: list[dict[str, str]], queued: list[dict[str, str]]) -> list[dict[str, str]]:
    """The tags of the runs Dagster's queued-run coordinator would launch next, on ``config``.

    Real instance and the daemon's own dequeue decision; the runs are created (not executed) with
    the tags each kind of run carries."""
    from dagster._core.remote_origin import InProcessCodeLocationOrigin, RemoteRepositoryOrigin
    from dagster._core.test_utils import create_run_for_test
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon

    location = InProcessCodeLocationOrigin(LoadableTargetOrigin(module_name="tradepipe.definitions"), location_name="tradepipe")
    repository = RemoteRepositoryOrigin(location, "__repository__")

    tmp_path.mkdir()
    shutil.copy(REPO / config, tmp_path / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    try:
        for status, runs in ((dg.DagsterRunStatus.STARTED, running), (dg.DagsterRunStatus.QUEUED, queued)):
            for tags in runs:
                job = tags.pop("job")
                create_run_for_test(instance, job_name=job, status=status, tags=tags, remote_job_origin=repository.get_job_origin(job))
        daemon = QueuedRunCoordinatorDaemon(interval_seconds=1)
        chosen = daemon._get_runs_to_dequeue(instance, instance.get_concurrency_config(), None)  # noqa: SLF001 (the daemon's decision itself)
        return [dict(run.tags, job=run.job_name) for run in chosen]
    finally:
        instance.dispose()


def test_a_twenty_day_backfill_never_keeps_the_trading_cycle_in_the_queue(tmp_path: Path) -> None:
    """The probe: four backfill runs used to fill the four slots; the trading cycle then waited ~150 s."""
    from tradepipe.definitions import defs

    def backfill(day: int) -> dict[str, str]:
        return {"job": "performance_job", **ANALYTICS_TAGS, "dagster/backfill": "b1", "dagster/partition": f"2026-11-{day:02d}"}

    trading = {"job": "trading_cycle", **defs.resolve_job_def("trading_cycle").tags}
    ui_backfill = {"job": "__ASSET_JOB", "dagster/backfill": "b2"}
    # The backfill was queued first (20 days); the sensor's cycle arrives behind it.
    first = _queue_decision(tmp_path / "a", "dagster.yaml", running=[], queued=[backfill(d) for d in range(1, 21)] + [dict(trading)])
    assert first[0]["job"] == "trading_cycle"  # its priority takes it out of the queue first
    assert sum(1 for r in first if r["job"] == "performance_job") == 1  # the backfill lane: one run at a time

    # The worst case: the analytics lane and the other-backfill lane both full, the next cycle queued.
    running = [backfill(1), {"job": "weights_job", **ANALYTICS_TAGS}, ui_backfill]
    later = _queue_decision(tmp_path / "b", "dagster.yaml", running=running, queued=[backfill(d) for d in range(2, 21)] + [dict(trading)])
    assert [r["job"] for r in later] == ["trading_cycle"]


def _failed_run(instance: dg.DagsterInstance, job_name: str, reason: object) -> dg.DagsterRun:
    """A run of ``job_name`` failed the way the run worker or run monitoring records it."""
    from dagster._core.events import JobFailureData

    from tradepipe.definitions import defs

    job = defs.resolve_job_def(job_name)
    run = instance.create_run_for_job(job_def=job, tags=dict(job.tags))
    instance.report_run_failed(run, "test failure", job_failure_data=JobFailureData(error=None, failure_reason=reason))  # type: ignore[arg-type]
    found = instance.get_run_by_id(run.run_id)
    assert found is not None
    return found


def test_make_run_retries_runs_that_never_started_but_never_a_trading_cycle(tmp_path: Path) -> None:
    """A scheduled report, performance or check run whose process could not start (a busy host) is run
    again; a failed asset is not (the failure is in the code or the data); a trading cycle never is."""
    from dagster._core.events import RunFailureReason

    shutil.copy(REPO / "dagster.yaml", tmp_path / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    try:
        assert instance.run_retries_enabled and instance.run_retries_max_retries >= 2
        assert instance.code_server_process_startup_timeout >= 300
        for job in ("performance_job", "project_report_job", "data_quality", "day_charts_job"):
            for reason in (RunFailureReason.START_TIMEOUT, RunFailureReason.UNEXPECTED_TERMINATION, RunFailureReason.RUN_WORKER_RESTART):
                assert _failed_run(instance, job, reason).tags["dagster/will_retry"] == "true", (job, reason)
            assert _failed_run(instance, job, RunFailureReason.STEP_FAILURE).tags["dagster/will_retry"] == "false", job
        for reason in RunFailureReason:
            assert _failed_run(instance, "trading_cycle", reason).tags["dagster/will_retry"] == "false", reason
        queue = instance.get_concurrency_config().run_queue_config
        assert queue is not None and queue.max_user_code_failure_retries >= 3  # a launch that timed out is queued again
    finally:
        instance.dispose()


def test_both_instances_give_the_code_server_time_on_a_busy_host() -> None:
    for config in ("dagster.yaml", "deploy/dagster.yaml"):
        code_servers = yaml.safe_load((REPO / config).read_text())["code_servers"]
        assert code_servers["local_startup_timeout"] >= 300, config
    makefile = (REPO / "Makefile").read_text()
    assert "export DAGSTER_GRPC_TIMEOUT_SECONDS ?= 180" in makefile
