"""The trading cycle on defective real candles: a bad bar keeps its symbol out of every cycle whose agents
would read it, with the reason in the cycle, agent_work_log and system_metrics, while the other symbol
keeps trading; no signal and no order is ever based on a defective bar."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from tradepipe.adapters.db.engine import session_factory
from tradepipe.adapters.db.ledger import datetime_to_ms
from tradepipe.adapters.db.models import (
    AgentWorkLogRow,
    OrderRow,
    SignalRow,
    SystemMetricRow,
    TradingCycleRow,
)
from tradepipe.adapters.db.quality import BLOCKED_METRIC
from tradepipe.adapters.market import ReplayMarket
from tradepipe.trading.runner import TradingRunner
from tradepipe.config.settings import load_settings

H = 3_600_000
ETH, BTC = "ETH/USDT", "BTC/USDT"
DEFECT_ROW = 300
FUTURE_MS = 4_102_444_800_000  # 2100-01-01


def _rows(url: str, model: type) -> list:
    with session_factory(url)() as session:
        return list(session.scalars(select(model).order_by(model.id)))


def _corrupt(frame: pd.DataFrame, kind: str) -> tuple[pd.DataFrame, int, str]:
    """``frame`` with one defect; returns it, the open time of the first cycle whose bars hold it, and the rule."""
    frame = frame.copy()
    i = DEFECT_ROW
    stamp = int(frame.loc[i, "timestamp"])
    if kind == "nan":
        frame.loc[i, "close"] = np.nan
        return frame, stamp, "null_value"
    if kind == "negative_price":
        frame.loc[i, "open"] = -frame.loc[i, "open"]
        return frame, stamp, "non_positive_price"
    if kind == "high_below_low":
        frame.loc[i, ["high", "low"]] = frame.loc[i, ["low", "high"]].to_numpy()
        return frame, stamp, "high_low_inconsistent"
    if kind == "duplicate":
        return pd.concat([frame.iloc[: i + 1], frame.iloc[[i]], frame.iloc[i + 1 :]], ignore_index=True), stamp, "duplicate_timestamp"
    if kind == "misaligned":
        frame.loc[i, "timestamp"] = stamp + 60_000
        return frame, stamp + H, "misaligned_timestamp"  # closes after `stamp + H`: the next cycle's bars hold it
    if kind == "spike":
        frame.loc[i, ["open", "high", "close"]] = frame.loc[i, ["open", "high", "close"]].to_numpy() * 3
        return frame, stamp, "outlier"
    raise AssertionError(kind)


@pytest.fixture
def replay(shared_data: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "replay"
    folder.mkdir()
    shutil.copy(shared_data / "ohlcv/binance_2018_octobot/BTC_USDT-1h.csv", folder / "BTC_USDT-1h.csv")
    return folder


def _runner(url: str, folder: Path) -> TradingRunner:
    settings = load_settings(database_url=url, symbols="BTC/USDT,ETH/USDT", timeframe="1h", market_source="replay", replay_dir=folder)
    return TradingRunner(settings, market=ReplayMarket(folder, mode="stepped"))


@pytest.mark.shared_data
@pytest.mark.parametrize("kind", ["nan", "negative_price", "high_below_low", "duplicate", "misaligned", "spike"])
def test_a_defective_eth_bar_keeps_eth_out_while_its_agents_would_read_it_and_btc_trades(
    migrated_url: str, shared_data: Path, replay: Path, kind: str
) -> None:
    source = pd.read_csv(shared_data / "ohlcv/binance_2018_octobot/ETH_USDT-1h.csv").drop(columns=["datetime"])
    corrupted, first_blocked, rule = _corrupt(source, kind)
    corrupted.assign(timestamp=corrupted["timestamp"].astype("int64")).to_csv(replay / "ETH_USDT-1h.csv", index=False)
    runner = _runner(migrated_url, replay)
    bars = [int(source.loc[DEFECT_ROW, "timestamp"]) + k * H for k in range(-2, 4)]
    outcomes = {bar: runner.run_cycle(bar) for bar in bars}

    # A bar moved off its hour leaves that hour's cycle without an ETH bar: skipped too, for that reason.
    first_skipped = first_blocked - H if kind == "misaligned" else first_blocked
    for bar, outcome in outcomes.items():
        assert outcome.status == "traded"
        if bar < first_skipped:
            assert ETH not in outcome.skipped
        elif bar < first_blocked:
            assert "newest closed bar is" in outcome.skipped[ETH]
        else:
            assert rule in outcome.skipped[ETH], (kind, outcome.skipped)
    # No ETH signal or order on any cycle whose bars hold the defect; BTC voted on every cycle.
    signals = _rows(migrated_url, SignalRow)
    assert {datetime_to_ms(s.bar_ts) for s in signals if s.symbol == ETH} == {b for b in bars if b < first_skipped}
    assert {datetime_to_ms(s.bar_ts) for s in signals if s.symbol == BTC} == set(bars)
    assert not [o for o in _rows(migrated_url, OrderRow) if o.symbol == ETH and datetime_to_ms(o.bar_ts) >= first_skipped]
    # The reason is on the cycle, in agent_work_log and in system_metrics (what the reports read).
    cycles = {datetime_to_ms(c.bar_ts): c for c in _rows(migrated_url, TradingCycleRow)}
    assert rule in cycles[first_blocked].skipped[ETH]
    blocked_work = [w for w in _rows(migrated_url, AgentWorkLogRow) if w.agent_name == "data_quality"]
    assert all(w.status == "blocked" and w.task == "market_bars" for w in blocked_work)
    assert {w.cycle_id for w in blocked_work} == {c.id for b, c in cycles.items() if b >= first_skipped}
    by_rule = [w for w in blocked_work if w.cycle_id in {c.id for b, c in cycles.items() if b >= first_blocked}]
    assert all(rule in w.details["blocked"][ETH] for w in by_rule)
    assert all(rule in {d["rule"] for d in w.details["defects"][ETH]} for w in by_rule)
    metrics = [m for m in _rows(migrated_url, SystemMetricRow) if m.metric_name == BLOCKED_METRIC]
    assert {m.tags["symbol"] for m in metrics} == {ETH}
    assert sum(rule in m.tags["rule"] for m in metrics) == sum(b >= first_blocked for b in bars)
    assert len(metrics) == sum(b >= first_skipped for b in bars)


@pytest.mark.shared_data
def test_rows_out_of_order_in_a_file_are_traded_in_time_order(migrated_url: str, shared_data: Path, replay: Path) -> None:
    """The replay adapter sorts rows: the cycle sees clean bars, so ETH trades (the file check reports the order)."""
    source = pd.read_csv(shared_data / "ohlcv/binance_2018_octobot/ETH_USDT-1h.csv").drop(columns=["datetime"])
    swapped = source.copy()
    swapped.iloc[[DEFECT_ROW, DEFECT_ROW + 1]] = source.iloc[[DEFECT_ROW + 1, DEFECT_ROW]].to_numpy()
    swapped.assign(timestamp=swapped["timestamp"].astype("int64")).to_csv(replay / "ETH_USDT-1h.csv", index=False)
    outcome = _runner(migrated_url, replay).run_cycle(int(source.loc[DEFECT_ROW + 2, "timestamp"]))
    assert outcome.skipped == {}


@pytest.mark.shared_data
def test_a_bar_from_the_future_is_never_traded(migrated_url: str, shared_data: Path, replay: Path) -> None:
    source = pd.read_csv(shared_data / "ohlcv/binance_2018_octobot/ETH_USDT-1h.csv").drop(columns=["datetime"])
    future = pd.concat([source, source.iloc[[-1]].assign(timestamp=FUTURE_MS)], ignore_index=True)
    future.to_csv(replay / "ETH_USDT-1h.csv", index=False)
    outcome = _runner(migrated_url, replay).run_cycle(FUTURE_MS)
    assert "future_timestamp" in outcome.skipped[ETH]
    assert not [s for s in _rows(migrated_url, SignalRow) if s.symbol == ETH]
    assert not _rows(migrated_url, OrderRow)


@pytest.mark.shared_data
def test_the_bogus_first_cdd_rows_keep_btc_and_eth_out_until_they_leave_the_agents_window(
    migrated_url: str, shared_data: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "cdd"
    folder.mkdir()
    for base in ("BTC", "ETH"):
        pd.read_csv(shared_data / f"ohlcv/binance_cdd_2017_2021/{base}_USDT-1h.csv").head(260).to_csv(folder / f"{base}_USDT-1h.csv", index=False)
    runner = _runner(migrated_url, folder)
    first = int(pd.read_csv(folder / "BTC_USDT-1h.csv")["timestamp"].iloc[0])
    window = runner.history_bars
    inside, outside = first + (window - 1) * H, first + window * H  # the last cycle whose bars hold row 0, the first without
    blocked = runner.run_cycle(inside)
    assert set(blocked.skipped) == {BTC, ETH}
    assert all("outlier" in reason and "2017-08-17T04:00Z" in reason for reason in blocked.skipped.values())
    assert blocked.last_signals == [] and blocked.orders_placed == []
    traded = runner.run_cycle(outside)
    assert traded.skipped == {} and {s["symbol"] for s in traded.last_signals} == {BTC, ETH}
