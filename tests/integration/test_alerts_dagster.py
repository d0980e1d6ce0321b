"""The alerts as the Dagster layer sends them, to a real HTTP server on loopback.

A daily-loss halt alerts once per day from ``portfolio_state``; a failed trading-cycle run alerts
through the run-failure sensor; the daily summary carries the day's numbers from the ledger.
"""

from __future__ import annotations

from datetime import datetime, timezone

import dagster as dg
import pytest
from sqlalchemy import select

from tests.adapters.test_webhook import Hook, hook  # noqa: F401  (fixture)
from tests.integration.test_trader_views import build_hand_ledger
from tradepipe.adapters.db.engine import session_factory, upgrade
from tradepipe.adapters.db.models import BookRow, SystemMetricRow
from tradepipe.jobs import daily_summary_job
from tradepipe.sensors.alerts import build_alert_sensors
from tradepipe.assets.portfolio import portfolio_state
from tradepipe.resources import build_resources
from tradepipe.config.settings import load_settings

BAR0 = 1_764_633_600_000 + 12 * 3_600_000  # 2025-12-02T12:00:00Z
M = 60_000


def _settings(monkeypatch: pytest.MonkeyPatch, url: str, webhook: str):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", url)
    monkeypatch.setenv("TRADEPIPE_WEBHOOK_URL", webhook)
    upgrade(url)
    return load_settings()


def _cycle(bar: int, resources: dict, instance: dg.DagsterInstance, raise_on_error: bool = True) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [portfolio_state],
        instance=instance,
        run_config={"ops": {"portfolio_state": {"config": {"bar_open_ms": bar}}}},
        resources=resources,
        raise_on_error=raise_on_error,
        tags={"tradepipe/bar_open": datetime.fromtimestamp(bar / 1000, tz=timezone.utc).isoformat()},
    )


def test_a_daily_loss_halt_alerts_once_per_day(sqlite_url: str, monkeypatch: pytest.MonkeyPatch, hook: tuple[str, Hook]) -> None:  # noqa: F811
    url, state = hook
    settings = _settings(monkeypatch, sqlite_url, url)
    resources = build_resources(settings, "test")
    instance = dg.DagsterInstance.ephemeral()
    _cycle(BAR0, resources, instance)
    with session_factory(sqlite_url).begin() as session:  # the day is already halted (as the risk manager records it)
        book = session.get(BookRow, "main")
        book.halted_day, book.halt_reason = datetime.fromtimestamp(BAR0 / 1000, tz=timezone.utc).date(), "daily loss 3.2%"

    _cycle(BAR0 + M, resources, instance)
    _cycle(BAR0 + 2 * M, resources, instance)

    halts = [b for b in state.bodies if b["event"] == "daily_loss_halt"]
    assert len(halts) == 1
    assert "HALTED for 2025-12-02 UTC" in halts[0]["text"] and halts[0]["details"]["book"] == "main"
    assert halts[0]["text"] == halts[0]["content"]


def test_a_failed_trading_cycle_alerts_through_the_run_failure_sensor(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, hook: tuple[str, Hook]  # noqa: F811
) -> None:
    url, state = hook
    settings = _settings(monkeypatch, sqlite_url, url)
    resources = build_resources(settings, "test")
    instance = dg.DagsterInstance.ephemeral()
    _cycle(BAR0 + M, resources, instance)
    failed = _cycle(BAR0, resources, instance, raise_on_error=False)  # an older bar than the book's newest: refused
    assert not failed.success
    failure_sensor = build_alert_sensors(dg.define_asset_job("trading_cycle", selection=[portfolio_state]))[0]
    event = next(e for e in failed.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)

    context = dg.build_run_status_sensor_context(
        sensor_name="trading_cycle_failure_alert", dagster_event=event, dagster_instance=instance, dagster_run=failed.dagster_run,
        resources=resources,
    ).for_run_failure()
    failure_sensor(context)
    failure_sensor(context)  # evaluated twice (a daemon restart): still one alert

    (alert,) = [b for b in state.bodies if b["event"] == "trading_cycle_failed"]
    assert "FAILED" in alert["text"] and alert["details"]["run_id"] == failed.run_id
    assert url not in str(alert)


def test_the_daily_summary_carries_the_days_numbers(sqlite_url: str, monkeypatch: pytest.MonkeyPatch, hook: tuple[str, Hook]) -> None:  # noqa: F811
    url, state = hook
    settings = _settings(monkeypatch, sqlite_url, url)
    build_hand_ledger(sqlite_url)

    result = daily_summary_job.execute_in_process(resources=build_resources(settings, "test"), tags={"tradepipe/summary_day": "2025-12-03"})

    assert result.success
    (summary,) = state.bodies
    assert summary["event"] == "daily_summary"
    assert "2025-12-03 UTC" in summary["text"] and "realised -2.86" in summary["text"]  # -2.855 to the cent
    assert "2 trades closed (win rate 50%)" in summary["text"] and "equity 10,009.38" in summary["text"]
    with session_factory(sqlite_url)() as session:
        sent = session.scalars(select(SystemMetricRow).where(SystemMetricRow.metric_name == "alert_sent")).all()
    assert [s.tags["key"] for s in sent] == ["summary:main:2025-12-03"]
