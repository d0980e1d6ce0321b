"""trade_attribution and agent_performance as real Dagster runs, on SQLite and PostgreSQL.

The ledger comes from real trading cycles (TradingRunner, synthetic market, 1h bars over
2026-01-11 and 2026-01-12) and from fills inserted by hand with known P&L and contributions.
Expected per-agent return streams (each agent's solo book) are recomputed here from the signals
table bar by bar in plain Python (not with core.performance.agent_streams) and summarised with core.metrics.summarize.
The Great Expectations check ``performance_rows_are_valid`` runs alongside.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest
from sqlalchemy import delete, select, update

from tradepipe.adapters.db.engine import session_factory
from tradepipe.adapters.db.models import AgentPerformanceRow, BookRow, FillRow, OrderRow, SignalRow, TradeAttributionRow, TradingCycleRow
from tradepipe.assets.analytics import agent_performance, trade_attribution
from tradepipe.assets.partitions import daily_with_today
from tradepipe.checks.quality import performance_rows_are_valid
from tradepipe.core.metrics import FLOAT_METRICS, summarize
from tradepipe.resources import build_resources
from tradepipe.config.settings import DEFAULT_AGENTS, load_settings

UTC = timezone.utc
AGENTS = list(DEFAULT_AGENTS)
PPY_1H = 8760.0
WINDOW_DAYS = 2
FIRST_BAR = datetime(2026, 1, 11, tzinfo=UTC)
BARS = 48  # 2026-01-11 00:00 .. 2026-01-12 23:00
BACKFILL = ["2026-01-10", "2026-01-11", "2026-01-12"]  # 01-10: no signals, no trades

# core metric name -> agent_performance column
COLUMNS = {
    "sharpe": "sharpe_ratio",
    "sortino": "sortino_ratio",
    "volatility": "volatility",
    "total_return": "total_return",
    "max_drawdown": "max_drawdown",
    "calmar": "calmar_ratio",
    "win_rate": "win_rate",
    "profit_factor": "profit_factor",
    "avg_win": "avg_win",
    "avg_loss": "avg_loss",
    "max_consecutive_wins": "max_consecutive_wins",
    "max_consecutive_losses": "max_consecutive_losses",
}


@pytest.fixture
def url(migrated_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", migrated_url)
    monkeypatch.setenv("TRADEPIPE_TIMEFRAME", "1h")
    monkeypatch.setenv("TRADEPIPE_PERFORMANCE_WINDOW_DAYS", str(WINDOW_DAYS))
    # The rows are checked against per-bar summaries of the streams; the daily-returns rule of sub-daily
    # bars (null until 14 days) is tested on its own in test_weights_assets.
    monkeypatch.setenv("TRADEPIPE_MIN_METRIC_DAYS", "0")
    return migrated_url


def _materialize(instance: dg.DagsterInstance, key: str, *defs: Any, **kwargs: Any) -> dg.ExecuteInProcessResult:
    result = dg.materialize(list(defs), partition_key=key, instance=instance, raise_on_error=True, resources=resources(), **kwargs)
    assert result.success
    return result


# The check alone, in a partitioned job (dg.materialize refuses a check-only selection with a
# partition key: "no PartitionsDefinition shared by all the provided assets").
def resources() -> dict[str, Any]:
    """The code location's resources for the settings the test put in the environment."""
    return build_resources(load_settings(), "test")


def check_job() -> dg.JobDefinition:
    return dg.Definitions(
        assets=[agent_performance],
        asset_checks=[performance_rows_are_valid],
        jobs=[
            dg.define_asset_job(
                "check_performance", selection=dg.AssetSelection.checks(performance_rows_are_valid), partitions_def=daily_with_today
            )
        ],
        resources=resources(),
    ).resolve_job_def("check_performance")


