"""``tradepipe backtest`` / ``walkforward`` results tables on real candles, saved and read back by
``tradepipe results show`` and ``compare``; the tables add up to the ledger the backtest wrote."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.walkforward.conftest import write_slice
from tradepipe.cli.main import main as cli

OLD_BACKTEST_KEYS = {"book", "cycles", "first_bar", "last_bar", "starting_cash", "final_equity", "return_pct", "fills", "cycles_with_skipped_symbols"}


@pytest.fixture
def database(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("TRADEPIPE_SYMBOLS", "BTC/USDT,ETH/USDT")
    assert CliRunner().invoke(cli, ["db", "upgrade"]).exit_code == 0
    return sqlite_url


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_backtest_tables_add_up_to_its_ledger_and_are_read_back(database: str, cdd_dir: Path, tmp_path: Path) -> None:
    candles = write_slice(cdd_dir, tmp_path / "slice", 6_904 - 60, 24 * 10 + 60)  # 2018-05-29 .. 2018-06-10: trades close
    report = json.loads(run("backtest", "--replay-dir", str(candles), "--book", "bt", "--json", "--breakdown", "day"))
    trades = json.loads(run("trades", "--book", "bt", "--json"))

    assert OLD_BACKTEST_KEYS <= set(report)  # the old contract, keys added only
    results = report["results"]
    total = results["pairs"][-1]
    closed = [t for t in trades if t["status"] == "closed"]
    assert total["pair"] == "TOTAL" and total["trades"] == len(closed) > 0
    assert total["profit_quote"] == pytest.approx(sum(t["pnl"] for t in trades))
    assert total["fees_quote"] == pytest.approx(sum(t["fees"] for t in trades))
    assert sum(row["trades"] for row in results["exit_reasons"]) == len(closed)
    assert sum(row["open"] for row in results["exit_reasons"] if row["exit_reason"] == "expiry") == len(trades) - len(closed)
    summary = results["summary"]
    assert summary["final_equity_quote"] == pytest.approx(float(report["final_equity"]), abs=0.005)
    assert summary["total_return_pct"] == pytest.approx(report["return_pct"])
    assert summary["bars"] == report["cycles"]
    days = results["breakdown"]["rows"]
    assert sum(d["trades"] for d in days) == len(closed)
    assert sum(d["profit_quote"] for d in days) == pytest.approx(summary["profit_quote"])
    assert json.loads(Path(report["results_file"]).read_text()) == results

    shown = run("results", "show", "bt")
    assert "per pair" in shown and "exit reasons" in shown and "Sortino" in shown and "daily breakdown" in shown
    assert json.loads(run("results", "show", "backtest/bt", "--json")) == results

    walk = CliRunner().invoke(cli, ["walkforward", "--data", str(candles), "--name", "wf", "--timeframe", "1h", "--quiet",
                                    "--bootstrap-resamples", "100", "--no-agent-books", "--breakdown", "week"])
    assert walk.exit_code == 0, walk.output
    assert "equal_weight" in walk.stdout and "%" in walk.stdout and "weekly breakdown — equal_weight" in walk.stdout
    home = Path(os.environ["TRADEPIPE_HOME"])
    assert f"results: {home / 'results' / 'walkforward' / 'wf.json'}" in walk.stdout
    summary_json = json.loads((home / "walkforward" / "wf" / "summary.json").read_text())
    saved = json.loads(run("results", "show", "wf", "--json"))
    for key, figures in saved["strategies"].items():  # the same figures as summary.json, in percent
        assert figures["total_return_pct"] == pytest.approx(summary_json["strategies"][key]["total_return"] * 100)
        assert figures["cagr_pct"] == pytest.approx(summary_json["strategies"][key]["cagr"] * 100)
        assert figures["sharpe"] == pytest.approx(summary_json["strategies"][key]["sharpe"])

    compared = json.loads(run("results", "compare", "bt", "wf", "--json"))
    assert set(compared) == {"bt", *(f"wf:{k}" for k in saved["strategies"])}
    assert "bt " in run("results", "compare", "bt", "wf") and "wf:equal_weight" in run("results", "compare", "bt", "wf")

    missing = CliRunner().invoke(cli, ["results", "show", "nope"])
    assert missing.exit_code == 1 and missing.output.count("\n") == 1 and "no saved results 'nope'" in missing.output
