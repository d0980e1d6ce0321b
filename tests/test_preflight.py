"""Fail fast: an unknown agent, exchange or timeframe stops the code location and every CLI command
with one line naming the variable and the accepted values."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tradepipe.cli.main import main as cli
from tradepipe.config.preflight import check_settings
from tradepipe.config.settings import SettingsError, load_settings


def _problem(**settings: object) -> str:
    with pytest.raises(SettingsError) as caught:
        check_settings(load_settings(**settings))
    (line,) = str(caught.value).splitlines()[1:]
    return line.strip()


def test_an_unknown_agent_names_the_variable_and_the_known_agents() -> None:
    assert _problem(agents="momentum,astrology") == (
        "TRADEPIPE_AGENTS: unknown agent(s) 'astrology'; accepted: breakout, mean_reversion, momentum, sentiment, trend"
    )


def test_an_unknown_exchange_names_the_variable_a_close_match_and_ccxts_exchanges() -> None:
    import ccxt

    line = _problem(market_source="ccxt", exchange="binanse")
    assert line.startswith("TRADEPIPE_EXCHANGE='binanse': ccxt ")
    assert "did you mean binance" in line
    assert line.endswith("accepted: " + ", ".join(ccxt.exchanges))


def test_an_exchange_is_not_checked_when_nothing_uses_ccxt() -> None:
    check_settings(load_settings(exchange="binanse"))  # paper on synthetic prices: ccxt is never loaded


def test_a_timeframe_the_exchange_does_not_serve_lists_the_ones_it_does() -> None:
    line = _problem(market_source="ccxt", exchange="binance", timeframe="7m")
    assert line.startswith("TRADEPIPE_TIMEFRAME='7m': ccxt's binance has no 7m bars; accepted: ")
    assert "1m, 3m, 5m, 15m, 30m, 1h" in line


def test_a_timeframe_the_replay_folder_has_no_files_for_lists_the_ones_it_has(tmp_path: Path) -> None:
    for name in ("BTC_USDT-4h.csv", "ETH_USDT-4h.parquet", "BTC_USDT-1d.csv", "notes.txt"):
        (tmp_path / name).write_text("")
    assert _problem(market_source="replay", replay_dir=tmp_path, timeframe="1h") == (
        f"TRADEPIPE_TIMEFRAME='1h': the replay folder {tmp_path} has no 1h bars; accepted: 4h, 1d"
    )
    check_settings(load_settings(market_source="replay", replay_dir=tmp_path, timeframe="4h"))


@pytest.mark.parametrize("command", [["status"], ["db", "upgrade"], ["weights", "show"], ["risk", "reset"]])
def test_every_cli_command_stops_with_the_one_line(command: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEPIPE_AGENTS", "momentum,astrology")
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 2
    assert "TRADEPIPE_AGENTS: unknown agent(s) 'astrology'; accepted: " in result.output


def test_the_code_location_does_not_load_with_an_unknown_agent(tmp_path: Path) -> None:
    env = {**os.environ, "TRADEPIPE_AGENTS": "momentum,astrology", "TRADEPIPE_HOME": str(tmp_path)}
    completed = subprocess.run([sys.executable, "-c", "import tradepipe.definitions"], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert completed.returncode != 0
    assert "TRADEPIPE_AGENTS: unknown agent(s) 'astrology'; accepted: breakout" in completed.stderr
