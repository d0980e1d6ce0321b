"""``tradepipe walkforward`` prints and writes the results tables per book, from the engine's fills: on real
candles its equal-weight book's per-pair and exit-reason tables are the ones ``tradepipe backtest`` gives
for the same bars and weights, and both agree with a computation from the fills the backtest recorded
(cash flows per round trip, read straight from the ledger's tables)."""

from __future__ import annotations

import json
import os
import sqlite3
from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.walkforward.conftest import write_slice
from tradepipe.cli.main import main as cli

EQUAL = "momentum=0.2,trend=0.2,mean_reversion=0.2,breakout=0.2,sentiment=0.2"  # equal_weight's 1/5 each


@pytest.fixture
def database(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("TRADEPIPE_SYMBOLS", "BTC/USDT,ETH/USDT")
    monkeypatch.setenv("TRADEPIPE_AGENT_WEIGHTS", EQUAL)
    assert CliRunner().invoke(cli, ["db", "upgrade"]).exit_code == 0
    return sqlite_url


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000) if "+" in text else int(datetime.fromisoformat(text + "+00:00").timestamp() * 1000)


def trips_from_ledger(path: str, book: str) -> dict[str, list[dict[str, Any]]]:
    """Per symbol, the closed round trips of a long-only book from its fills in record order: a trip opens
    with a buy from flat and closes when the quantity is back to 0; its P&L is the cash it made (sells'
    notional minus buys' notional minus every fee); its exit reason is read from the closing fill's order."""
    rows = sqlite3.connect(path).execute(
        "SELECT f.symbol, f.side, f.quantity, f.notional, f.fee, f.ts, o.reason, o.quantity, o.requested_quantity "
        "FROM fills f JOIN orders o ON o.id = f.order_id WHERE f.book = ? ORDER BY f.id", (book,)
    ).fetchall()
    held: dict[str, Decimal] = defaultdict(Decimal)
    current: dict[str, dict[str, Any]] = {}
    closed: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for symbol, side, quantity, notional, fee, ts, reason, sent, requested in rows:
        quantity, notional, fee = Decimal(str(quantity)), Decimal(str(notional)), Decimal(str(fee))
        assert side == "buy" or held[symbol] >= quantity, "long-only: a sell never goes short"
        trip = current.setdefault(symbol, {"entry_ms": _ms(ts), "cash": Decimal(0), "fees": Decimal(0)})
        trip["cash"] += (notional if side == "sell" else -notional) - fee
        trip["fees"] += fee
        held[symbol] += quantity if side == "buy" else -quantity
        if held[symbol] == 0:
            cut = Decimal(str(sent)) < Decimal(str(requested)) * Decimal("0.99")
            trip.update(exit_ms=_ms(ts), reason="stop_loss" if reason.startswith("stop-loss") else "risk_cap" if cut else "signal")
            closed[symbol].append(current.pop(symbol))
    assert not current, "this slice ends flat in both symbols, so every fill belongs to a closed trip"
    return closed


