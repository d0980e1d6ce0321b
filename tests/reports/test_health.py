"""System health recorded as it happens: each live cycle's latency by stage, data errors, skipped symbols,
rejections and weights source; a stale run skipped; a failed run seen by the run-failure sensor."""

from __future__ import annotations

import time
from pathlib import Path

import dagster as dg
from sqlalchemy import select

from tradepipe.adapters.db.engine import session_factory, upgrade
from tradepipe.adapters.db.models import SystemMetricRow
from tradepipe.adapters.market import ReplayMarket
from tradepipe.assets.portfolio import portfolio_state
from tradepipe.core.health import cycle_metrics
from tradepipe.core.timeframes import last_closed_bar_open
from tradepipe.resources import LedgerDatabase, build_resources
from tradepipe.trading.runner import TradingRunner
from tradepipe.sensors.health import record_failed_runs
from tradepipe.config.settings import load_settings

T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
H = 3_600_000


def _metrics(url: str) -> list[SystemMetricRow]:
    with session_factory(url)() as session:
        return list(session.scalars(select(SystemMetricRow).order_by(SystemMetricRow.id)))


def test_cycle_metrics_name_every_figure() -> None:
    rows = cycle_metrics(
        book="main", bar="b", stage_seconds={"market_data": 0.2, "agents": 0.1, "risk": 0.05, "ledger": 0.3, "total": 0.7},
        data_errors={"ETH/USDT": "timeout"}, retries={"ETH/USDT": 4, "BTC/USDT": 0}, skipped={"ETH/USDT": "market data: timeout"},
        rejected_kinds=["max_position", "max_position", "min_cost"], weights_source="redis",
    )
    by_name: dict[str, list] = {}
    for name, value, tags in rows:
        by_name.setdefault(name, []).append((value, {k: v for k, v in tags.items() if k not in ("book", "bar")}))
    assert [t["stage"] for _, t in by_name["cycle_latency_seconds"]] == ["market_data", "agents", "risk", "ledger", "total"]
    assert by_name["data_fetch_errors"] == [(1.0, {"symbol": "ETH/USDT", "reason": "timeout"})]
    assert by_name["data_fetch_retries"] == [(4.0, {"symbol": "ETH/USDT"})]
    assert by_name["skipped_symbols"] == [(1.0, {"symbols": ["ETH/USDT"]})]
    assert by_name["orders_rejected"] == [(2.0, {"kind": "max_position"}), (1.0, {"kind": "min_cost"})]
    assert by_name["weights_source"] == [(1.0, {"source": "redis"})]


def _replay(tmp_path: Path) -> Path:
    """BTC from T0 for 250 hours; ETH only from hour 240, so the cycles before cannot fetch it."""
    folder = tmp_path / "candles"
    folder.mkdir()
    for symbol, first in (("BTC_USDT", 0), ("ETH_USDT", 240)):
        lines = ["timestamp,open,high,low,close,volume"]
        for i in range(first, 250):
            price = 100 * 1.002**i
            lines.append(f"{T0 + i * H},{price},{price * 1.003},{price * 0.997},{price * 1.001},10")
        (folder / f"{symbol}-1h.csv").write_text("\n".join(lines) + "\n")
    return folder