def _run_check(instance: dg.DagsterInstance, key: str) -> tuple[dg.AssetCheckEvaluation, float]:
    """The GX check on its own (the asset is not re-materialised: the check reads the table)."""
    started = time.perf_counter()
    result = check_job().execute_in_process(instance=instance, tags={"dagster/partition": key})
    elapsed = time.perf_counter() - started
    assert result.success
    assert result.asset_materializations_for_node("agent_performance") == []
    (evaluation,) = result.get_asset_check_evaluations()
    return evaluation, elapsed


def _metadata(materialization: dg.AssetMaterialization) -> dict[str, Any]:
    return {key: getattr(value, "value", value) for key, value in materialization.metadata.items()}


def _attribution(url: str, day: date) -> list[TradeAttributionRow]:
    with session_factory(url)() as session:
        return list(
            session.scalars(
                select(TradeAttributionRow).where(TradeAttributionRow.date == day).order_by(TradeAttributionRow.fill_id, TradeAttributionRow.agent_name)
            )
        )


def _performance(url: str, day: date) -> dict[str, AgentPerformanceRow]:
    with session_factory(url)() as session:
        rows = session.scalars(select(AgentPerformanceRow).where(AgentPerformanceRow.date == day)).all()
    assert len(rows) == len({r.agent_name for r in rows})  # one row per agent, never duplicated
    return {row.agent_name: row for row in rows}


def _key(rows: list[TradeAttributionRow]) -> list[tuple[int, str, Decimal, str]]:
    return [(r.fill_id, r.agent_name, r.pnl, r.symbol) for r in rows]


# ---------------------------------------------------------------- independent expectations


def _expected_streams(signals: pd.DataFrame, agents: list[str], settings: Any) -> pd.DataFrame:
    """Bars x agents: each agent's solo book, bar by bar in plain Python (the README's definition):
    vote value x confidence, target from the dead band and max position (shorts as the settings
    allow), no order within the rebalance band, the order filled at the decision bar's close (the
    ledger has no next open) moved by the slippage, the fee on the notional, stop-losses."""
    max_pos, band, fee, slip = settings.max_position_fraction, settings.resolved_rebalance_band, float(settings.fee_bps) / 1e4, float(settings.slippage_bps) / 1e4
    stop, shorts, deadband = settings.stop_loss_fraction, settings.shorts_allowed, 0.05
    bars = sorted(signals["bar_ts"].unique())
    closes = {(r.bar_ts, r.symbol): float(r.close) for r in signals.itertuples()}
    out: dict[str, list[float]] = {}
    for agent in agents:
        votes = {(r.bar_ts, r.symbol): (0.0 if r.abstained else r.value * r.confidence) for r in signals[signals["agent_name"] == agent].itertuples()}
        cash, qty, avg, pending, marks, equity = 1.0, {}, {}, {}, {}, []
        for bar in bars:
            for symbol, order in pending.items():
                if (bar, symbol) not in closes:
                    continue
                price = marks[symbol] * (1 + slip if order > 0 else 1 - slip)
                held = qty.get(symbol, 0.0)
                if held == 0 or (held > 0) != (held + order > 0):
                    avg[symbol] = price
                elif (held > 0) == (order > 0):
                    avg[symbol] = (held * avg[symbol] + order * price) / (held + order)
                cash -= order * price + abs(order * price) * fee
                qty[symbol] = held + order if abs(held + order) > 1e-12 * abs(held) else 0.0
            pending = {}
            marks.update({sym: c for (b, sym), c in closes.items() if b == bar})
            value = cash + sum(q * marks[sym] for sym, q in qty.items())
            equity.append(value)
            for (b, symbol), vote in votes.items():
                if b != bar:
                    continue
                held = qty.get(symbol, 0.0)
                if held and ((held > 0 and marks[symbol] <= avg[symbol] * (1 - stop)) or (held < 0 and marks[symbol] >= avg[symbol] * (1 + stop))):
                    pending[symbol] = -held
                    continue
                strength = min(1.0, abs(vote))
                target = 0.0 if strength <= deadband or (vote < 0 and not shorts) else math.copysign((strength - deadband) / (1 - deadband) * max_pos, vote)
                current = held * marks[symbol] / value
                if (held == 0 and abs(target) < band) or (held != 0 and target != 0 and abs(target - current) < band):
                    continue
                pending[symbol] = target * value / marks[symbol] - held
        out[agent] = [equity[i + 1] / equity[i] - 1 for i in range(len(equity) - 1)]
    return pd.DataFrame(out, index=bars[:-1]).reindex(columns=agents)


