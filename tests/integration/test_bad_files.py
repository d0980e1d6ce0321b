"""Bad candle files and missing state: one clear line per symbol or command, and the other symbols go on.

Every file is a real tiny file written by the test: a good one (hourly bars of a smooth random walk),
one lacking columns, an empty one, a header only; and a good one with a row whose year is mistyped
into the future, played on the wall clock.
"""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
from click.testing import CliRunner

from tradepipe.adapters.market import ReplayMarket
from tradepipe.cli.main import main as cli

H = 3_600_000
FIRST = 1_525_759_200_000  # 2018-05-08 06:00 UTC
HEADER = "timestamp,open,high,low,close,volume"


def good_rows(bars: int, seed: int = 1) -> list[str]:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, bars)))
    rows = []
    for i, c in enumerate(close):
        o = close[i - 1] if i else c
        rows.append(f"{FIRST + i * H},{o:.4f},{max(o, c) * 1.002:.4f},{min(o, c) * 0.998:.4f},{c:.4f},{10 + i % 7}")
    return rows


@pytest.fixture
def candles(tmp_path: Path) -> Path:
    folder = tmp_path / "candles"
    folder.mkdir()
    (folder / "BTC_USDT-1h.csv").write_text("\n".join([HEADER, *good_rows(320)]) + "\n")
    (folder / "ETH_USDT-1h.csv").write_text("timestamp,open,high,low\n" + "\n".join(",".join(r.split(",")[:4]) for r in good_rows(320)) + "\n")
    (folder / "SOL_USDT-1h.csv").write_text("")
    (folder / "XRP_USDT-1h.csv").write_text(HEADER + "\n")
    return folder


def test_backtest_leaves_out_each_unreadable_file_in_one_line_and_trades_the_others(candles: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from tradepipe.adapters.db.engine import upgrade

    upgrade(sqlite_url)
    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", sqlite_url)
    result = CliRunner().invoke(cli, ["backtest", "--replay-dir", str(candles), "--symbols", "BTC/USDT,ETH/USDT,SOL/USDT,XRP/USDT", "--json"])

    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        f"backtest: ETH/USDT left out: {candles}/ETH_USDT-1h.csv lacks column(s) close, volume",
        f"backtest: SOL/USDT left out: cannot read {candles}/SOL_USDT-1h.csv: empty CSV",
        f"backtest: XRP/USDT left out: {candles}/XRP_USDT-1h.csv holds no rows (a header only)",
    ]
    summary = json.loads(result.stdout)
    # BTC's 320 rows less the unfinished last one, less the agents' warm-up: every remaining bar traded
    from tradepipe.core.agents import get_agents, max_history_needed
    from tradepipe.config.settings import DEFAULT_AGENTS

    assert summary["cycles"] == 319 - max_history_needed(get_agents(list(DEFAULT_AGENTS)))
    assert summary["cycles_with_skipped_symbols"] == 0  # the bad symbols are out of the book, not skipped each bar


def test_backtest_with_no_readable_file_is_refused_in_one_line(candles: Path) -> None:
    result = CliRunner().invoke(cli, ["backtest", "--replay-dir", str(candles), "--symbols", "SOL/USDT,XRP/USDT"])
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == "backtest refused: no symbol has a readable candle file"
    assert "Traceback" not in result.output


def test_walkforward_leaves_out_an_unreadable_symbol_and_says_so(candles: Path) -> None:
    from tradepipe.research.data import WalkForwardInputError, load_market

    market = load_market(candles, ["BTC/USDT", "XRP/USDT"], "1h")
    assert market.symbols == ("BTC/USDT",)
    assert f"XRP/USDT left out: {candles}/XRP_USDT-1h.csv holds no rows (a header only)" in market.notes
    with pytest.raises(WalkForwardInputError, match="lacks column"):
        load_market(candles, ["ETH/USDT"], "1h")


def test_data_check_reports_a_header_only_file(candles: Path) -> None:
    result = CliRunner().invoke(cli, ["data", "check", str(candles), "--json"])
    assert result.exit_code == 0
    unreadable = {d["symbol"]: d["detail"] for d in json.loads(result.stdout) if d["rule"] == "unreadable_file"}
    assert unreadable == {
        "ETH/USDT": f"{candles}/ETH_USDT-1h.csv lacks column(s) close, volume",
        "SOL/USDT": f"cannot read {candles}/SOL_USDT-1h.csv: empty CSV",
        "XRP/USDT": f"{candles}/XRP_USDT-1h.csv holds no rows (a header only)",
    }


def test_a_future_dated_row_is_left_out_of_a_wallclock_replay_not_the_symbol(tmp_path: Path) -> None:
    folder = tmp_path / "replay"
    folder.mkdir()
    rows = good_rows(300)
    now = 1_795_219_200_000  # 2026-11-21
    typo = rows[150].split(",")
    typo[0] = str(now + 30 * 24 * H)  # a mistyped date a month ahead of the clock, inside a 2018 recording
    (folder / "BTC_USDT-1h.csv").write_text("\n".join([HEADER, *rows[:150], ",".join(typo), *rows[150:]]) + "\n")
    market = ReplayMarket(folder, clock_ms=lambda: now)

    history = market.closed_bars("BTC/USDT", "1h", now + H, 200)

    # the bar the cycle at `now` expects; kept, the row stretched the file's span to its date, and every cycle
    # until then found the 2018 bar before it: "newest closed bar is 1527555600000, expected 1795219200000"
    assert history.last_timestamp == now
    assert market.warnings == [f"{folder}/BTC_USDT-1h.csv: left out 1 row(s) opening after the time the file is played at ({now} ms)"]
    # the file's 300 good rows, repeated end to end: consecutive hours, no jump to the mistyped date
    assert set(np.diff(history.timestamps).tolist()) == {H}
    kept = ReplayMarket(folder, clock_ms=lambda: now + 31 * 24 * H)  # played after that date, the row is in the past
    assert kept.warnings == [] and len(kept.timeline("BTC/USDT", "1h")) == 301


def test_project_report_on_a_home_without_a_ledger_fails_in_one_line(tmp_path: Path) -> None:
    from tradepipe.assets.reports import project_report
    from tradepipe.config.settings import load_settings
    from tradepipe.resources import build_resources

    missing = tmp_path / "home" / "tradepipe.sqlite"
    settings = load_settings(home=str(tmp_path / "home"), partitions_start="2026-03-01")
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [project_report], partition_key="2026-03-04-10:00", resources=build_resources(settings, "test"), instance=instance,
            raise_on_error=False,
        )
        assert not result.success
        (failure,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
        error = failure.step_failure_data.error
        assert error is not None
        assert error.message.strip().endswith(
            f"no ledger database at {missing}: run `tradepipe db upgrade` to create it (or set TRADEPIPE_DATABASE_URL)"
        )
        logs = " ".join(str(entry.user_message) + str(entry.dagster_event) for entry in instance.all_logs(result.run_id))
        assert "unable to open database file" not in logs
    assert not missing.exists()  # nothing created