def test_live_cycles_record_health_and_a_backtest_book_does_not(migrated_url: str, tmp_path: Path) -> None:
    folder = _replay(tmp_path)
    settings = load_settings(database_url=migrated_url, market_source="replay", replay_dir=str(folder), symbols="BTC/USDT,ETH/USDT",
                             timeframe="1h", home=str(tmp_path / "home"))
    runner = TradingRunner(settings, market=ReplayMarket(folder, mode="stepped"))
    bars = [T0 + i * H for i in (220, 221, 222)]
    for bar in bars:
        assert runner.run_cycle(bar).status == "traded"

    metrics = _metrics(migrated_url)
    latency = [m for m in metrics if m.metric_name == "cycle_latency_seconds"]
    assert len(latency) == 3 * 5
    for bar in bars:
        stages = {m.tags["stage"]: m.value for m in latency if m.timestamp.timestamp() * 1000 == bar}
        assert set(stages) == {"market_data", "agents", "risk", "ledger", "total"}
        assert all(v >= 0 for v in stages.values())
        assert stages["total"] >= stages["market_data"] + stages["agents"] + stages["risk"] + stages["ledger"]
    errors = [m for m in metrics if m.metric_name == "data_fetch_errors"]
    assert [(m.tags["symbol"], m.value) for m in errors] == [("ETH/USDT", 1.0)] * 3
    assert "no 1h bars" in errors[0].tags["reason"]
    skipped = [m for m in metrics if m.metric_name == "skipped_symbols"]
    assert [m.tags["symbols"] for m in skipped] == [["ETH/USDT"]] * 3
    assert [m.tags["source"] for m in metrics if m.metric_name == "weights_source"] == ["defaults"] * 3
    assert {m.tags["book"] for m in metrics} == {"main"}

    backtest = TradingRunner(settings, market=ReplayMarket(folder, mode="stepped"), book="bt-health")
    assert backtest.run_cycle(T0 + 230 * H).status == "traded"
    assert len(_metrics(migrated_url)) == len(metrics), "a backtest's cycles are not the system's health"


def test_a_stale_run_is_recorded_as_skipped(sqlite_url: str) -> None:
    upgrade(sqlite_url)
    stale_bar = last_closed_bar_open(int(time.time() * 1000), "1m") - 10 * 60_000
    result = dg.materialize(
        [portfolio_state],
        instance=dg.DagsterInstance.ephemeral(),
        run_config={"ops": {"portfolio_state": {"config": {"bar_open_ms": stale_bar}}}},
        tags={"dagster/sensor_name": "trading_cycle_sensor"},
        resources=build_resources(load_settings(database_url=sqlite_url), "test"),
    )
    assert result.asset_materializations_for_node("portfolio_state")[0].metadata["cycle_status"].value == "skipped_stale"
    (skipped,) = _metrics(sqlite_url)
    assert skipped.metric_name == "cycle_skipped" and skipped.tags["reason"] == "stale"
    assert skipped.timestamp.timestamp() * 1000 == stale_bar


@dg.asset
def breaks() -> None:
    raise RuntimeError("exchange down")


def test_the_run_failure_sensor_records_a_failed_run(sqlite_url: str) -> None:
    upgrade(sqlite_url)
    with dg.instance_for_test() as instance:
        result = dg.materialize([breaks], instance=instance, raise_on_error=False, partition_key=None)
        assert not result.success
        run = instance.get_run_by_id(result.run_id)
        failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
        context = dg.build_run_status_sensor_context(
            sensor_name="record_failed_runs", dagster_instance=instance, dagster_run=run, dagster_event=failure,
            resources={"ledger": LedgerDatabase(url=sqlite_url)},
        ).for_run_failure()
        record_failed_runs(context)
    (row,) = _metrics(sqlite_url)
    assert row.metric_name == "run_failed"
    assert row.tags["run_id"] == result.run_id and row.tags["job"] == "__ephemeral_asset_job__"
    assert "breaks" in row.tags["error"] and "RuntimeError: exchange down" in row.tags["error"]


@dg.asset
def priced() -> int:
    return 1


@dg.asset_check(asset=priced, description="prices are positive")
def prices_positive() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=False, description="3 negative <prices>")


def test_failed_asset_checks_are_read_from_the_instance() -> None:
    from datetime import datetime, timedelta, timezone

    from tradepipe.assets.reports import failed_checks

    with dg.instance_for_test() as instance:
        before = datetime.now(timezone.utc) - timedelta(seconds=1)
        assert dg.materialize([priced, prices_positive], instance=instance, raise_on_error=False) is not None
        after = datetime.now(timezone.utc) + timedelta(seconds=1)
        found = failed_checks(instance, before, after)
        assert [(c.asset, c.check, c.description) for c in found] == [("priced", "prices_positive", "3 negative <prices>")]
        assert failed_checks(instance, after, after + timedelta(hours=2)) == []