def _signals_frame(url: str, start: datetime, end: datetime) -> pd.DataFrame:
    with session_factory(url)() as session:
        rows = session.execute(
            select(SignalRow.bar_ts, SignalRow.symbol, SignalRow.agent_name, SignalRow.value, SignalRow.confidence, SignalRow.abstained, SignalRow.close).where(
                SignalRow.bar_ts >= start, SignalRow.bar_ts < end
            )
        ).all()
    return pd.DataFrame([tuple(r) for r in rows], columns=["bar_ts", "symbol", "agent_name", "value", "confidence", "abstained", "close"])


def _assert_metrics_equal(row: AgentPerformanceRow, expected: dict[str, Any]) -> None:
    for key, column in COLUMNS.items():
        stored, wanted = getattr(row, column), expected[key]
        if wanted is None:
            assert stored is None, (row.agent_name, column, stored)
        elif isinstance(wanted, int):
            assert stored == wanted, (row.agent_name, column)
        else:
            assert stored == pytest.approx(wanted, rel=1e-9, abs=1e-15), (row.agent_name, column)
    for key in FLOAT_METRICS:  # never inf or NaN in the table: undefined is NULL
        stored = getattr(row, COLUMNS[key])
        assert stored is None or math.isfinite(stored), (row.agent_name, key, stored)


# ---------------------------------------------------------------- ledger from real trading cycles


def _trade(url: str) -> None:
    from tradepipe.trading.runner import TradingRunner

    runner = TradingRunner(load_settings())
    first_ms = int(FIRST_BAR.timestamp() * 1000)
    for i in range(BARS):
        runner.run_cycle(first_ms + i * 3_600_000, run_id="test")


def _realized_fills(url: str) -> list[FillRow]:
    with session_factory(url)() as session:
        # Closing/reducing fills, and opening fills whose fee was realised when paid.
        return [f for f in session.scalars(select(FillRow).order_by(FillRow.id)) if f.closed_quantity > 0 or f.realized_pnl != 0]


