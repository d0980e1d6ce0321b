"""Bad input to a walk-forward: clear one-line refusals, recorded skips and kept weights, and an interrupted
run that resumes to the same result and never leaves an old or partial summary behind."""

from __future__ import annotations

import json
import pickle
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from tradepipe.cli.main import main as cli
from tradepipe.config.settings import load_settings
from tradepipe.research.data import load_market
from tradepipe.research.engine import PolicyDecision, config_from_settings, default_strategies, live_weight_policy, run_walk_forward
from tradepipe.research.run import WalkForwardRequest, run_request
from tests.walkforward.conftest import write_slice

ROWS = 24 * 12 + 60  # twelve days after the warm-up


@pytest.fixture(scope="module")
def candles(cdd_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_slice(cdd_dir, tmp_path_factory.mktemp("bad_input"), 16_000, ROWS)


def walkforward(data: Path, *args: str):
    return CliRunner().invoke(cli, ["walkforward", "--data", str(data), "--symbols", "BTC/USDT,ETH/USDT", "--quiet", "--bootstrap-resamples", "100", *args])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "2030-01-01"], "no bars to trade between 2030-01-01T00:00Z"),
        (["--start", "2019-10-01", "--end", "2019-09-01"], "is before start"),
        (["--start", "yesterday"], "cannot read 'yesterday' as an ISO date"),
        (["--methods", "max_sharpe,best_guess"], "unknown method(s) best_guess"),
        (["--fee-bps", "-1"], "fee-bps must be a number >= 0"),
        (["--symbols", "XRP/USDT"], "no replay file"),
        (["--window-days", "0"], "window must be at least 1 day"),
    ],
)
def test_refusals_are_one_clear_line(candles: Path, args: list[str], message: str) -> None:
    result = walkforward(candles, "--name", "bad", *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and result.stderr.startswith("walkforward refused: ") and result.stderr.count("\n") == 1


def test_different_coverage_and_a_defective_bar_are_recorded(candles: Path, tmp_path: Path) -> None:
    def edit(name: str, lines: list[str]) -> list[str]:
        if name.startswith("ETH"):
            return lines[100:]  # ETH starts 100 hours later, after the warm-up
        cells = lines[100].split(",")
        cells[4] = "-5"  # BTC: a negative low
        return lines[:100] + [",".join(cells)] + lines[101:]

    data = write_slice(candles, tmp_path / "edited", 0, ROWS, edit)
    result = walkforward(data, "--name", "coverage", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert any(note.startswith("ETH/USDT: 100 of") and "skipped at those bars" in note for note in summary["notes"])
    eth, btc = summary["skipped"]["ETH/USDT"], summary["skipped"]["BTC/USDT"]
    assert eth["bars"] == 100 - 59 and "market data: no 1h bars closed by" in eth["reasons"][0]
    assert btc["bars"] == 200 and "non_positive_price" in btc["reasons"][0]  # every window holding the bad bar
    assert summary["strategies"]["equal_weight"]["fees"] > 0  # the rest traded


def test_a_method_failing_on_a_day_keeps_the_previous_weights(candles: Path) -> None:
    settings = load_settings(market_source="replay", replay_dir=candles, timeframe="1h", symbols="BTC/USDT,ETH/USDT")
    # A 5-day window holds no 14 days of daily returns: per-bar figures (min_metric_days=0), so max_sharpe decides.
    config = config_from_settings(
        settings, window_days=5, min_sharpe=-100.0, min_signals=0, max_weight=1.0, min_weight=0.0, min_metric_days=0
    )
    market = load_market(candles, config.symbols, "1h")
    live = live_weight_policy(config)
    failing_day: list[int] = []

    def policy(day, current, method) -> PolicyDecision:
        if len(failing_day) < 1 and day.day_ms > int(market.timeline[0]) + 5 * 86_400_000:
            failing_day.append(day.day_ms)
            raise RuntimeError("solver exploded")
        return live(day, current, method)

    run = run_walk_forward(market, config, default_strategies(config, ["max_sharpe"])[:1], weight_policy=policy)
    decisions = run.books["adaptive:max_sharpe"].decisions
    failed = [i for i, d in enumerate(decisions) if d.day_ms == failing_day[0]]
    assert failed, "the failing day has a recorded decision"
    i = failed[0]
    assert decisions[i].reason == "kept previous weights: max_sharpe failed: RuntimeError: solver exploded"
    assert decisions[i].weights == decisions[i - 1].weights and not decisions[i].updated
    assert any(d.updated for d in decisions[i + 1 :]), "later days decide again"


def test_an_interrupted_run_resumes_to_the_same_result(candles: Path, tmp_path: Path) -> None:
    settings = load_settings(timeframe="1h", symbols="BTC/USDT,ETH/USDT", home=tmp_path / "home")
    request = WalkForwardRequest(data_dir=candles, name="resumable", window_days=5, resamples=100)
    complete = run_request(settings, request)

    def interrupt(progress) -> None:
        if progress.bars_done >= 150:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_request(settings, request, progress=interrupt, progress_every_s=0)
    directory = complete.directory
    assert not (directory / "summary.json").exists() and not (directory / "report.html").exists()  # never the old result
    status = json.loads((directory / "run.json").read_text())
    assert status["status"] == "interrupted" and status["resume"] is True

    resumed = run_request(settings, WalkForwardRequest(data_dir=candles, name="resumable", window_days=5, resamples=100, resume=True))
    assert resumed.resumed_from_bar >= 150
    for key in ("strategies", "comparisons", "decisions", "skipped"):
        assert resumed.summary[key] == complete.summary[key]
    assert resumed.results == complete.results  # the fills before the interruption are in the tables
    assert not (directory / "checkpoint.pkl").exists()


def test_resume_starts_over_from_a_checkpoint_whose_books_kept_no_fills(candles: Path, tmp_path: Path) -> None:
    settings = load_settings(timeframe="1h", symbols="BTC/USDT,ETH/USDT", home=tmp_path / "home")
    request = WalkForwardRequest(data_dir=candles, name="older", window_days=5, resamples=100, include_agents=False)
    complete = run_request(settings, request)

    def interrupt(progress) -> None:
        if progress.bars_done >= 150:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_request(settings, request, progress=interrupt, progress_every_s=0)
    checkpoint = complete.directory / "checkpoint.pkl"
    saved = pickle.loads(checkpoint.read_bytes())
    for book in saved["state"]["books"].values():  # as an earlier version of the engine saved its books
        del book.fill_log
    checkpoint.write_bytes(pickle.dumps(saved))

    resumed = run_request(settings, replace(request, resume=True))
    assert resumed.resumed_from_bar == 0
    assert resumed.results == complete.results and resumed.results["pairs"]["equal_weight"][-1]["trades"] > 0


def test_resume_ignores_a_checkpoint_of_other_inputs(candles: Path, tmp_path: Path) -> None:
    settings = load_settings(timeframe="1h", symbols="BTC/USDT,ETH/USDT", home=tmp_path / "home")

    def interrupt(progress) -> None:
        if progress.bars_done >= 100:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_request(settings, WalkForwardRequest(data_dir=candles, name="changed", fee_bps=None), progress=interrupt, progress_every_s=0)
    from decimal import Decimal

    other = run_request(settings, WalkForwardRequest(data_dir=candles, name="changed", fee_bps=Decimal(0), resume=True, resamples=100))
    assert other.resumed_from_bar == 0 and other.summary["strategies"]["equal_weight"]["fees"] == 0.0
