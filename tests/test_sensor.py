"""The trading-cycle sensor: one run per newly closed bar, keyed by the bar, never two cycles at once."""

from __future__ import annotations

import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import dagster as dg
import pytest
import yaml

from tradepipe.definitions import defs
from tradepipe.core.timeframes import iso_utc
from tradepipe.resources import FixedClock, TradingConfigResource
from tradepipe.sensors.trading_cycle import BAR_TAG, TRADING_CYCLE_TAG, next_bar_to_trade, run_key
from tradepipe.config.settings import load_settings

REPO = Path(__file__).resolve().parents[1]
M = 60_000
H = 3_600_000
# 2024-03-01 12:34:56.789 UTC: the newest closed 1m bar opened at 12:33, the newest 1h bar at 11:00.
NOW_MS = 1_709_296_496_789
BAR_1M = 1_709_296_380_000
BAR_1H = 1_709_290_800_000


# --------------------------------------------------------------------------- the pure decision


def test_the_first_tick_trades_the_newest_closed_bar() -> None:
    assert next_bar_to_trade(NOW_MS, "1m", None) == BAR_1M
    assert next_bar_to_trade(NOW_MS, "1h", None) == BAR_1H


def test_a_bar_that_has_not_closed_yet_is_never_chosen() -> None:
    # At 12:34:00.000 exactly, the 12:33 bar has just closed and the 12:34 bar has just opened.
    assert next_bar_to_trade(BAR_1M + 2 * M, "1m", None) == BAR_1M + M
    assert next_bar_to_trade(BAR_1M + 2 * M - 1, "1m", None) == BAR_1M


def test_the_same_bar_again_is_not_traded() -> None:
    assert next_bar_to_trade(NOW_MS, "1m", str(BAR_1M)) is None
    assert next_bar_to_trade(BAR_1M + 2 * M - 1, "1m", str(BAR_1M)) is None  # last ms before the next close


def test_the_next_bar_is_traded_once_it_closes() -> None:
    assert next_bar_to_trade(BAR_1M + 2 * M, "1m", str(BAR_1M)) == BAR_1M + M
    assert next_bar_to_trade(NOW_MS + H, "1h", str(BAR_1H)) == BAR_1H + H


def test_after_downtime_only_the_newest_closed_bar_is_traded() -> None:
    cursor = str(BAR_1M - 90 * M)  # the last bar requested 90 minutes ago
    assert next_bar_to_trade(NOW_MS, "1m", cursor) == BAR_1M


def test_an_iso_cursor_and_a_legacy_ms_cursor_mean_the_same_bar() -> None:
    assert next_bar_to_trade(NOW_MS, "1m", iso_utc(BAR_1M)) is None
    assert next_bar_to_trade(BAR_1M + 2 * M, "1m", iso_utc(BAR_1M)) == BAR_1M + M


def test_a_cursor_ahead_of_the_clock_requests_nothing() -> None:
    assert next_bar_to_trade(NOW_MS, "1m", str(BAR_1M + 5 * M)) is None


def test_run_key_names_the_book_and_the_bar() -> None:
    assert run_key("main", BAR_1M) == f"main:{BAR_1M}"


# --------------------------------------------------------------------------- the Dagster sensor


@pytest.fixture
def clock() -> SimpleNamespace:
    """The time the sensor's ``clock`` resource shows, NOW_MS; move it with ``clock.now_ms = ...``."""
    return SimpleNamespace(now_ms=NOW_MS)


def tick(instance: dg.DagsterInstance, clock: SimpleNamespace, cursor: str | None = None, **settings: Any) -> dg.SensorEvaluationContext:
    """A sensor context on ``instance`` with the code location's resources: the settings (``settings``
    overriding the environment) and a clock standing at ``clock.now_ms``."""
    resources = {"trading": TradingConfigResource.from_settings(load_settings(**settings)), "clock": FixedClock(now=clock.now_ms)}
    return dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources)


@pytest.fixture
def sensor() -> dg.SensorDefinition:
    return defs.resolve_sensor_def("trading_cycle_sensor")


@pytest.fixture
def instance() -> dg.DagsterInstance:
    return dg.DagsterInstance.ephemeral()


def test_the_sensor_starts_running_on_its_own_and_ticks_at_least_every_30_seconds(sensor: dg.SensorDefinition) -> None:
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.minimum_interval_seconds is not None and sensor.minimum_interval_seconds <= 30
    assert sensor.job_name == "trading_cycle"