def test_backfill_attribution_and_performance_from_real_cycles(url: str) -> None:
    _trade(url)
    realized = _realized_fills(url)
    days_with_trades = {f.ts.date() for f in realized}
    assert {date(2026, 1, 11), date(2026, 1, 12)} <= days_with_trades, "the synthetic run should close trades on both days"
    assert any(len(str(f.realized_pnl).split(".")[-1].rstrip("0")) > 8 for f in realized)  # sub-quantum P&L occurs

    instance = dg.DagsterInstance.ephemeral()
    # Backfill of three days, one run per partition (the assets' BackfillPolicy is one day per run).
    results = {
        key: _materialize(instance, key, trade_attribution, agent_performance, performance_rows_are_valid) for key in BACKFILL
    }
    assert instance.get_materialized_partitions(dg.AssetKey("agent_performance")) >= set(BACKFILL)

    # -- trade_attribution: parts sum exactly to each fill's realised P&L
    for key in BACKFILL:
        day = date.fromisoformat(key)
        rows = _attribution(url, day)
        fills = [f for f in realized if f.ts.date() == day]
        assert {r.fill_id for r in rows} == {f.id for f in fills}
        for fill in fills:
            parts = [r for r in rows if r.fill_id == fill.id]
            assert sum((r.pnl for r in parts), Decimal(0)) == fill.realized_pnl  # exact, Decimal
            assert {r.agent_name for r in parts} == set(fill.opening_contributions)
            assert sum(r.share for r in parts) == pytest.approx(1.0)
            assert all(r.trade_pnl == fill.realized_pnl and r.realized_at == fill.ts and r.symbol == fill.symbol for r in parts)
        (materialization,) = results[key].asset_materializations_for_node("trade_attribution")
        meta = _metadata(materialization)
        assert meta["realized_trades"] == len(fills)
        assert meta["attribution_rows"] == len(rows)
        assert meta["realized_pnl"] == pytest.approx(float(sum((f.realized_pnl for f in fills), Decimal(0))))
        assert meta["attributed_pnl"] == pytest.approx(meta["realized_pnl"])
    # a day without trades: zero rows and metadata that says so
    empty = _metadata(results["2026-01-10"].asset_materializations_for_node("trade_attribution")[0])
    assert (empty["realized_trades"], empty["attribution_rows"], empty["realized_pnl"], empty["attributed_pnl"]) == (0, 0, 0.0, 0.0)
    assert empty["by_agent"].records == []

    # -- agent_performance: one row per agent per day, equal to summarize() on independent streams
    with session_factory(url)() as session:
        attribution = session.scalars(select(TradeAttributionRow)).all()
    for key in BACKFILL:
        day = date.fromisoformat(key)
        rows = _performance(url, day)
        assert sorted(rows) == sorted(AGENTS)
        end = datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC)
        start = end - timedelta(days=WINDOW_DAYS)
        signals = _signals_frame(url, start, end)
        streams = _expected_streams(signals, AGENTS, load_settings()) if len(signals) else pd.DataFrame(columns=AGENTS, dtype=float)
        for agent, row in rows.items():
            assert row.window_days == WINDOW_DAYS
            _assert_metrics_equal(row, summarize(streams[agent].to_numpy(), PPY_1H, min_returns=load_settings().min_metric_returns))
            voted = signals[(signals["agent_name"] == agent) & ~signals["abstained"].astype(bool)] if len(signals) else signals
            assert row.total_signals == len(voted)
            parts = [a.pnl for a in attribution if a.agent_name == agent and start.date() <= a.date <= day]
            assert row.attributed_pnl == sum(parts, Decimal(0))
            closing = {f.id for f in realized if f.closed_quantity > 0}  # entry fees are not trades
            assert row.total_trades == sum(
                1 for a in attribution if a.agent_name == agent and start.date() <= a.date <= day and a.fill_id in closing and a.pnl != 0
            )
        ranked = sorted(rows.values(), key=lambda r: r.rank)
        assert [r.rank for r in ranked] == list(range(1, len(AGENTS) + 1))
        sharpes = [r.sharpe_ratio for r in ranked if r.sharpe_ratio is not None]
        assert sharpes == sorted(sharpes, reverse=True)  # null Sharpe ranks last

    # the day with no signals at all: every ratio null, reasons stored, everyone flagged as underperformer
    for row in _performance(url, date(2026, 1, 10)).values():
        assert row.sharpe_ratio is None and row.total_return == 0.0 and row.total_signals == 0
        assert row.null_reasons["sharpe"] == "fewer than 20 returns"  # TRADEPIPE_MIN_METRIC_RETURNS
        assert row.is_underperformer and not row.is_top_performer
    # sentiment has no headline feed: it always abstains, its stream is flat, its ratios are null (not inf)
    sentiment = _performance(url, date(2026, 1, 12))["sentiment"]
    assert sentiment.total_signals == 0
    assert (sentiment.sharpe_ratio, sentiment.sortino_ratio, sentiment.calmar_ratio, sentiment.win_rate, sentiment.profit_factor) == (None,) * 5
    assert sentiment.volatility == 0.0 and sentiment.max_drawdown == 0.0
    assert "zero volatility" in sentiment.null_reasons["sharpe"]
    assert sentiment.is_underperformer and sentiment.rank == len(AGENTS)

    # -- metadata, read back from the instance
    event = instance.get_latest_materialization_event(dg.AssetKey("agent_performance"))
    assert event is not None and event.asset_materialization.partition == "2026-01-12"
    meta = _metadata(event.asset_materialization)
    rows = _performance(url, date(2026, 1, 12))
    assert meta["agents_analyzed"] == len(AGENTS)
    assert meta["top_performers"] == [a for a, r in sorted(rows.items(), key=lambda kv: kv[1].rank) if r.is_top_performer]
    assert set(meta["underperformers"]) == {a for a, r in rows.items() if r.is_underperformer}
    assert "sentiment" in meta["underperformers"]
    assert meta["ranking_by_sharpe"] == [a for a, _ in sorted(rows.items(), key=lambda kv: kv[1].rank)]
    assert meta["bars_in_window"] == BARS - 1  # the last bar has no next close yet
    assert meta["window"] == "2026-01-11T00:00:00+00:00 .. 2026-01-13T00:00:00+00:00"
    table = meta["metrics"]
    assert [c.name for c in table.schema.columns][:3] == ["agent", "rank", "sharpe"]
    assert [rec.data["agent"] for rec in table.records] == meta["ranking_by_sharpe"]
    for record in table.records:
        row = rows[record.data["agent"]]
        assert record.data["sharpe"] == row.sharpe_ratio
        assert record.data["signals"] == row.total_signals and record.data["trades"] == row.total_trades
    assert table.records[-1].data["sharpe"] is None  # sentiment, null and last

    # -- the GX check ran with every partition and passed
    for key in BACKFILL:
        (evaluation,) = results[key].get_asset_check_evaluations()
        assert evaluation.check_name == "performance_rows_are_valid" and evaluation.passed, evaluation.metadata

    # -- re-materialising a partition replaces its rows: same rows, no duplicates, new run id
    before_attr, before_perf = _attribution(url, date(2026, 1, 12)), _performance(url, date(2026, 1, 12))
    rerun = _materialize(instance, "2026-01-12", trade_attribution, agent_performance)
    after_attr, after_perf = _attribution(url, date(2026, 1, 12)), _performance(url, date(2026, 1, 12))
    assert _key(after_attr) == _key(before_attr) and len(after_attr) == len(before_attr) > 0
    assert {r.run_id for r in after_attr} == {rerun.run_id}
    assert sorted(after_perf) == sorted(before_perf)
    assert {r.run_id for r in after_perf.values()} == {rerun.run_id}
    for agent, row in after_perf.items():
        for column in [*COLUMNS.values(), "total_signals", "total_trades", "attributed_pnl", "rank"]:
            assert getattr(row, column) == getattr(before_perf[agent], column), (agent, column)
    with session_factory(url)() as session:
        assert len(session.scalars(select(AgentPerformanceRow)).all()) == len(BACKFILL) * len(AGENTS)
        assert len(session.scalars(select(TradeAttributionRow)).all()) == len(attribution)

    # -- the GX check fails, naming the expectation, once a row is corrupted
    evaluation, seconds = _run_check(instance, "2026-01-12")
    assert evaluation.passed
    with session_factory(url).begin() as session:
        session.execute(
            update(AgentPerformanceRow).where(AgentPerformanceRow.date == date(2026, 1, 12), AgentPerformanceRow.agent_name == "trend").values(win_rate=1.7)
        )
    evaluation, seconds = _run_check(instance, "2026-01-12")
    assert not evaluation.passed
    failed = evaluation.metadata["failed_expectations"].value
    assert failed == [{"expectation": "expect_column_values_to_be_between", "column": "win_rate", "unexpected_count": 1, "examples": [1.7]}]
    assert evaluation.metadata["failed"].value == "expect_column_values_to_be_between(win_rate)"
    print(f"performance_rows_are_valid: {seconds:.2f}s per run (check metadata: {evaluation.metadata['seconds'].value}s)")


