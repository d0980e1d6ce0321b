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


# --- keys, bounds, the replay folder and the names in the environment --------------------------------


@pytest.mark.parametrize(
    ("keys", "named"),
    [
        ({}, "TRADEPIPE_EXCHANGE_API_KEY and TRADEPIPE_EXCHANGE_SECRET"),
        ({"exchange_api_key": "k-123"}, "TRADEPIPE_EXCHANGE_SECRET"),
        ({"exchange_api_key": " ", "exchange_secret": "s-456"}, "TRADEPIPE_EXCHANGE_API_KEY"),
    ],
)
def test_the_ccxt_broker_without_keys_is_refused_at_start(keys: dict[str, str], named: str) -> None:
    line = _problem(broker="ccxt", market_source="ccxt", **keys)
    assert line == f"{named} must be set with TRADEPIPE_BROKER=ccxt: every order is signed with the exchange keys"
    check_settings(load_settings(broker="ccxt", market_source="ccxt", exchange_api_key="k-123", exchange_secret="s-456"))


def test_a_maximum_weight_no_weight_set_can_meet_is_refused_when_given() -> None:
    assert _problem(max_weight=0.1) == (
        "TRADEPIPE_MAX_WEIGHT=0.1 x 5 agents (TRADEPIPE_AGENTS) = 0.5 < 1: no weight set summing to 1 fits under it; "
        "raise it to at least 0.2, enable more agents, or unset it"
    )
    check_settings(load_settings(max_weight=0.2))
    # unset, the default 0.40 adapts to two agents (each may hold 1/2: core/weighting)
    check_settings(load_settings(agents="momentum,trend"))


def test_a_missing_replay_folder_is_blamed_on_the_replay_dir_not_the_timeframe(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder"
    assert _problem(market_source="replay", replay_dir=missing, timeframe="1h") == (
        f"TRADEPIPE_REPLAY_DIR={str(missing)!r}: no such folder (expected a folder of BASE_QUOTE-TIMEFRAME.csv|.parquet candles)"
    )
    (tmp_path / "empty").mkdir()
    assert _problem(market_source="replay", replay_dir=tmp_path / "empty") == (
        f"TRADEPIPE_REPLAY_DIR={str(tmp_path / 'empty')!r}: the folder holds no BASE_QUOTE-TIMEFRAME.csv|.parquet candle files"
    )


@pytest.mark.parametrize(
    ("name", "nearest"),
    [
        ("TRADEPIPE_LIVEE", "TRADEPIPE_LIVE"),
        ("TRADEPIPE_STOPLOSS", "TRADEPIPE_STOP_LOSS_FRACTION"),
        ("TRADEPIPE_MAX_POSITION", "TRADEPIPE_MAX_POSITION_FRACTION"),
        ("tradepipe_replaydir", "TRADEPIPE_REPLAY_DIR"),
    ],
)
def test_an_unknown_variable_is_refused_with_the_nearest_known_name(
    name: str, nearest: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(name, "1")
    assert _problem() == f"{name}: tradepipe reads no such variable (did you mean {nearest}?); unset or rename it"


def test_an_unknown_variable_in_dotenv_is_refused_too(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TRADEPIPE_FEE_BPS=2\nTRADEPIPE_LIVEE=1\n")  # the fixture chdir'd to tmp_path
    assert _problem() == "TRADEPIPE_LIVEE: tradepipe reads no such variable (did you mean TRADEPIPE_LIVE?); unset or rename it"


def test_variables_read_outside_the_settings_are_known(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every TRADEPIPE_* name the Makefile, deploy/ and the test suite read passes the start."""
    repo = Path(__file__).resolve().parents[1]
    import re

    texts = [(repo / "Makefile").read_text(), (repo / "tests" / "conftest.py").read_text()]
    texts += [path.read_text() for path in (repo / "deploy").iterdir()]
    texts += [path.read_text() for path in (repo / "tradepipe").rglob("*.py")]
    used = {name for text in texts for name in re.findall(r"\bTRADEPIPE_[A-Z0-9_]*[A-Z0-9]\b", text)}
    assert {"TRADEPIPE_HOME", "TRADEPIPE_WEBSERVER_HOST", "TRADEPIPE_CODE_SERVER_PORT", "TRADEPIPE_TEST_SHARED_DATA"} <= used
    for name in used:
        monkeypatch.setenv(name, "0")
    from tradepipe.config.preflight import _given_names, unknown_variables

    assert unknown_variables(_given_names()) == []


def test_the_cli_and_the_code_location_stop_on_a_misspelt_safety_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEPIPE_LIVEE", "1")
    result = CliRunner().invoke(cli, ["status"])
    assert result.exit_code == 2
    assert "TRADEPIPE_LIVEE: tradepipe reads no such variable (did you mean TRADEPIPE_LIVE?)" in result.output

    env = {**os.environ, "TRADEPIPE_HOME": str(tmp_path)}
    completed = subprocess.run([sys.executable, "-c", "import tradepipe.definitions"], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert completed.returncode != 0
    assert "TRADEPIPE_LIVEE: tradepipe reads no such variable (did you mean TRADEPIPE_LIVE?)" in completed.stderr
