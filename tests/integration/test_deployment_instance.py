"""deploy/dagster.yaml as Dagster loads it, on a fresh PostgreSQL database: what is retried, what is never.

A run failure is recorded the way the run worker or run monitoring records it (``report_run_failed``
with a failure reason); Dagster then tags the run ``dagster/will_retry``, which is what the daemon's
automatic re-execution acts on.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

pytestmark = pytest.mark.postgres

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def instance(tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    from dagster import DagsterInstance

    url = make_url(postgres_url)
    for name, value in {
        "DAGSTER_PG_HOST": url.host or "127.0.0.1",
        "DAGSTER_PG_PORT": str(url.port or 5432),
        "DAGSTER_PG_DB": url.database or "",
        "DAGSTER_PG_USER": url.username or "postgres",
        "DAGSTER_PG_PASSWORD": url.password or "",
    }.items():
        monkeypatch.setenv(name, value)
    shutil.copy(REPO / "deploy" / "dagster.yaml", tmp_path / "dagster.yaml")
    loaded = DagsterInstance.from_config(str(tmp_path))
    yield loaded
    loaded.dispose()


def _failed_run(instance, job_name: str, reason):  # type: ignore[no-untyped-def]
    from dagster._core.events import JobFailureData

    from tradepipe.definitions import defs

    job = defs.resolve_job_def(job_name)
    run = instance.create_run_for_job(job_def=job, tags=dict(job.tags))
    instance.report_run_failed(run, "test failure", job_failure_data=JobFailureData(error=None, failure_reason=reason))
    return instance.get_run_by_id(run.run_id)


def test_the_instance_is_postgres_with_queue_retries_and_monitoring(instance) -> None:  # type: ignore[no-untyped-def]
    from dagster._core.run_coordinator import QueuedRunCoordinator

    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
    assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
    assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
    assert instance.run_retries_retry_on_asset_or_op_failure is False
    assert instance.run_monitoring_enabled and instance.run_monitoring_max_resume_run_attempts == 0
    queue = instance.get_concurrency_config().run_queue_config
    limits = {(limit["key"], limit.get("value")): limit["limit"] for limit in queue.tag_concurrency_limits}
    assert limits[("tradepipe/trading_cycle", None)] == 1
    # Whatever else is queued, a trading cycle finds a free slot.
    assert limits[("tradepipe/trading_cycle", None)] + limits[("tradepipe/pool", "analytics")] + limits[("dagster/backfill", None)] < queue.max_concurrent_runs


def test_a_trading_cycle_is_never_retried_whatever_killed_it(instance) -> None:  # type: ignore[no-untyped-def]
    from dagster._core.events import RunFailureReason

    for reason in RunFailureReason:
        run = _failed_run(instance, "trading_cycle", reason)
        assert run.tags["dagster/will_retry"] == "false", reason


def test_an_analytics_run_is_retried_when_its_process_died_but_not_when_an_asset_failed(instance) -> None:  # type: ignore[no-untyped-def]
    from dagster._core.events import RunFailureReason

    for reason in (RunFailureReason.UNEXPECTED_TERMINATION, RunFailureReason.RUN_WORKER_RESTART, RunFailureReason.START_TIMEOUT):
        assert _failed_run(instance, "performance_job", reason).tags["dagster/will_retry"] == "true", reason
    assert _failed_run(instance, "performance_job", RunFailureReason.STEP_FAILURE).tags["dagster/will_retry"] == "false"
