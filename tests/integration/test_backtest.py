"""``tradepipe backtest`` over recorded Binance candles: reproducible to the last digit, never the live book,
never the unfinished last candle."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import inspect, select

from tradepipe.adapters.db.engine import session_factory
from tradepipe.adapters.db.ledger import datetime_to_ms, ms_to_datetime
from tradepipe.adapters.db.models import (
    AgentWorkLogRow,
    BookRow,
    FillRow,
    MarketBarRow,
    OrderRow,
    PortfolioSnapshotRow,
    PositionRow,
    SignalRow,
    TradingCycleRow,
)
from tradepipe.cli.main import main as cli
from tradepipe.core.agents import get_agents, max_history_needed

FILES = ("BTC_USDT-1h.csv", "ETH_USDT-1h.csv")
SLICE_ROWS = 160  # the newest 160 hours of each file: 59 bars of warm-up, 100 to trade, the unfinished candle
WARMUP = max_history_needed(get_agents())
# Row identity that differs between two runs by construction, not by behaviour.
VOLATILE = {"id", "cycle_id", "order_id", "run_id", "created_at", "updated_at", "started_at", "finished_at"}
# What a backtest writes, each in a stable order.
TABLES: dict[type, tuple[str, ...]] = {
    TradingCycleRow: ("bar_ts",),
    SignalRow: ("bar_ts", "symbol", "agent_name"),
    OrderRow: ("bar_ts", "symbol", "client_order_id"),
    FillRow: ("ts", "symbol", "client_order_id"),
    PositionRow: ("symbol",),
    PortfolioSnapshotRow: ("bar_ts",),
}


@pytest.fixture(scope="module")
def octobot_slice(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The newest SLICE_ROWS rows of BTC and ETH 1h from ``ohlcv/binance_2018_octobot``, last (unfinished) candle included."""
    source = shared_data / "ohlcv" / "binance_2018_octobot"
    target = tmp_path_factory.mktemp("binance_2018_octobot")
    for name in FILES:
        header, *lines = (source / name).read_text().splitlines()
        (target / name).write_text("\n".join([header, *lines[-SLICE_ROWS:]]) + "\n")
    return target


def timestamps(directory: Path, name: str = "BTC_USDT-1h.csv") -> list[int]:
    return [int(line.split(",", 1)[0]) for line in (directory / name).read_text().splitlines()[1:]]


