"""The Great Expectations bar suite and ``tradepipe data check``: the same defects as the plain rules,
and the JSON contract external scripts rely on."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from tradepipe.checks.candle_folder import check_candle_folder
from tradepipe.cli.main import main

NOW = 1_800_000_000_000
H = 3_600_000


def _write(frame: pd.DataFrame, path: Path) -> None:
    frame.assign(timestamp=frame["timestamp"].astype("Int64")).to_csv(path, index=False)


@pytest.fixture
def corrupted_folder(shared_data: Path, tmp_path: Path) -> Path:
    """The 2018 1h files, with ETH carrying a NaN close, a negative low, high below low, a duplicate, two rows
    swapped, a misaligned bar and a bar from the future; XRP unreadable (no close column)."""
    folder = tmp_path / "candles"
    folder.mkdir()
    source = shared_data / "ohlcv/binance_2018_octobot"
    for name in ("BTC_USDT-1h.csv", "NEO_USDT-1h.csv"):
        shutil.copy(source / name, folder / name)
    eth = pd.read_csv(source / "ETH_USDT-1h.csv").drop(columns=["datetime"])
    eth.loc[100, "close"] = np.nan
    eth.loc[200, "low"] = -1.0
    eth.loc[300, ["high", "low"]] = eth.loc[300, ["low", "high"]].to_numpy()
    eth.iloc[[600, 601]] = eth.iloc[[601, 600]].to_numpy()
    eth.loc[700, "timestamp"] += 60_000
    eth.loc[len(eth)] = [NOW + 5 * H, *eth.iloc[-1, 1:].to_numpy()]
    eth = pd.concat([eth.iloc[:401], eth.iloc[[400]], eth.iloc[401:]], ignore_index=True)
    _write(eth, folder / "ETH_USDT-1h.csv")
    pd.read_csv(source / "XRP_USDT-1h.csv").drop(columns=["close"]).to_csv(folder / "XRP_USDT-1h.csv", index=False)
    return folder


FIRST_ETH_BAR = 1_525_759_200_000  # 2018-05-08 06:00 UTC; bar k opens k hours later
EXPECTED_ETH_ERRORS = {
    ("null_value", FIRST_ETH_BAR + 100 * H),
    ("non_positive_price", FIRST_ETH_BAR + 200 * H),
    ("high_low_inconsistent", FIRST_ETH_BAR + 300 * H),
    ("duplicate_timestamp", FIRST_ETH_BAR + 400 * H),  # two rows, one defect
    ("timestamp_not_increasing", FIRST_ETH_BAR + 600 * H),  # now after bar 601
    ("misaligned_timestamp", FIRST_ETH_BAR + 700 * H + 60_000),  # one minute late
    ("future_timestamp", NOW + 5 * H),
}


@pytest.mark.shared_data
def test_great_expectations_and_the_plain_rules_find_the_same_defects(shared_data: Path, corrupted_folder: Path) -> None:
    for folder in (corrupted_folder, shared_data / "ohlcv/binance_cdd_2017_2021", shared_data / "ohlcv/binance_2024_octobot"):
        suite = check_candle_folder(folder, as_of_ms=NOW)
        plain = check_candle_folder(folder, as_of_ms=NOW, engine="plain")
        assert set(suite.defects) == set(plain.defects), folder
        assert len(suite.defects) == len(plain.defects)
        assert suite.defects or folder.name == "binance_2024_octobot"


@pytest.mark.shared_data
def test_each_corruption_is_reported_once_with_its_symbol_and_bar(corrupted_folder: Path) -> None:
    report = check_candle_folder(corrupted_folder, as_of_ms=NOW)
    eth_errors = {(d.rule, d.timestamp) for d in report.defects if d.symbol == "ETH/USDT" and d.severity == "ERROR"}
    assert eth_errors == EXPECTED_ETH_ERRORS
    (unreadable,) = [d for d in report.defects if d.symbol == "XRP/USDT"]
    assert unreadable.rule == "unreadable_file" and "lacks column(s) close" in unreadable.detail
    assert {d.symbol for d in report.defects if d.severity == "ERROR"} == {"ETH/USDT", "XRP/USDT"}


@pytest.mark.shared_data
def test_data_check_json_is_the_documented_contract(corrupted_folder: Path) -> None:
    result = CliRunner().invoke(main, ["data", "check", str(corrupted_folder), "--timeframe", "1h", "--json"])
    assert result.exit_code == 0, result.output
    defects = json.loads(result.output)
    assert isinstance(defects, list) and defects
    for defect in defects:
        assert set(defect) == {"symbol", "timestamp", "rule", "severity", "detail"}
        assert defect["severity"] in ("ERROR", "WARN") and "/" in defect["symbol"]
        assert defect["timestamp"] is None or isinstance(defect["timestamp"], int)
    # Future bar: the real clock is earlier than NOW (2027), so it is "from the future" here too.
    assert {(d["rule"], d["timestamp"]) for d in defects if d["symbol"] == "ETH/USDT" and d["severity"] == "ERROR"} >= (
        EXPECTED_ETH_ERRORS - {("future_timestamp", NOW + 5 * H)}
    )
    # Other timeframes are left out; the table form says what it checked.
    table = CliRunner().invoke(main, ["data", "check", str(corrupted_folder)])
    assert table.exit_code == 0 and "4 file(s)" in table.output and "ETH/USDT" in table.output


@pytest.mark.shared_data
def test_data_check_on_clean_files_exits_0_with_warnings_only(shared_data: Path) -> None:
    result = CliRunner().invoke(main, ["data", "check", str(shared_data / "ohlcv/binance_2024_octobot"), "--json"])
    assert result.exit_code == 0 and json.loads(result.output) == []


def test_an_unreadable_folder_exits_2_with_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["data", "check", str(tmp_path / "missing")])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "not a readable folder" in result.output
    bad = CliRunner().invoke(main, ["data", "check", str(tmp_path), "--timeframe", "7x"])
    assert bad.exit_code == 2 and "unknown timeframe" in bad.output