def test_walkforward_equal_weight_tables_are_the_backtests_and_add_up_to_the_fills(database: str, cdd_dir: Path, tmp_path: Path) -> None:
    # 2018-05-29 .. 2018-06-10 after the warm-up: trades close in both symbols, some by the stop-loss
    candles = write_slice(cdd_dir, tmp_path / "slice", 6_904 - 60, 24 * 12 + 60)
    backtest = json.loads(run("backtest", "--replay-dir", str(candles), "--book", "bt", "--json", "--breakdown", "day"))["results"]
    walk = CliRunner().invoke(cli, ["walkforward", "--data", str(candles), "--name", "wf", "--timeframe", "1h", "--quiet",
                                    "--bootstrap-resamples", "100", "--no-agent-books", "--breakdown", "day"])
    assert walk.exit_code == 0, walk.output
    home = Path(os.environ["TRADEPIPE_HOME"])
    beside_summary = json.loads((home / "walkforward" / "wf" / "results.json").read_text())
    assert json.loads((home / "results" / "walkforward" / "wf.json").read_text()) == beside_summary
    assert json.loads(run("results", "show", "walkforward/wf", "--json")) == beside_summary

    # the same engine, bars and weights: the same tables
    assert beside_summary["pairs"]["equal_weight"] == backtest["pairs"]
    assert beside_summary["exit_reasons"]["equal_weight"] == backtest["exit_reasons"]
    for walked_day, tested_day in zip(beside_summary["breakdown"]["rows"]["equal_weight"], backtest["breakdown"]["rows"], strict=True):
        assert walked_day.pop("period") == tested_day.pop("period")
        assert walked_day == pytest.approx(tested_day, rel=1e-9)
    walked, tested = beside_summary["strategies"]["equal_weight"], backtest["summary"]
    for key in ("bars", "trades", "win_rate_pct", "first_bar", "last_bar", "peak", "trough", "recovered"):
        assert walked[key] == tested[key], key
    for key in ("final_equity_quote", "total_return_pct", "cagr_pct", "sharpe", "sortino", "calmar", "max_drawdown_pct",
                "turnover_per_year", "fees_quote"):
        assert walked[key] == pytest.approx(tested[key], rel=1e-9), key
    # exposure is read from the walk-forward's round trips, the backtest's from its snapshots' positions value
    snapshots = sqlite3.connect(database.removeprefix("sqlite:///")).execute(
        "SELECT positions_value FROM portfolio_snapshots WHERE book = 'bt'").fetchall()
    assert walked["exposure_pct"] == pytest.approx(100 * sum(Decimal(str(v)) != 0 for (v,) in snapshots) / len(snapshots))
    assert 0 < walked["exposure_pct"] < 100

    # the tables against the fills, computed without the ledger's accounting
    trips = trips_from_ledger(database.removeprefix("sqlite:///"), "bt")
    pairs = {row["pair"]: row for row in beside_summary["pairs"]["equal_weight"]}
    assert set(pairs) == {*trips, "TOTAL"} and len(trips) == 2
    every = [t for symbol_trips in trips.values() for t in symbol_trips]
    for symbol, row in [*((s, pairs[s]) for s in trips), ("TOTAL", pairs["TOTAL"])]:
        mine = every if symbol == "TOTAL" else trips[symbol]
        assert row["trades"] == len(mine) and row["open"] == 0
        assert row["wins"] == sum(t["cash"] > 0 for t in mine) and row["losses"] == sum(t["cash"] < 0 for t in mine)
        assert row["profit_quote"] == pytest.approx(float(sum(t["cash"] for t in mine)), abs=1e-9)
        assert row["profit_pct"] == pytest.approx(float(sum(t["cash"] for t in mine)) / 10_000 * 100, abs=1e-9)
        assert row["fees_quote"] == pytest.approx(float(sum(t["fees"] for t in mine)), abs=1e-9)
        assert row["avg_duration_seconds"] == pytest.approx(sum(t["exit_ms"] - t["entry_ms"] for t in mine) / len(mine) / 1000)
    reasons = {row["exit_reason"]: row for row in beside_summary["exit_reasons"]["equal_weight"]}
    for reason in ("signal", "stop_loss", "risk_cap"):
        assert reasons[reason]["trades"] == sum(t["reason"] == reason for t in every), reason
        assert reasons[reason]["profit_quote"] == pytest.approx(float(sum(t["cash"] for t in every if t["reason"] == reason)), abs=1e-9)
    assert reasons["stop_loss"]["trades"] > 0 and reasons["signal"]["trades"] > 0
    assert walked["fees_quote"] == pytest.approx(float(sum(t["fees"] for t in every)), abs=1e-9)
    days = beside_summary["breakdown"]["rows"]["equal_weight"]
    assert sum(day["trades"] for day in days) == len(every)

    # printed per book, within 120 columns (the verdict lines wrapped)
    out = walk.stdout
    for title in ("== equal_weight:", "equal_weight — per pair", "equal_weight — exit reasons", "== adaptive:", "daily breakdown — equal_weight"):
        assert title in out, title
    tables = out.split("\nresults: ")[0]  # the file lines after it are as long as TRADEPIPE_HOME
    assert [line for line in tables.splitlines() if len(line) > 120] == []
    shown = run("results", "show", "wf")
    assert "equal_weight — per pair" in shown and "stop_loss" in shown
    compared = json.loads(run("results", "compare", "bt", "wf", "--json"))
    assert compared["wf:equal_weight"]["trades"] == compared["bt"]["trades"] == len(every)