# ---------------------------------------------------------------- hand-inserted fills


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# (book, timestamp, symbol, realized_pnl, closed_quantity, opening_contributions)
HAND_FILLS = {
    "even": ("main", "2026-01-20T01:00:00", "BTC/USDT", "10.00000000", "0.1", {"momentum": 1.0, "trend": 1.0, "breakout": 1.0}),
    "sub_quantum": ("main", "2026-01-20T02:00:00", "ETH/USDT", "-3.14282764441286145", "0.5", {"trend": 0.3, "momentum": 0.1}),
    "mixed_sign": ("main", "2026-01-20T03:00:00", "SOL/USDT", "1.00", "2", {"trend": 0.3, "mean_reversion": -0.1}),
    "no_contributions": ("main", "2026-01-20T23:59:59.999000", "SOL/USDT", "0.42", "1", {}),
    "opening": ("main", "2026-01-20T04:00:00", "BTC/USDT", "-0.25", "0", {"trend": 1.0}),  # opens: its fee is realised
    "other_book": ("bt", "2026-01-20T05:00:00", "BTC/USDT", "7.00", "1", {"trend": 1.0}),
    "previous_day": ("main", "2026-01-19T23:59:59", "BTC/USDT", "2.00", "1", {"trend": 1.0}),
    "next_day": ("main", "2026-01-21T00:00:00", "BTC/USDT", "5.00", "1", {"momentum": 1.0}),
}
EXPECTED_PARTS = {  # hand-computed, quantum 1e-8, largest remainder, sub-quantum residue to the largest contributor
    "even": {"breakout": "3.33333334", "momentum": "3.33333333", "trend": "3.33333333"},  # tie -> first by name
    "sub_quantum": {"momentum": "-0.78570691", "trend": "-2.35712073441286145"},  # 0.25 / 0.75 + residue
    "mixed_sign": {"mean_reversion": "-0.50", "trend": "1.50"},  # shares -0.5 and 1.5
    "no_contributions": {"unattributed": "0.42"},
}