@pytest.fixture
def database(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("TRADEPIPE_SYMBOLS", "BTC/USDT,ETH/USDT")
    upgraded = CliRunner().invoke(cli, ["db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    return sqlite_url


def backtest(replay: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["backtest", "--replay-dir", str(replay), "--json", *args])


def ledger(url: str, book: str) -> dict[str, list[dict[str, Any]]]:
    """Every row the backtest wrote for ``book``, without ids, run ids and wall-clock times."""
    dump: dict[str, list[dict[str, Any]]] = {}
    with session_factory(url)() as session:
        for model, order in TABLES.items():
            columns = [c.key for c in inspect(model).column_attrs if c.key not in VOLATILE]
            found = session.scalars(select(model).where(model.book == book).order_by(*(getattr(model, k) for k in order)))
            dump[model.__tablename__] = [{c: getattr(row, c) for c in columns} for row in found]
        work = session.scalars(
            select(AgentWorkLogRow).join(TradingCycleRow, AgentWorkLogRow.cycle_id == TradingCycleRow.id)
            .where(TradingCycleRow.book == book).order_by(TradingCycleRow.bar_ts, AgentWorkLogRow.agent_name)
        )
        dump["agent_work_log"] = [{"agent": w.agent_name, "status": w.status, "details": w.details} for w in work]
    return dump


def test_two_backtests_of_the_same_candles_write_identical_ledgers(database: str, octobot_slice: Path) -> None:
    first = backtest(octobot_slice, "--book", "bt-a")
    assert first.exit_code == 0, first.output
    summary = json.loads(first.output)
    recorded = ledger(database, "bt-a")

    # The summary is the ledger's, and the replay traded every bar after the agents' warm-up.
    bars = timestamps(octobot_slice)
    traded = [datetime_to_ms(c["bar_ts"]) for c in recorded["trading_cycles"]]
    assert traded == bars[WARMUP:-1]
    assert summary["cycles"] == len(traded) == SLICE_ROWS - WARMUP - 1
    assert summary["fills"] == len(recorded["fills"]) > 0
    assert summary["cycles_with_skipped_symbols"] == 0
    last = recorded["portfolio_snapshots"][-1]
    assert Decimal(summary["final_equity"]) == last["equity"].quantize(Decimal("0.01"))
    for snapshot in recorded["portfolio_snapshots"]:
        value = sum((Decimal(p["quantity"]) * Decimal(p["mark"]) for p in snapshot["positions"].values()), Decimal(0))
        assert snapshot["equity"] == snapshot["cash"] + value
    assert len(recorded["signals"]) == len(traded) * 2 * 5
    # Only the last bar's orders still wait for a next open; every earlier one was settled.
    assert all(o["status"] != "pending" for o in recorded["orders"] if datetime_to_ms(o["bar_ts"]) < traded[-1])

    # Again, over the same book: refused without --reset, replaced with it, and identical row by row.
    refused = backtest(octobot_slice, "--book", "bt-a")
    assert refused.exit_code == 2
    assert "already holds a backtest: pass --reset" in refused.output
    assert ledger(database, "bt-a") == recorded

    second = backtest(octobot_slice, "--book", "bt-a", "--reset")
    assert second.exit_code == 0, second.output
    assert json.loads(second.output) == summary
    replayed = ledger(database, "bt-a")
    for table in recorded:
        assert len(replayed[table]) == len(recorded[table]), table
        for a, b in zip(recorded[table], replayed[table]):
            assert a == b, table
    # The live book was never touched.
    assert ledger(database, "main") == {table: [] for table in recorded}
    with session_factory(database)() as session:
        assert session.get(BookRow, "main") is None


def test_the_backtest_refuses_the_live_book(database: str, octobot_slice: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    refused = backtest(octobot_slice, "--book", "main")
    assert refused.exit_code == 2
    assert "is the live book" in refused.output
    monkeypatch.setenv("TRADEPIPE_BOOK", "paper")
    assert "is the live book" in backtest(octobot_slice, "--book", "paper").output
    with session_factory(database)() as session:
        assert session.scalars(select(TradingCycleRow)).first() is None


def test_the_unfinished_last_candle_is_not_traded_unless_asked(
    database: str, octobot_slice: Path, tmp_path: Path
) -> None:
    # The newest WARMUP + 3 rows: 2 closed bars to trade and the candle that was still forming.
    short = tmp_path / "short"
    short.mkdir()
    for name in FILES:
        header, *lines = (octobot_slice / name).read_text().splitlines()
        (short / name).write_text("\n".join([header, *lines[-(WARMUP + 3):]]) + "\n")
    bars = timestamps(short)
    unfinished = bars[-1]

    default = backtest(short, "--book", "bt-default")
    assert default.exit_code == 0, default.output
    traded = [datetime_to_ms(c["bar_ts"]) for c in ledger(database, "bt-default")["trading_cycles"]]
    assert traded == bars[WARMUP:-1] and unfinished not in traded
    with session_factory(database)() as session:
        assert session.scalars(select(MarketBarRow).where(MarketBarRow.ts == ms_to_datetime(unfinished))).first() is None
        assert session.scalars(select(MarketBarRow).where(MarketBarRow.ts == ms_to_datetime(bars[-2]))).first() is not None
        decided = {datetime_to_ms(s.bar_ts) for s in session.scalars(select(SignalRow).where(SignalRow.book == "bt-default"))}
    assert unfinished not in decided
    assert json.loads(default.output)["last_bar"] == "2018-06-18T20:00:00+00:00"

    kept = backtest(short, "--book", "bt-keep", "--keep-last-bar")
    assert kept.exit_code == 0, kept.output
    traded_all = [datetime_to_ms(c["bar_ts"]) for c in ledger(database, "bt-keep")["trading_cycles"]]
    assert traded_all == bars[WARMUP:] and traded_all[-1] == unfinished
    assert json.loads(kept.output)["last_bar"] == "2018-06-18T21:00:00+00:00"


def test_a_reset_never_deletes_a_book_with_live_cycles_unless_that_book_is_named(database: str, octobot_slice: Path) -> None:
    from tradepipe.config.settings import load_settings
    from tradepipe.trading.runner import TradingRunner

    bars = timestamps(octobot_slice)
    settings = load_settings(market_source="replay", replay_dir=str(octobot_slice))
    live = TradingRunner(settings, book="livebook", redis_url=None)
    for bar in bars[WARMUP : WARMUP + 3]:  # three cycles as the live loop records them (a Dagster run id)
        assert live.run_cycle(bar, run_id="0f6c2a4e-live-run").status == "traded"
    before = ledger(database, "livebook")
    assert len(before["trading_cycles"]) == 3

    for args in (["--reset"], [], ["--reset", "--reset-live-book", "otherbook"], ["--reset-live-book", "livebook "]):
        refused = backtest(octobot_slice, "--book", "livebook", *args)
        assert refused.exit_code == 2, (args, refused.output)
        assert refused.output.count("\n") == 1 and refused.output.startswith("backtest refused: ")
        assert ledger(database, "livebook") == before, args  # not a row deleted
    said = backtest(octobot_slice, "--book", "livebook", "--reset").output
    assert "book 'livebook' holds 3 live (non-backtest) cycles" in said and "--reset-live-book livebook" in said
    assert "names 'otherbook', not the book 'livebook'" in backtest(octobot_slice, "--book", "livebook", "--reset-live-book", "otherbook").output

    # Named explicitly: the live history goes and the backtest takes the book.
    replaced = backtest(octobot_slice, "--book", "livebook", "--reset-live-book", "livebook")
    assert replaced.exit_code == 0, replaced.output
    with session_factory(database)() as session:
        run_ids = {c.run_id for c in session.scalars(select(TradingCycleRow).where(TradingCycleRow.book == "livebook"))}
    assert run_ids == {"backtest:livebook"}
    # A book holding only a backtest is replaced with --reset alone, as before.
    again = backtest(octobot_slice, "--book", "livebook", "--reset")
    assert again.exit_code == 0, again.output
