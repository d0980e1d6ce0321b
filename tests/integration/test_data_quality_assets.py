"""The data-quality step in Dagster: ``market_bars`` and its checks in real runs on real (corrupted)
candles, the ledger checks after a cycle, and the Great Expectations suites on signals and attribution."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest

from tradepipe.assets.market_bars import (
    market_bars,
    market_bars_expectations,
    market_bars_tradable,
)
from tradepipe.assets.portfolio import portfolio_state
from tradepipe.checks.ledger import equity_invariant
from tradepipe.checks.ledger_quality import (
    ledger_replays_to_the_book,
    orders_within_risk_limits,
    signals_expectations,
    validate_attribution,
    validate_signals,
)
from tradepipe.core.ledger_quality import (
    BookFill,
    PlacedOrder,
    order_limit_violations,
    replay_differences,
    replay_fills,
)
from tradepipe.core.risk import RiskLimits
from tradepipe.resources import build_resources
from tradepipe.config.settings import load_settings

H = 3_600_000
SPIKE_ROW = 300
CHECKS = [market_bars_tradable, market_bars_expectations, orders_within_risk_limits, ledger_replays_to_the_book, signals_expectations, equity_invariant]


@pytest.fixture
def replay_with_a_bad_eth_print(shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, migrated_url: str) -> pd.DataFrame:
    folder = tmp_path / "replay"
    folder.mkdir()
    source = shared_data / "ohlcv/binance_2018_octobot"
    shutil.copy(source / "BTC_USDT-1h.csv", folder / "BTC_USDT-1h.csv")
    eth = pd.read_csv(source / "ETH_USDT-1h.csv")
    eth.loc[SPIKE_ROW, ["open", "high", "close"]] *= 3  # a bad print: three times the price for one bar
    eth.to_csv(folder / "ETH_USDT-1h.csv", index=False)
    for name, value in {
        "DATABASE_URL": migrated_url, "MARKET_SOURCE": "replay", "REPLAY_DIR": str(folder),
        "SYMBOLS": "BTC/USDT,ETH/USDT", "TIMEFRAME": "1h",
    }.items():
        monkeypatch.setenv(f"TRADEPIPE_{name}", value)
    return eth


def _cycle(instance: dg.DagsterInstance, bar: int) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [market_bars, portfolio_state, *CHECKS],
        instance=instance,
        run_config={"ops": {name: {"config": {"bar_open_ms": bar}} for name in ("market_bars", "portfolio_state")}},
        resources=build_resources(load_settings(), "test"),
        raise_on_error=False,
    )


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    return {evaluation.check_name: evaluation for evaluation in result.get_asset_check_evaluations()}


@pytest.mark.shared_data
def test_a_bad_print_fails_the_market_bars_checks_keeps_eth_out_and_btc_trades(replay_with_a_bad_eth_print: pd.DataFrame) -> None:
    eth = replay_with_a_bad_eth_print
    instance = dg.DagsterInstance.ephemeral()
    before = _cycle(instance, int(eth.loc[SPIKE_ROW - 1, "timestamp"]))
    assert before.success
    assert all(evaluation.passed for evaluation in _checks(before).values()), {n: e.metadata for n, e in _checks(before).items() if not e.passed}

    after = _cycle(instance, int(eth.loc[SPIKE_ROW + 1, "timestamp"]))
    assert after.success  # a WARN check does not fail the run: BTC still trades
    checks = _checks(after)
    tradable = checks["market_bars_tradable"]
    assert not tradable.passed and tradable.severity == dg.AssetCheckSeverity.WARN
    blocked = tradable.metadata["blocked"].value
    assert set(blocked) == {"ETH/USDT"} and "outlier" in blocked["ETH/USDT"] and "2018-05-20T18:00Z" in blocked["ETH/USDT"]
    suite = checks["market_bars_expectations"]
    assert not suite.passed and suite.metadata["errors"].value >= 1
    spiked = {(r.data["symbol"], r.data["rule"], r.data["timestamp"]) for r in suite.metadata["defects"].value.records}
    assert ("ETH/USDT", "outlier", int(eth.loc[SPIKE_ROW, "timestamp"])) in spiked
    # The cycle kept ETH out with the same reason, traded BTC, and its own checks pass.
    (materialization,) = after.asset_materializations_for_node("portfolio_state")
    assert set(materialization.metadata["skipped"].value) == {"ETH/USDT"}
    assert {r.data["symbol"] for r in materialization.metadata["agent_signals"].value.records} == {"BTC/USDT"}
    for name in ("orders_within_risk_limits", "ledger_replays_to_the_book", "signals_expectations", "equity_invariant"):
        assert checks[name].passed, (name, checks[name].metadata)
    (bars,) = after.asset_materializations_for_node("market_bars")
    assert bars.metadata["blocked_symbols"].value == 1


def test_the_trading_cycle_job_leaves_the_great_expectations_checks_out() -> None:
    from tradepipe.definitions import defs

    in_cycle = {key.name for key in defs.resolve_job_def("trading_cycle").asset_layer.asset_graph.asset_check_keys}
    assert {"market_bars_tradable", "orders_within_risk_limits", "ledger_replays_to_the_book"} <= in_cycle
    assert not in_cycle & {"market_bars_expectations", "signals_expectations"}
    off_cycle = {key.name for key in defs.resolve_job_def("data_quality").asset_layer.asset_graph.asset_check_keys}
    assert off_cycle == {"market_bars_expectations", "signals_expectations"}


# --------------------------------------------------------------------------- the invariants themselves

LIMITS = RiskLimits(max_position_fraction="0.25", max_gross_exposure="1", max_turnover_fraction="0.5")


def test_orders_beyond_the_limits_in_force_are_named() -> None:
    equity = Decimal(10000)
    ok = [PlacedOrder("BTC/USDT", "buy", Decimal("0.05"), Decimal(50000))]  # 2,500 = 25% of equity
    assert order_limit_violations(ok, {}, {}, equity, LIMITS) == []
    too_big = [PlacedOrder("BTC/USDT", "buy", Decimal("0.051"), Decimal(50000))]
    (violation,) = order_limit_violations(too_big, {}, {}, equity, LIMITS)
    assert "max_position_fraction" in violation
    short = [PlacedOrder("ETH/USDT", "sell", Decimal(1), Decimal(2000))]
    assert any("shorts not allowed" in v for v in order_limit_violations(short, {"ETH/USDT": Decimal("0.5")}, {}, equity, LIMITS))
    # Trimming a position that outgrew the limit is always allowed, even halted.
    trim = [PlacedOrder("BTC/USDT", "sell", Decimal("0.02"), Decimal(50000))]
    assert order_limit_violations(trim, {"BTC/USDT": Decimal("0.1")}, {"BTC/USDT": Decimal(50000)}, equity, LIMITS, halted=True) == []
    churn = [PlacedOrder(s, "buy", Decimal(1), Decimal(2000)) for s in ("A/USDT", "B/USDT", "C/USDT")]
    assert any("turnover" in v for v in order_limit_violations(churn, {}, {}, equity, LIMITS))


def test_a_ledger_replay_finds_a_cent_that_went_missing() -> None:
    fills = [
        BookFill("BTC/USDT", "buy", Decimal("0.1"), Decimal("5000.00"), Decimal("5.00"), Decimal("-5.00")),
        BookFill("BTC/USDT", "sell", Decimal("0.04"), Decimal("2100.00"), Decimal("2.10"), Decimal("97.90")),
    ]
    replayed = replay_fills(Decimal(10000), fills)
    assert replayed.cash == Decimal("7092.90") and replayed.positions == {"BTC/USDT": Decimal("0.06")}
    assert replay_differences(replayed, Decimal("7092.90"), {"BTC/USDT": Decimal("0.06")}, Decimal("92.90")) == []
    (difference,) = replay_differences(replayed, Decimal("7092.89"), {"BTC/USDT": Decimal("0.06")})
    assert "difference -0.01" in difference


def test_the_signal_and_attribution_suites_catch_their_defects() -> None:
    good = pd.DataFrame(
        [(agent, symbol, 1, 0.5, 0.5, False) for agent in ("a", "b") for symbol in ("BTC/USDT", "ETH/USDT")],
        columns=["agent_name", "symbol", "bar_ts", "value", "confidence", "abstained"],
    )
    assert validate_signals(good, agents=2).success
    out_of_range = good.assign(value=[0.5, 0.5, 1.5, 0.5])
    assert not validate_signals(out_of_range, agents=2).success
    twice = pd.concat([good, good.iloc[[0]]], ignore_index=True)
    assert not validate_signals(twice, agents=2).success
    assert not validate_signals(good.iloc[:3], agents=2).success  # one agent did not vote on ETH

    parts = [(1, Decimal("3.34"), Decimal("10.00")), (1, Decimal("3.33"), Decimal("10.00")), (1, Decimal("3.33"), Decimal("10.00"))]
    assert validate_attribution(parts).success
    assert not validate_attribution(parts[:2] + [(1, Decimal("3.32"), Decimal("10.00"))]).success


# --------------------------------------------------------------------------- partitioned analytics checks


def test_attribution_and_performance_checks_are_partition_aware_and_catch_a_tampered_row(
    migrated_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import update

    from tests.integration.test_analytics_assets import _insert_fills, _run_check
    from tradepipe.adapters.db.engine import session_factory
    from tradepipe.adapters.db.models import AgentPerformanceRow, TradeAttributionRow
    from tradepipe.assets.analytics import agent_performance, trade_attribution
    from tradepipe.assets.partitions import daily_with_today
    from tradepipe.checks.ledger_quality import attribution_expectations
    from tradepipe.checks.quality import performance_rows_are_valid

    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", migrated_url)
    monkeypatch.setenv("TRADEPIPE_TIMEFRAME", "1h")
    _insert_fills(migrated_url)
    instance = dg.DagsterInstance.ephemeral()

    def run(day: str, *nodes: Any) -> dict[str, Any]:
        result = dg.materialize(list(nodes), partition_key=day, instance=instance, resources=build_resources(load_settings(), "test"))
        assert result.success
        return _checks(result)

    checks = run("2026-01-20", trade_attribution, attribution_expectations, agent_performance, performance_rows_are_valid)
    assert checks["attribution_expectations"].passed and checks["attribution_expectations"].metadata["trades"].value == 5
    assert checks["performance_rows_are_valid"].passed
    # Another day is its own partition: one trade there.
    assert run("2026-01-19", trade_attribution, attribution_expectations)["attribution_expectations"].metadata["trades"].value == 1

    with session_factory(migrated_url).begin() as session:  # a cent goes missing from one part
        part = session.scalars(select_first_part(TradeAttributionRow)).first()
        part.pnl -= Decimal("0.01")
        session.execute(
            update(AgentPerformanceRow)
            .where(AgentPerformanceRow.agent_name == "trend")
            .values(null_reasons={})  # its five undefined ratios (no signals that day) lose their reasons
        )
    # The check alone, in a partitioned check job (it reads the table; the asset is not re-materialised).
    job = dg.Definitions(
        assets=[trade_attribution],
        asset_checks=[attribution_expectations],
        jobs=[dg.define_asset_job("check", selection=dg.AssetSelection.checks(attribution_expectations), partitions_def=daily_with_today)],
        resources=build_resources(load_settings(), "test"),
    ).resolve_job_def("check")
    (attribution,) = job.execute_in_process(instance=instance, tags={"dagster/partition": "2026-01-20"}).get_asset_check_evaluations()
    assert not attribution.passed
    (performance, _) = _run_check(instance, "2026-01-20")
    assert not performance.passed
    assert {"expectation": "expect_column_values_to_be_between", "column": "unexplained_nulls", "unexpected_count": 1, "examples": [5]} in (
        performance.metadata["failed_expectations"].value
    )


def select_first_part(model: Any) -> Any:
    from sqlalchemy import select

    return select(model).where(model.date == __import__("datetime").date(2026, 1, 20)).order_by(model.id).limit(1)


@pytest.mark.shared_data
def test_a_bar_that_has_not_closed_on_the_clock_is_not_traded(replay_with_a_bad_eth_print: pd.DataFrame) -> None:
    """The cycle reads the ``clock`` resource: asked to trade a bar 30 minutes before it closes, it trades nothing."""
    from tradepipe.resources import FixedClock

    bar = int(replay_with_a_bad_eth_print.loc[100, "timestamp"])
    resources = {**build_resources(load_settings(), "test"), "clock": FixedClock(now=bar + H // 2)}
    result = dg.materialize(
        [market_bars, portfolio_state, market_bars_tradable],
        instance=dg.DagsterInstance.ephemeral(),
        run_config={"ops": {name: {"config": {"bar_open_ms": bar}} for name in ("market_bars", "portfolio_state")}},
        resources=resources,
    )
    (materialization,) = result.asset_materializations_for_node("portfolio_state")
    skipped = materialization.metadata["skipped"].value
    assert set(skipped) == {"BTC/USDT", "ETH/USDT"} and all("unfinished_bar" in reason for reason in skipped.values())
    assert materialization.metadata["orders_placed"].value == 0
    (check,) = result.get_asset_check_evaluations()
    assert not check.passed and set(check.metadata["blocked"].value) == {"BTC/USDT", "ETH/USDT"}
