"""A first start on the synthetic market decides agent weights within its first hour.

As ``make run`` does it, shortened: ``tradepipe warmup`` trades the last hours of synthetic bars into the
empty live book, the ``warmup_analytics`` sensor asks for today's analytics and weights, and that one
run (``dg.materialize`` of the same selection for today's partition) records a real weight decision
on the warm-up's votes and publishes it. No daemon: the sensor is evaluated with a real instance.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from tradepipe.adapters.db.engine import session_factory, upgrade
from tradepipe.adapters.db.models import AgentPerformanceRow, TradingCycleRow, WeightHistoryRow
from tradepipe.assets.analytics import agent_performance, trade_attribution
from tradepipe.assets.weights import agent_weights, live_weights, weights_are_sound
from tradepipe.cli.main import main
from tradepipe.definitions import defs
from tradepipe.resources import build_resources
from tradepipe.config.settings import DEFAULT_AGENTS, load_settings

WARMUP_DAYS = "0.25"  # six hours of 1m bars instead of a day: the same path, a shorter test


def test_a_fresh_synthetic_start_decides_weights_within_the_first_hour(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", sqlite_url)
    upgrade(sqlite_url)
    started = datetime.now(timezone.utc)

    warm = CliRunner().invoke(main, ["warmup", "--days", WARMUP_DAYS], catch_exceptions=False)
    again = CliRunner().invoke(main, ["warmup", "--days", WARMUP_DAYS], catch_exceptions=False)

    assert warm.exit_code == 0 and "tradepipe warm-up: traded 360 SYNTHETIC bars" in warm.output, warm.output
    assert again.exit_code == 0 and "warm-up skipped" in again.output and "360 trading cycles" in again.output
    sessions = session_factory(sqlite_url)
    with sessions() as session:
        run_ids = {c.run_id for c in session.scalars(select(TradingCycleRow))}
    assert len(run_ids) == 1 and next(iter(run_ids)).startswith("warmup:")

    settings = load_settings()
    resources = build_resources(settings, "test")
    instance = dg.DagsterInstance.ephemeral()
    sensor = defs.resolve_sensor_def("warmup_analytics")
    today = started.date().isoformat()
    requests = []
    while True:  # what the daemon does: launch each request, evaluate again
        with dg.build_sensor_context(instance=instance, resources=resources, definitions=defs) as context:
            (request,) = sensor.evaluate_tick(context).run_requests
        requests.append((request.job_name, request.partition_key))
        if request.job_name == "warmup_analytics":
            break
        assert request.job_name == "performance_job" and request.partition_key < today  # a warm-up day before today
        assert dg.materialize([trade_attribution, agent_performance], partition_key=request.partition_key, instance=instance, resources=resources).success
        assert len(requests) < 3
    assert requests[-1] == ("warmup_analytics", today)

    alone = dg.materialize([agent_performance], partition_key=today, instance=instance, resources=resources)
    [unattributed] = alone.asset_materializations_for_node("agent_performance")
    assert unattributed.metadata["trade_counts"].value.startswith("INCOMPLETE: trade counts and attributed P&L leave out 1 day(s)")

    result = dg.materialize(
        [trade_attribution, agent_performance, agent_weights, weights_are_sound, live_weights],
        partition_key=today,
        instance=instance,
        resources=resources,
    )

    assert result.success
    with sessions() as session:
        performance = {p.agent_name: p for p in session.scalars(select(AgentPerformanceRow).where(AgentPerformanceRow.date == started.date()))}
        (decision,) = session.scalars(select(WeightHistoryRow)).all()
    assert set(performance) == set(DEFAULT_AGENTS)
    [measured] = result.asset_materializations_for_node("agent_performance")
    assert measured.metadata["trade_counts"].value.startswith("complete")
    voting = [a for a in DEFAULT_AGENTS if a != "sentiment"]  # no news feed: sentiment abstains
    assert all(performance[a].total_signals > 0 for a in voting)
    assert decision.partition_date == started.date() and not decision.is_replay
    assert "no eligible agent" not in decision.reason, decision.reason
    assert decision.is_live == decision.weights_updated
    [published] = result.asset_materializations_for_node("live_weights")
    assert published.metadata["live_weights"].value  # the live set is always shown
    [decided] = result.asset_materializations_for_node("agent_weights")
    assert decided.metadata["decision"].value == "LIVE decision"
    assert (datetime.now(timezone.utc) - started).total_seconds() < 3600

    with dg.build_sensor_context(instance=instance, resources=resources, definitions=defs) as context:
        skipped = sensor.evaluate_tick(context)
    assert skipped.run_requests == [] and "decided" in (skipped.skip_message or "")


def test_warmup_never_touches_a_live_market(monkeypatch: pytest.MonkeyPatch, sqlite_url: str, tmp_path: Path) -> None:
    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("TRADEPIPE_MARKET_SOURCE", "replay")
    monkeypatch.setenv("TRADEPIPE_REPLAY_DIR", str(tmp_path))
    for symbol in ("BTC_USDT", "ETH_USDT", "SOL_USDT"):  # a replay folder the start-up checks accept
        (tmp_path / f"{symbol}-1h.csv").write_text("timestamp,open,high,low,close,volume\n1700000000000,1,1,1,1,1\n")
    upgrade(sqlite_url)

    result = CliRunner().invoke(main, ["warmup"], catch_exceptions=False)

    assert result.exit_code == 0 and "only runs on the synthetic market" in result.output
    with session_factory(sqlite_url)() as session:
        assert session.scalars(select(TradingCycleRow)).first() is None
