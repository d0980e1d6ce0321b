"""``tradepipe backtest`` trades on the walk-forward engine and writes the ledger the live runner writes: on
real candles with a missing hour in one symbol and a defective bar in the other, the engine-backed backtest
and the live runner's bar-by-bar replay leave identical rows in every table the backtest writes (cycles,
signals, orders and rejections, fills, positions, snapshots, agent work log, blocked-symbol rows, the book's
halt). With the fast signal path only the signals' reason texts differ, and the votes by rounding (1e-12)."""

from __future__ import annotations

from decimal import Context, Decimal
from pathlib import Path
from typing import Any

import pytest

from tradepipe.adapters.db.engine import session_factory, upgrade
from tradepipe.adapters.db.models import BookRow
from tradepipe.adapters.db.types import MONEY_PRECISION, MONEY_SCALE
from tradepipe.trading import backtest as backtest_module
from tradepipe.trading.backtest import run_backtest
from tradepipe.config.settings import load_settings
from tests.integration.test_backtest import ledger
from tests.walkforward.conftest import write_slice

BOOK = "bt-engine"
ROWS = 59 + 240 + 1


def _edit(name: str, lines: list[str]) -> list[str]:
    if name.startswith("ETH"):
        return lines[:150] + lines[151:]  # ETH misses an hour
    fields = lines[200].split(",")
    fields[5] = "nan"  # a defective BTC close: BTC is skipped while it is in the window
    return lines[:200] + [",".join(fields)] + lines[201:]


@pytest.fixture(scope="module")
def candles(cdd_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 2018-02: a falling market (stop-losses; the daily-loss limit is set to 1% so it can halt the book)
    return write_slice(cdd_dir, tmp_path_factory.mktemp("bt_engine"), 4_000, ROWS, _edit)


Ledger = tuple[dict[str, list[dict[str, Any]]], Any, dict[str, Any]]


def _backtest(tmp_path: Path, candles: Path, name: str, url: str | None = None, **how: Any) -> Ledger:
    url = url or f"sqlite:///{tmp_path / (name + '.sqlite')}"
    upgrade(url)
    settings = load_settings(
        database_url=url, market_source="replay", replay_dir=candles, timeframe="1h", symbols="BTC/USDT,ETH/USDT",
        agent_weights="momentum=0.3,trend=0.3,mean_reversion=0.1,breakout=0.2,sentiment=0.1", daily_loss_limit_fraction=0.01,
    )
    summary = run_backtest(settings, candles, BOOK, **how)
    with session_factory(url)() as session:
        book = session.get(BookRow, BOOK)
        assert book is not None
        halt = {"halted_day": book.halted_day, "halt_reason": book.halt_reason}
    return ledger(url, BOOK), summary, halt


@pytest.fixture(scope="module")
def live_runner(candles: Path, tmp_path_factory: pytest.TempPathFactory) -> Ledger:
    """The reference: the live runner's bar-by-bar replay of the candles, one transaction per bar."""
    return _backtest(tmp_path_factory.mktemp("runner"), candles, "runner", through="runner")


def test_the_engine_backed_backtest_writes_the_live_runners_ledger(
    candles: Path, live_runner: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected, live_summary, live_halt = live_runner
    assert len(expected["trading_cycles"]) == ROWS - 59 - 1  # the missing ETH hour is still a BTC bar; the last candle is dropped
    assert len(expected["fills"]) >= 5
    assert any(w["agent"] == "data_quality" for w in expected["agent_work_log"])
    assert any(p["quantity"] == 0 for p in expected["positions"])  # a position was closed: its row stays at zero
    # The engine's rows are written a batch of cycles at a time: one batch (the closed position was held only
    # inside it), batches of one cycle (every fill settles an order of an earlier batch) and of 7 (both).
    for batch in (None, 1, 7):
        if batch is not None:
            monkeypatch.setattr(backtest_module, "_COMMIT_EVERY", batch)
        mine, summary, halt = _backtest(tmp_path, candles, f"engine-{batch}", signal_mode="per_bar")
        assert summary == live_summary and halt == live_halt
        for table in expected:
            assert len(mine[table]) == len(expected[table]), (batch, table)
            for a, b in zip(expected[table], mine[table]):
                assert a == b, (batch, table)

    fast, fast_summary, fast_halt = _backtest(tmp_path, candles, "fast")
    assert fast_summary == live_summary and fast_halt == live_halt

    def split(dump: dict[str, list[dict[str, Any]]]) -> tuple[dict[str, list[dict[str, Any]]], list[float]]:
        """The rows without the reason texts and the votes' floats, and those floats (the fast path's
        votes equal the per-bar agents' to 1e-12, not to the last bit)."""
        rows = {table: [dict(row) for row in found] for table, found in dump.items()}
        floats: list[float] = []
        for row in rows["signals"]:
            row.pop("reason")
            floats += [row.pop("value"), row.pop("confidence")]
        for row in rows["agent_work_log"]:
            if row["agent"] != "data_quality":
                details = {k: v for k, v in row["details"].items() if k != "reasons"}
                mean = details.pop("mean_signal")
                floats.append(0.0 if mean is None else mean)
                row["details"] = details
        return rows, floats

    fast_rows, fast_floats = split(fast)
    expected_rows, expected_floats = split(expected)
    assert fast_rows == expected_rows
    assert fast_floats == pytest.approx(expected_floats, abs=1e-12)


def test_the_engine_backed_backtest_writes_the_same_ledger_on_postgresql(
    candles: Path, live_runner: Ledger, postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The batch writer's ids come from INSERT .. RETURNING in parameter order: psycopg2's as SQLite's.
    # PostgreSQL keeps money to MONEY_SCALE decimals (SQLite keeps the text): compared at that scale.
    expected, live_summary, live_halt = live_runner
    monkeypatch.setattr(backtest_module, "_COMMIT_EVERY", 7)
    mine, summary, halt = _backtest(tmp_path, candles, "engine", url=postgres_url, signal_mode="per_bar")
    assert halt == live_halt
    assert (summary.cycles, summary.fills, summary.skipped_cycles) == (live_summary.cycles, live_summary.fills, live_summary.skipped_cycles)
    assert _at_money_scale(summary.final_equity) == _at_money_scale(live_summary.final_equity)
    for table in expected:
        assert len(mine[table]) == len(expected[table]), table
        for a, b in zip(expected[table], mine[table]):
            assert _at_money_scale(a) == _at_money_scale(b), table


def _at_money_scale(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _at_money_scale(item) for key, item in value.items()}
    if isinstance(value, Decimal):
        return value.quantize(Decimal(1).scaleb(-MONEY_SCALE), context=Context(prec=MONEY_PRECISION))
    return value