def _insert_fills(url: str) -> dict[str, int]:
    ids: dict[str, int] = {}
    with session_factory(url).begin() as session:
        for book in ("main", "bt"):
            session.add(BookRow(name=book, starting_cash=Decimal("10000"), quote_currency="USDT"))
        session.flush()
        cycles = {}
        for book in ("main", "bt"):
            cycles[book] = TradingCycleRow(book=book, bar_ts=_ts("2026-01-19T00:00:00"), timeframe="1h", market_source="synthetic", status="succeeded")
            session.add(cycles[book])
        session.flush()
        for name, (book, ts, symbol, pnl, closed, contributions) in HAND_FILLS.items():
            order = OrderRow(
                client_order_id=f"hand-{name}", cycle_id=cycles[book].id, book=book, bar_ts=_ts(ts), symbol=symbol, side="sell",
                quantity=Decimal("1"), requested_quantity=Decimal("1"), status="filled", broker="paper",
            )
            session.add(order)
            session.flush()
            fill = FillRow(
                order_id=order.id, client_order_id=order.client_order_id, trade_id=f"t-{name}", book=book, symbol=symbol,
                side="sell", quantity=Decimal("1"), price=Decimal("100"), fee=Decimal("0.1"), notional=Decimal("100"),
                ts=_ts(ts), realized_pnl=Decimal(pnl), closed_quantity=Decimal(closed), opening_contributions=contributions,
            )
            session.add(fill)
            session.flush()
            ids[name] = fill.id
    return ids


