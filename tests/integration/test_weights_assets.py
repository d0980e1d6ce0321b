"""Agent weights end to end: a real ledger, real Dagster runs, the blocking check, publication, trading.

A trader's day: the trading runner (synthetic market, 1h bars) fills the ledger for the two newest
complete days; ``trade_attribution`` and ``agent_performance`` are materialised for a day, then
``agent_weights`` (+ its blocking check ``weights_are_sound``) and ``live_weights``. The next trading
cycle must use what was published (Redis first, the database's live row when Redis is down).
Replays of past days, ``tradepipe weights promote``, a failing check and the keep-previous fallbacks
are checked through what a user sees: weight_history rows, the live row, the Redis key and the
weights recorded on trading_cycles.

The dates are relative to today because "the newest partition" is a wall-clock notion; the
optimiser is risk parity (defined whatever the sign of the returns) so the outcome does not depend
on the market of the day.
"""

from __future__ import annotations

import json
import math
import shutil
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import redis
import sqlalchemy as sa
from click.testing import CliRunner

import tradepipe.assets.weights as weights_module
from tradepipe.adapters.db.engine import session_factory, upgrade
from tradepipe.adapters.db.models import AgentPerformanceRow, TradingCycleRow, WeightHistoryRow
from tradepipe.adapters.weights_store import redis_key
from tradepipe.assets.analytics import agent_performance, trade_attribution
from tradepipe.assets.partitions import daily_complete
from tradepipe.assets.weights import agent_weights, live_weights, weights_are_sound
from tradepipe.cli.main import main
from tradepipe.core.weighting import WeightDecision
from tradepipe.resources import build_resources
from tradepipe.trading.runner import CycleOutcome, TradingRunner
from tradepipe.config.settings import load_settings

pytestmark = pytest.mark.filterwarnings("ignore:.*(beta|preview|BackfillPolic).*")

HOUR_MS = 3_600_000
AGENTS = ["momentum", "trend", "mean_reversion", "breakout", "sentiment"]
EQUAL = {agent: 0.2 for agent in AGENTS}
REDIS_DOWN = "redis://127.0.0.1:1/0"  # closed port: Redis "stopped"


# --------------------------------------------------------------------------- helpers


def newest_day() -> date:
    """The newest complete UTC day: the partition whose weights go live by default."""
    return date.fromisoformat(daily_complete.get_last_partition_key())


def day_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp() * 1000)


def resources() -> dict[str, Any]:
    """The code location's resources for the settings the test put in the environment."""
    return build_resources(load_settings(), "test")


def configure(monkeypatch: pytest.MonkeyPatch, database_url: str, redis_url: str | None) -> None:
    """A fast, permissive setup: hourly bars, a one-day window, every agent that voted is eligible."""
    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", database_url)
    if redis_url:
        monkeypatch.setenv("TRADEPIPE_REDIS_URL", redis_url)
    monkeypatch.setenv("TRADEPIPE_TIMEFRAME", "1h")
    monkeypatch.setenv("TRADEPIPE_PERFORMANCE_WINDOW_DAYS", "1")
    monkeypatch.setenv("TRADEPIPE_MIN_SIGNALS", "1")
    monkeypatch.setenv("TRADEPIPE_MIN_SHARPE", "-1e9")
    monkeypatch.setenv("TRADEPIPE_OPTIMIZER_METHOD", "risk_parity")
    # Two days of hourly bars hold no 14 days of daily returns: these tests are about the weights' path, so
    # they read per-bar figures (the daily rule is tested in tests/core/test_metrics.py and below).
    monkeypatch.setenv("TRADEPIPE_MIN_METRIC_DAYS", "0")
    upgrade(database_url)


def trade_two_days(last_day: date) -> None:
    """Hourly trading cycles over the day before ``last_day`` and ``last_day`` itself (48 bars)."""
    runner = TradingRunner(load_settings())
    start = day_ms(last_day - timedelta(days=1))
    for bar in range(start, start + 48 * HOUR_MS, HOUR_MS):
        runner.run_cycle(bar)


