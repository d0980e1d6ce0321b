"""``tradepipe backtest --start/--end`` trades only the bars in the range (quietly when no terminal watches)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tradepipe.cli.main import main as cli
from tests.walkforward.conftest import write_slice


@pytest.fixture
def database(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("TRADEPIPE_SYMBOLS", "BTC/USDT,ETH/USDT")
    assert CliRunner().invoke(cli, ["db", "upgrade"]).exit_code == 0
    return sqlite_url


def test_backtest_trades_the_range(database: str, cdd_dir: Path, tmp_path: Path) -> None:
    candles = write_slice(cdd_dir, tmp_path / "slice", 20_000, 200)  # 2019-11-28 .. 2019-12-06
    result = CliRunner().invoke(
        cli, ["backtest", "--replay-dir", str(candles), "--book", "bt-range", "--start", "2019-12-02T00:00Z", "--end", "2019-12-02"]
    )
    assert result.exit_code == 0, result.output
    assert "backtest bt-range: 24 bars 2019-12-02T00:00:00+00:00 .. 2019-12-02T23:00:00+00:00" in result.stdout
    assert result.stderr == ""  # no terminal here: no progress (tests/test_cli_progress.py draws it in one)
    quiet = CliRunner().invoke(cli, ["backtest", "--replay-dir", str(candles), "--json", "--book", "bt-json", "--end", "2019-12-01T05:00Z"])
    summary = json.loads(quiet.output)  # --json: nothing but the summary
    assert summary["last_bar"].startswith("2019-12-01T05:00")


def test_backtest_range_without_data_is_refused(database: str, cdd_dir: Path, tmp_path: Path) -> None:
    candles = write_slice(cdd_dir, tmp_path / "slice", 20_000, 200)
    result = CliRunner().invoke(cli, ["backtest", "--replay-dir", str(candles), "--book", "bt-none", "--start", "2025-01-01"])
    assert result.exit_code == 2
    assert "no bars to trade in the chosen range" in result.stderr and "the files cover 2019-11-28T16:00Z" in result.stderr