def test_hand_inserted_fills_split_exactly_and_rematerialise_idempotently(url: str) -> None:
    ids = _insert_fills(url)
    instance = dg.DagsterInstance.ephemeral()
    first = _materialize(instance, "2026-01-20", trade_attribution)
    rows = _attribution(url, date(2026, 1, 20))
    got = {name: {r.agent_name: r.pnl for r in rows if r.fill_id == fid} for name, fid in ids.items()}
    for name, parts in EXPECTED_PARTS.items():
        assert got[name] == {agent: Decimal(p) for agent, p in parts.items()}, name
        assert sum(got[name].values(), Decimal(0)) == Decimal(HAND_FILLS[name][3])  # exact on both backends
    assert got["opening"] == {"trend": Decimal("-0.25")}
    assert got["other_book"] == {} and got["previous_day"] == {} and got["next_day"] == {}
    shares = {(r.fill_id, r.agent_name): r.share for r in rows}
    assert shares[(ids["mixed_sign"], "trend")] == pytest.approx(1.5)
    assert shares[(ids["mixed_sign"], "mean_reversion")] == pytest.approx(-0.5)
    assert shares[(ids["no_contributions"], "unattributed")] == 1.0
    assert {r.date for r in rows} == {date(2026, 1, 20)} and {r.book for r in rows} == {"main"}
    meta = _metadata(first.asset_materializations_for_node("trade_attribution")[0])
    assert (meta["realized_trades"], meta["attribution_rows"]) == (5, 9)
    assert meta["realized_pnl"] == pytest.approx(10 - 3.14282764441286145 + 1 + 0.42 - 0.25)
    assert meta["attributed_pnl"] == pytest.approx(meta["realized_pnl"])
    by_agent = {rec.data["agent"]: rec.data["pnl"] for rec in meta["by_agent"].records}
    assert by_agent == pytest.approx({"breakout": 3.33333334, "momentum": 2.54762642, "trend": 2.47621259558713855 - 0.25, "mean_reversion": -0.5, "unattributed": 0.42})

    # re-materialise: the same rows, replaced (new run id), never duplicated
    second = _materialize(instance, "2026-01-20", trade_attribution)
    again = _attribution(url, date(2026, 1, 20))
    assert _key(again) == _key(rows) and len(again) == 9
    assert {r.run_id for r in again} == {second.run_id} != {first.run_id}

    # the neighbouring days take the boundary fills (the day is [00:00, 24:00) UTC)
    _materialize(instance, "2026-01-19", trade_attribution)
    _materialize(instance, "2026-01-21", trade_attribution)
    assert [(r.fill_id, r.pnl) for r in _attribution(url, date(2026, 1, 19))] == [(ids["previous_day"], Decimal("2.00"))]
    assert [(r.fill_id, r.pnl) for r in _attribution(url, date(2026, 1, 21))] == [(ids["next_day"], Decimal("5.00"))]

    # agent_performance for 01-20 (window 01-19 .. 01-20): trades only, no signals -> null ratios
    _materialize(instance, "2026-01-20", agent_performance, performance_rows_are_valid)
    perf = _performance(url, date(2026, 1, 20))
    assert sorted(perf) == sorted(AGENTS)  # "unattributed" is not an agent
    attributed = {a: r.attributed_pnl for a, r in perf.items()}
    assert attributed == {
        "breakout": Decimal("3.33333334"),
        "momentum": Decimal("3.33333333") - Decimal("0.78570691"),
        "trend": Decimal("3.33333333") - Decimal("2.35712073441286145") + Decimal("1.50") + Decimal("2.00") - Decimal("0.25"),
        "mean_reversion": Decimal("-0.50"),
        "sentiment": Decimal(0),
    }
    assert {a: r.total_trades for a, r in perf.items()} == {"breakout": 1, "momentum": 2, "trend": 4, "mean_reversion": 1, "sentiment": 0}
    assert perf["trend"].trade_win_rate == 0.75
    assert perf["trend"].trade_profit_factor == pytest.approx((3.33333333 + 1.5 + 2.0) / 2.35712073441286145)
    assert perf["breakout"].trade_profit_factor is None and perf["mean_reversion"].trade_win_rate == 0.0
    for row in perf.values():
        assert row.total_signals == 0 and row.sharpe_ratio is None and row.volatility is None
        assert row.null_reasons["sharpe"] == "fewer than 20 returns"  # TRADEPIPE_MIN_METRIC_RETURNS
    assert sorted(perf, key=lambda a: perf[a].rank) == sorted(AGENTS)  # all Sharpe null: by name
    event = instance.get_latest_materialization_event(dg.AssetKey("agent_performance"))
    meta = _metadata(event.asset_materialization)
    assert meta["agents_analyzed"] == 5 and meta["top_performers"] == [] and meta["bars_in_window"] == 0
    assert set(meta["underperformers"]) == set(AGENTS)

    # re-materialise performance: replaced, still one row per agent
    _materialize(instance, "2026-01-20", agent_performance)
    assert sorted(_performance(url, date(2026, 1, 20))) == sorted(AGENTS)

    # the GX check passes, then fails when an agent's row is missing (row count and agent set)
    evaluation, _ = _run_check(instance, "2026-01-20")
    assert evaluation.passed, evaluation.metadata
    with session_factory(url).begin() as session:
        session.execute(delete(AgentPerformanceRow).where(AgentPerformanceRow.date == date(2026, 1, 20), AgentPerformanceRow.agent_name == "sentiment"))
    evaluation, _ = _run_check(instance, "2026-01-20")
    assert not evaluation.passed
    failed = {f["expectation"]: f for f in evaluation.metadata["failed_expectations"].value}
    assert set(failed) == {"expect_table_row_count_to_equal", "expect_column_distinct_values_to_equal_set"}
    assert failed["expect_table_row_count_to_equal"]["observed_value"] == 4
    assert failed["expect_column_distinct_values_to_equal_set"]["missing"] == ["sentiment"]
    # an infinite ratio (undefined must be stored as null) fails too, named with its column
    with session_factory(url).begin() as session:
        session.execute(
            update(AgentPerformanceRow)
            .where(AgentPerformanceRow.date == date(2026, 1, 20), AgentPerformanceRow.agent_name == "trend")
            .values(sharpe_ratio=float("inf"))
        )
    evaluation, _ = _run_check(instance, "2026-01-20")
    assert "expect_column_values_to_be_between(sharpe_ratio)" in evaluation.metadata["failed"].value
    failed = [f for f in evaluation.metadata["failed_expectations"].value if f.get("column") == "sharpe_ratio"]
    assert failed == [{"expectation": "expect_column_values_to_be_between", "column": "sharpe_ratio", "unexpected_count": 1, "examples": ["inf"]}]