def test_the_first_evaluation_requests_a_run_for_the_newest_bar_and_moves_the_cursor(
    sensor: dg.SensorDefinition, instance: dg.DagsterInstance, clock: SimpleNamespace
) -> None:
    data = sensor.evaluate_tick(tick(instance, clock))

    (request,) = data.run_requests
    assert request.run_key == f"main:{BAR_1M}"
    assert request.tags[TRADING_CYCLE_TAG] == "main"
    assert request.tags[BAR_TAG] == iso_utc(BAR_1M) and request.tags[BAR_TAG].endswith("Z")
    assert request.run_config == {"ops": {name: {"config": {"bar_open_ms": BAR_1M}} for name in ("market_bars", "portfolio_state")}}
    assert data.cursor == iso_utc(BAR_1M)  # ISO UTC, not raw epoch ms
    # The config is one the trading_cycle job accepts.
    assert dg.validate_run_config(defs.resolve_job_def("trading_cycle"), request.run_config)


def test_a_second_evaluation_within_the_same_bar_skips_and_the_next_bar_is_requested(
    sensor: dg.SensorDefinition, instance: dg.DagsterInstance, clock: SimpleNamespace
) -> None:
    first = sensor.evaluate_tick(tick(instance, clock))
    clock.now_ms = NOW_MS + 1_000  # 12:34:57.789, the 12:34 bar is still forming
    second = sensor(tick(instance, clock, cursor=first.cursor))
    assert isinstance(second, dg.SkipReason)
    assert "no new closed 1m bar yet" in (second.skip_message or "")
    assert "next in about 2 s" in (second.skip_message or "")  # the 12:34 bar closes at 12:35:00

    clock.now_ms = BAR_1M + 2 * M + 1  # 12:35:00.001: the 12:34 bar has closed
    third = sensor.evaluate_tick(tick(instance, clock, cursor=first.cursor))
    (request,) = third.run_requests
    assert request.run_key == f"main:{BAR_1M + M}"
    assert third.cursor == iso_utc(BAR_1M + M)


def test_the_book_and_timeframe_come_from_the_trading_resource_at_each_tick(
    sensor: dg.SensorDefinition, instance: dg.DagsterInstance, clock: SimpleNamespace
) -> None:
    (request,) = sensor.evaluate_tick(tick(instance, clock, book="paper2", timeframe="1h")).run_requests
    assert request.run_key == f"paper2:{BAR_1H}"
    assert request.tags[TRADING_CYCLE_TAG] == "paper2"
    assert request.run_config["ops"]["portfolio_state"]["config"]["bar_open_ms"] == BAR_1H


def _queued_origin() -> object:
    from dagster._core.remote_origin import RegisteredCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin

    repository = RemoteRepositoryOrigin(RegisteredCodeLocationOrigin("tradepipe"), "__repository__")
    return RemoteJobOrigin(repository_origin=repository, job_name="trading_cycle")


def _add_run(instance: dg.DagsterInstance, status: dg.DagsterRunStatus, job_name: str = "trading_cycle") -> None:
    origin = _queued_origin() if status == dg.DagsterRunStatus.QUEUED else None
    instance.add_run(dg.DagsterRun(job_name=job_name, run_id=str(uuid.uuid4()), status=status, remote_job_origin=origin))


@pytest.mark.parametrize(
    ("status", "word"),
    [(dg.DagsterRunStatus.QUEUED, "queued"), (dg.DagsterRunStatus.STARTED, "started"), (dg.DagsterRunStatus.NOT_STARTED, "not_started")],
)
def test_no_run_is_requested_while_a_trading_cycle_is_in_flight(
    sensor: dg.SensorDefinition, instance: dg.DagsterInstance, clock: SimpleNamespace, status: dg.DagsterRunStatus, word: str
) -> None:
    _add_run(instance, status)
    context = tick(instance, clock, cursor=str(BAR_1M - M))
    result = sensor(context)
    assert isinstance(result, dg.SkipReason)
    assert result.skip_message == f"a trading cycle is still {word}"
    data = sensor.evaluate_tick(tick(instance, clock, cursor=str(BAR_1M - M)))
    assert data.run_requests == [] and data.cursor == str(BAR_1M - M)  # the bar is requested once the run ends


@pytest.mark.parametrize("status", [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED])
def test_finished_runs_do_not_hold_the_next_cycle_back(
    sensor: dg.SensorDefinition, instance: dg.DagsterInstance, clock: SimpleNamespace, status: dg.DagsterRunStatus
) -> None:
    _add_run(instance, status)
    _add_run(instance, dg.DagsterRunStatus.STARTED, job_name="performance")  # another job running is no reason
    (request,) = sensor.evaluate_tick(tick(instance, clock, cursor=str(BAR_1M - M))).run_requests
    assert request.run_key == f"main:{BAR_1M}"


def test_two_trading_cycles_never_run_at_once_in_either_dagster_config() -> None:
    job = defs.resolve_job_def("trading_cycle")
    assert TRADING_CYCLE_TAG in job.tags
    for config in (REPO / "dagster.yaml", REPO / "deploy" / "dagster.yaml"):
        limits = yaml.safe_load(config.read_text())["concurrency"]["runs"]["tag_concurrency_limits"]
        (limit,) = [entry for entry in limits if entry["key"] == TRADING_CYCLE_TAG]
        assert limit["limit"] == 1, config