def next_cycle(bar_ms: int) -> CycleOutcome:
    """A trading cycle in a fresh process-like runner (settings read from the environment now)."""
    outcome = TradingRunner(load_settings()).run_cycle(bar_ms)
    assert outcome.status == "traded"
    return outcome


def materialize_performance(day: date) -> None:
    result = dg.materialize([trade_attribution, agent_performance], partition_key=day.isoformat(), resources=resources())
    assert result.success


def materialize_weights(day: date, config: dict[str, Any] | None = None, *, raise_on_error: bool = True) -> dg.ExecuteInProcessResult:
    run_config = {"ops": {"agent_weights": {"config": config}}} if config else None
    return dg.materialize(
        [agent_weights, weights_are_sound, live_weights],
        partition_key=day.isoformat(),
        run_config=run_config,
        raise_on_error=raise_on_error,
        resources=resources(),
    )


def metadata(result: dg.ExecuteInProcessResult, node: str) -> dict[str, Any]:
    [materialization] = result.asset_materializations_for_node(node)
    return {key: getattr(value, "value", value) for key, value in materialization.metadata.items()}


def check_result(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.check_name == "weights_are_sound" and evaluation.blocking
    return evaluation


def history(url: str) -> list[WeightHistoryRow]:
    with session_factory(url)() as session:
        return list(session.scalars(sa.select(WeightHistoryRow).order_by(WeightHistoryRow.id)))


def live_ids(url: str) -> list[int]:
    return [row.id for row in history(url) if row.is_live]


def recorded_cycle(url: str, bar_ms: int) -> TradingCycleRow:
    with session_factory(url)() as session:
        bar_ts = datetime.fromtimestamp(bar_ms / 1000, tz=timezone.utc)
        return session.scalars(sa.select(TradingCycleRow).where(TradingCycleRow.bar_ts == bar_ts)).one()


def redis_payload(url: str) -> dict[str, Any] | None:
    client = redis.Redis.from_url(url)
    raw = client.get(redis_key("main"))
    client.close()
    return json.loads(raw) if raw else None


def assert_sound(weights: dict[str, float]) -> None:
    assert set(weights) == set(AGENTS)
    assert math.fsum(weights.values()) == pytest.approx(1.0, abs=1e-9)
    assert all(w == 0.0 or 0.05 - 1e-12 <= w <= 0.40 + 1e-12 for w in weights.values()), weights


# --------------------------------------------------------------------------- the daily path


def test_newest_day_is_optimised_checked_published_and_traded_with(
    database_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    day = newest_day()
    configure(monkeypatch, database_url, redis_url)
    trade_two_days(day)
    materialize_performance(day)

    result = materialize_weights(day)

    # the decision, as the old system's users query it
    [row] = history(database_url)
    assert row.partition_date == day and row.book == "main"
    assert row.old_weights == EQUAL  # nothing was live: the static defaults
    assert row.method == "risk_parity" and row.window_days == 1
    assert (row.window_start, row.window_end) == (
        datetime(day.year, day.month, day.day, tzinfo=timezone.utc),
        datetime(day.year, day.month, day.day, tzinfo=timezone.utc) + timedelta(days=1),
    )
    assert row.weights_updated is True and row.is_replay is False and row.run_id == result.run_id
    assert row.reason == "risk_parity over 4 eligible agent(s); dropped ['sentiment']"  # no headline feed: no votes
    assert isinstance(row.sharpe_improvement, float) and math.isfinite(row.sharpe_improvement)
    assert row.sharpe_improvement == pytest.approx(row.expected_sharpe - _sharpe_of(database_url, day, EQUAL), rel=1e-9)
    assert row.agent_weights == row.new_weights and row.new_weights["sentiment"] == 0.0
    assert_sound(row.new_weights)
    assert row.new_weights != EQUAL
    with session_factory(database_url)() as session:
        [(weights_json, improvement, _, reason)] = session.execute(
            sa.text("SELECT agent_weights, sharpe_improvement, timestamp, reason FROM weight_history ORDER BY timestamp DESC")
        ).all()
    assert (json.loads(weights_json) if isinstance(weights_json, str) else weights_json) == row.new_weights
    assert (improvement, reason) == (row.sharpe_improvement, row.reason)

    # the asset's metadata speaks the old optimiser's language
    shown = metadata(result, "agent_weights")
    assert shown["weights_updated"] is True and shown["is_replay"] is False
    assert shown["old_weights"] == EQUAL and shown["new_weights"] == row.new_weights
    assert shown["improvement"]["sharpe_improvement"] == row.sharpe_improvement
    assert shown["ineligible_agents"] == {"sentiment": "only 0 signals (needs at least 1); sharpe undefined"}

    # the blocking check ran on this partition and passed; then the weights were published
    evaluation = check_result(result)
    assert evaluation.passed and evaluation.partition == day.isoformat()
    assert metadata(result, "live_weights")["action"] == f"published weight_history {row.id} to the database and Redis"
    assert row.is_live and row.promoted_at is not None
    payload = redis_payload(redis_url)
    assert payload["weights"] == row.new_weights and payload["weight_history_id"] == row.id

    # the next cycle trades with them (Redis), and so does one with Redis stopped (database)
    first_bar = day_ms(day + timedelta(days=1))
    assert recorded_cycle(database_url, first_bar - HOUR_MS).weights_source == "defaults"
    outcome = next_cycle(first_bar)
    assert (outcome.weights_source, outcome.weights) == ("redis", row.new_weights)
    cycle = recorded_cycle(database_url, first_bar)
    assert (cycle.weights_source, cycle.weights) == ("redis", row.new_weights)

    monkeypatch.setenv("TRADEPIPE_REDIS_URL", REDIS_DOWN)
    outcome = next_cycle(first_bar + HOUR_MS)
    assert (outcome.weights_source, outcome.weights) == ("database", row.new_weights)
    cycle = recorded_cycle(database_url, first_bar + HOUR_MS)
    assert (cycle.weights_source, cycle.weights) == ("database", row.new_weights)
    assert any("redis unavailable" in note for note in cycle.skipped.values())
    monkeypatch.setenv("TRADEPIPE_REDIS_URL", redis_url)

    # re-running the day: a second, identical decision; still exactly one live row
    again = materialize_weights(day)
    first, second = history(database_url)
    assert second.partition_date == day and second.run_id == again.run_id != first.run_id
    assert second.new_weights == first.new_weights  # deterministic
    assert second.old_weights == first.new_weights  # it started from what was live
    assert live_ids(database_url) == [second.id]
    assert redis_payload(redis_url)["weight_history_id"] == second.id


def _sharpe_of(url: str, day: date, weights: dict[str, float]) -> float:
    """Sharpe of ``weights`` on the day's stored signals, for the recorded improvement."""
    from tradepipe.adapters.db.analytics import load_signals
    from tradepipe.core.optimizer import portfolio_sharpe
    from tradepipe.config.rules import book_rules
    from tradepipe.core.performance import agent_streams
    from tradepipe.config.settings import load_settings

    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    with session_factory(url)() as session:
        streams = agent_streams(load_signals(session, "main", start, start + timedelta(days=1)), book_rules(load_settings()))
    table = streams.reindex(columns=AGENTS).fillna(0.0)
    value = portfolio_sharpe(table, weights, 8760.0)
    assert value is not None
    return value


# --------------------------------------------------------------------------- replay and promotion


def test_replaying_a_past_day_is_deterministic_and_changes_nothing_until_promoted(
    database_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    day = newest_day()
    past = day - timedelta(days=1)
    configure(monkeypatch, database_url, redis_url)
    trade_two_days(day)
    materialize_performance(past)
    materialize_performance(day)

    # yesterday's run, when `past` was the newest day, then today's run
    original = materialize_weights(past, {"replay": False})
    assert metadata(original, "live_weights")["action"].startswith("published")
    materialize_weights(day)
    [past_row, day_row] = history(database_url)
    assert live_ids(database_url) == [day_row.id]
    assert past_row.new_weights != day_row.new_weights  # different windows, different weights

    # replay the past day: same method, same stored signals -> exactly the same weights
    replay = materialize_weights(past)
    replay_row = history(database_url)[-1]
    assert replay_row.is_replay is True and replay_row.run_id == replay.run_id != original.run_id
    assert replay_row.partition_date == past and replay_row.method == past_row.method == "risk_parity"
    assert replay_row.new_weights == past_row.new_weights  # exact equality: deterministic
    assert replay_row.reason.startswith("replay: ") and replay_row.weights_updated
    assert metadata(replay, "agent_weights")["is_replay"] is True
    assert check_result(replay).passed
    action = metadata(replay, "live_weights")["action"]
    assert f"tradepipe weights promote {replay_row.id}" in action and "not published" in action

    # ...and nothing live moved
    assert live_ids(database_url) == [day_row.id] and not replay_row.is_live
    assert redis_payload(redis_url)["weight_history_id"] == day_row.id
    first_bar = day_ms(day + timedelta(days=1))
    assert next_cycle(first_bar).weights == day_row.new_weights

    # a replay with another method (run config) is recorded as such
    other = materialize_weights(past, {"replay": True, "method": "equal_weight"})
    other_row = history(database_url)[-1]
    assert (other_row.method, other_row.is_replay, other_row.run_id) == ("equal_weight", True, other.run_id)
    assert other_row.new_weights == {"momentum": 0.25, "trend": 0.25, "mean_reversion": 0.25, "breakout": 0.25, "sentiment": 0.0}
    assert live_ids(database_url) == [day_row.id]

    # promotion makes the replay live in the database and Redis; the next cycle trades with it
    cli = CliRunner()
    promoted = cli.invoke(main, ["weights", "promote", str(replay_row.id), "--yes"])  # no terminal to confirm on
    assert promoted.exit_code == 0, promoted.output
    assert f"weight_history {replay_row.id} is live (database and Redis)" in promoted.output
    assert live_ids(database_url) == [replay_row.id]
    assert redis_payload(redis_url)["weight_history_id"] == replay_row.id
    outcome = next_cycle(first_bar + HOUR_MS)
    assert (outcome.weights_source, outcome.weights) == ("redis", past_row.new_weights)
    monkeypatch.setenv("TRADEPIPE_REDIS_URL", REDIS_DOWN)
    outcome = next_cycle(first_bar + 2 * HOUR_MS)
    assert (outcome.weights_source, outcome.weights) == ("database", past_row.new_weights)

    shown = cli.invoke(main, ["weights", "show", "--json"])
    assert shown.exit_code == 0
    live = [record for record in json.loads(shown.output) if record["live"]]
    assert [(r["id"], r["replay"]) for r in live] == [(replay_row.id, True)]

    unknown = cli.invoke(main, ["weights", "promote", str(other_row.id + 100)])
    assert unknown.exit_code == 2 and "no weight_history row" in unknown.output
    assert live_ids(database_url) == [replay_row.id]


# --------------------------------------------------------------------------- what must not be published


def test_failing_blocking_check_stops_publication(sqlite_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    day = newest_day()
    configure(monkeypatch, sqlite_url, redis_url)
    trade_two_days(day)
    materialize_performance(day)
    materialize_weights(day)
    [good] = history(sqlite_url)
    assert live_ids(sqlite_url) == [good.id]

    # an optimiser bug no input can cause: weights summing to 1.2
    faulty = {"momentum": 0.4, "trend": 0.4, "mean_reversion": 0.4, "breakout": 0.0, "sentiment": 0.0}

    def broken_decide_weights(*args: Any, **kwargs: Any) -> WeightDecision:
        return WeightDecision(weights=faulty, updated=True, reason="broken optimiser", eligible=list(faulty), ineligible={})

    monkeypatch.setattr(weights_module, "decide_weights", broken_decide_weights)
    result = materialize_weights(day, raise_on_error=False)

    assert not result.success
    evaluation = check_result(result)
    assert not evaluation.passed
    assert any("sum to 1.2" in problem for problem in evaluation.metadata["problems"].value)
    assert result.asset_materializations_for_node("live_weights") == []
    bad = history(sqlite_url)[-1]
    assert bad.new_weights == faulty and not bad.is_live  # recorded for the post-mortem, never live
    assert live_ids(sqlite_url) == [good.id]
    payload = redis_payload(redis_url)
    assert (payload["weight_history_id"], payload["weights"]) == (good.id, good.new_weights)

    # nor can the rejected set be published another way: live_weights on its own, or promotion
    alone = dg.materialize([live_weights], partition_key=day.isoformat(), raise_on_error=False, resources=resources())
    assert not alone.success
    assert "not publishable: weights sum to 1.2" in str(alone.failure_data_for_node("live_weights").error.message)
    promoted = CliRunner().invoke(main, ["weights", "promote", str(bad.id), "--yes", "--force"])  # past the prompts: the soundness check refuses
    assert promoted.exit_code == 2 and "not publishable" in promoted.output
    assert live_ids(sqlite_url) == [good.id]
    assert redis_payload(redis_url)["weight_history_id"] == good.id

    outcome = next_cycle(day_ms(day + timedelta(days=1)))
    assert (outcome.weights_source, outcome.weights) == ("redis", good.new_weights)


def test_too_few_or_no_eligible_agents_still_decide_and_publish(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # changed this: too few eligible agents (or none) kept the live weights indefinitely;
    # now the eligible share all weight under a feasible bound, and none eligible is equal weight.
    day = newest_day()
    configure(monkeypatch, sqlite_url, redis_url=None)  # no Redis: the database alone serves the weights
    trade_two_days(day)
    materialize_performance(day)
    published = materialize_weights(day)
    [good] = history(sqlite_url)
    assert metadata(published, "live_weights")["action"] == f"published weight_history {good.id} to the database"

    # a Sharpe threshold only the two best agents clear: 2 x max weight 0.4 < 1
    with session_factory(sqlite_url)() as session:
        ranked = sorted(
            ((s, a) for s, a in session.execute(sa.select(AgentPerformanceRow.sharpe_ratio, AgentPerformanceRow.agent_name).where(AgentPerformanceRow.date == day)) if s is not None),
            reverse=True,
        )
    assert len(ranked) == 4 and ranked[1][0] > ranked[2][0]
    monkeypatch.setenv("TRADEPIPE_MIN_SHARPE", repr((ranked[1][0] + ranked[2][0]) / 2))
    two = materialize_weights(day)
    row = history(sqlite_url)[-1]
    best_two = {ranked[0][1], ranked[1][1]}
    assert row.weights_updated is True and "upper bound 0.5" in row.reason
    assert {a for a, w in row.new_weights.items() if w > 0} == best_two
    assert sum(row.new_weights.values()) == pytest.approx(1.0, abs=1e-9)
    assert all(w <= 0.5 + 1e-12 for w in row.new_weights.values())
    assert check_result(two).passed  # the blocking check accepts the feasible bound
    assert metadata(two, "live_weights")["action"] == f"published weight_history {row.id} to the database"
    assert len(metadata(two, "agent_weights")["eligible_agents"]) == 2

    monkeypatch.setenv("TRADEPIPE_MIN_SIGNALS", "1000000")
    none = materialize_weights(day)
    row = history(sqlite_url)[-1]
    assert row.weights_updated is True and "no eligible agent" in row.reason
    assert row.new_weights == {a: 0.2 for a in AGENTS}
    assert check_result(none).passed
    assert live_ids(sqlite_url)[-1] == row.id
    outcome = next_cycle(day_ms(day + timedelta(days=1)))
    assert (outcome.weights_source, outcome.weights) == ("database", row.new_weights)


def test_weights_need_the_days_performance_first(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch, sqlite_url, redis_url=None)
    result = materialize_weights(newest_day(), raise_on_error=False)
    assert not result.success
    failure = result.failure_data_for_node("agent_weights")
    assert "agent_performance has no rows" in str(failure.error.message)
    assert history(sqlite_url) == []



# --------------------------------------------------------------------------- what the UI shows after a promotion


def latest_live_weights_event(dagster_home: Path) -> tuple[str | None, dict[str, Any]]:
    """(partition, metadata) of the newest live_weights materialisation the instance recorded."""
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    try:
        event = instance.get_latest_materialization_event(dg.AssetKey("live_weights"))
        assert event is not None and event.asset_materialization is not None
        materialization = event.asset_materialization
        return materialization.partition, {key: getattr(value, "value", value) for key, value in materialization.metadata.items()}
    finally:
        instance.dispose()


def test_the_live_weights_page_shows_the_set_a_promotion_made_live(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`tradepipe weights promote` beside `make run`'s instance, and the promote_weights job, both leave a
    live_weights materialisation whose metadata names the set that now trades."""
    from tradepipe.definitions import defs

    day = newest_day()
    past = day - timedelta(days=1)
    configure(monkeypatch, sqlite_url, None)
    trade_two_days(day)
    materialize_performance(past)
    materialize_performance(day)
    materialize_weights(past, {"replay": False})
    materialize_weights(day)
    [past_row, day_row] = history(sqlite_url)
    assert live_ids(sqlite_url) == [day_row.id] and past_row.new_weights != day_row.new_weights

    # `make run` keeps its instance in TRADEPIPE_HOME/dagster (the repo's dagster.yaml copied there)
    home = tmp_path / "home"
    dagster_home = home / "dagster"
    dagster_home.mkdir(parents=True)
    shutil.copy(Path(__file__).resolve().parents[2] / "dagster.yaml", dagster_home / "dagster.yaml")
    monkeypatch.setenv("TRADEPIPE_HOME", str(home))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    promoted = CliRunner().invoke(main, ["weights", "promote", str(past_row.id), "--yes"])  # no terminal to confirm on
    assert promoted.exit_code == 0, promoted.output
    partition, shown = latest_live_weights_event(dagster_home)
    assert partition == past.isoformat()
    assert shown["live_weight_history_id"] == past_row.id and shown["live_weights"] == past_row.new_weights
    assert shown["action"] == f"promoted weight_history {past_row.id}"

    # the promote_weights job (from the UI's launchpad) back to the newest day's set
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("promote_weights").execute_in_process(
            run_config={"ops": {"promote_weight_set": {"config": {"weight_history_id": day_row.id}}}},
            resources=resources(), instance=instance,
        )
        assert result.success
        event = instance.get_latest_materialization_event(dg.AssetKey("live_weights"))
        assert event is not None and event.asset_materialization is not None
        assert event.asset_materialization.partition == day.isoformat()
        assert event.asset_materialization.metadata["live_weight_history_id"].value == day_row.id
    assert live_ids(sqlite_url) == [day_row.id]

    # without any Dagster instance the promotion still goes live and says where the page stands
    monkeypatch.setenv("TRADEPIPE_HOME", str(tmp_path / "no-ui-home"))
    promoted = CliRunner().invoke(main, ["weights", "promote", str(past_row.id), "--yes"])  # no terminal to confirm on
    assert promoted.exit_code == 0 and "no Dagster instance found" in promoted.output
    assert live_ids(sqlite_url) == [past_row.id]


def test_a_two_day_hourly_book_shows_no_sharpe_until_14_days_and_says_why(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The default rule: risk-adjusted figures of hourly bars on daily returns, null until 14 days exist
    # (a Sharpe annualised from a few hours of one-minute bars had read -338).
    day = newest_day()
    configure(monkeypatch, sqlite_url, redis_url=None)
    monkeypatch.setenv("TRADEPIPE_MIN_METRIC_DAYS", "14")
    monkeypatch.setenv("TRADEPIPE_PERFORMANCE_WINDOW_DAYS", "2")
    trade_two_days(day)
    result = dg.materialize([trade_attribution, agent_performance], partition_key=day.isoformat(), resources=resources())
    shown = metadata(result, "agent_performance")
    assert shown["figures"].startswith("Sharpe, Sortino, volatility and Calmar of bars shorter than a day are computed on daily returns")
    rows = {row.data["agent"]: row.data for row in shown["metrics"].records}
    voted = [agent for agent in AGENTS if agent != "sentiment"]
    for agent in voted:
        assert rows[agent]["sharpe"] is None
        assert rows[agent]["why_no_sharpe"] == "fewer than 14 days of returns (2): bars shorter than a day are judged on daily returns"
    weights = materialize_weights(day, {"method": "hedge"})
    decided = metadata(weights, "agent_weights")
    assert decided["improvement"]["sharpe_improvement"] is None
    assert any("fewer than 14 days of returns (2)" in note for note in decided["notes"])
    assert "every voting agent keeps at least 0.05" in decided["why_these_weights"]