# ---------------------------------------------------------------- the CLI


def test_cli_materialises_one_partition(sqlite_url: str, tmp_path: Path) -> None:
    """`dagster asset materialize --select agent_performance --partition <key> -m tradepipe.definitions`.

    No executor config is needed: the code location's default executor is in-process (a multiprocess
    one would start a second Python per step and double the time). (``--partition-range`` needs BackfillPolicy.single_run()
    and is refused for these one-day-per-run assets; see the report.)
    """
    from dagster._core.instance.ref import InstanceRef

    from tradepipe.adapters.db.engine import upgrade

    upgrade(sqlite_url)
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        **os.environ,
        "TRADEPIPE_DATABASE_URL": sqlite_url,
        "TRADEPIPE_TIMEFRAME": "1h",
        "TRADEPIPE_PERFORMANCE_WINDOW_DAYS": str(WINDOW_DAYS),
        "DAGSTER_HOME": str(dagster_home),
    }
    command = [
        sys.executable, "-m", "dagster", "asset", "materialize",
        "--select", "agent_performance", "--partition", "2026-01-20", "-m", "tradepipe.definitions",
    ]  # fmt: skip
    completed = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert completed.returncode == 0, completed.stderr[-3000:]
    with session_factory(sqlite_url)() as session:
        rows = session.scalars(select(AgentPerformanceRow).where(AgentPerformanceRow.date == date(2026, 1, 20))).all()
    assert sorted(r.agent_name for r in rows) == sorted(AGENTS)
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home))) as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey("agent_performance"))
        assert event is not None and event.asset_materialization.partition == "2026-01-20"
        assert {r.run_id for r in rows} == {event.run_id}
        assert _metadata(event.asset_materialization)["agents_analyzed"] == len(AGENTS)
