"""``tradepipe walkforward`` on a slice of real candles: summary.json has the Interface's layout and passes
its schema, report.html is self-contained, and the figures are the book's own."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tradepipe.cli.main import main as cli
from tradepipe.research.summary import FIGURES, SummaryInvalidError, validate_summary
from tests.walkforward.conftest import write_slice

AGENTS = ("momentum", "trend", "mean_reversion", "breakout", "sentiment")


@pytest.fixture(scope="module")
def candles(cdd_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 2019-05-25 .. 2019-06-16: 20 traded days, enough for daily decisions on a 5-day window
    return write_slice(cdd_dir, tmp_path_factory.mktemp("cli_slice"), 15_500, 24 * 20 + 60)


def _strict_json(text: str) -> dict:
    def refuse(constant: str) -> None:
        raise AssertionError(f"summary.json holds {constant}: not valid JSON")

    return json.loads(text, parse_constant=refuse)


def walkforward(candles: Path, *args: str):
    return CliRunner().invoke(cli, ["walkforward", "--data", str(candles), "--symbols", "BTC/USDT,ETH/USDT", "--timeframe", "1h", *args])


def test_summary_layout_schema_and_report(candles: Path, tmp_path: Path) -> None:
    result = walkforward(candles, "--name", "slice", "--methods", "max_sharpe,risk_parity", "--window-days", "5", "--bootstrap-resamples", "200")
    assert result.exit_code == 0, result.output
    assert "bars" not in result.stderr  # no terminal here: no progress (tests/test_cli_progress.py draws it in one)
    directory = tmp_path / "home" / "walkforward" / "slice"
    summary = _strict_json((directory / "summary.json").read_text())
    validate_summary(summary)

    expected = {"adaptive:max_sharpe", "adaptive:risk_parity", "equal_weight", "buy_and_hold", *(f"agent:{a}" for a in AGENTS)}
    assert set(summary["strategies"]) == expected
    for figures in summary["strategies"].values():
        assert tuple(figures) == FIGURES
    assert summary["strategies"]["agent:sentiment"]["sharpe"] is None  # no headline feed: it never voted
    assert summary["strategies"]["agent:sentiment"]["fees"] == 0.0
    assert set(summary["comparisons"]) == {"adaptive:max_sharpe", "adaptive:risk_parity"}
    for comparison in summary["comparisons"].values():
        assert set(comparison) >= {"sharpe_diff_vs_equal", "ci95", "verdict"}
        assert comparison["ci95"] is None or (len(comparison["ci95"]) == 2 and comparison["ci95"][0] <= comparison["ci95"][1])
    assert summary["data"]["bars"] == 24 * 20 and summary["data"]["symbols"] == ["BTC/USDT", "ETH/USDT"]
    assert summary["config"]["allow_short"] is False  # recorded spot candles: long-only, as tradepipe backtest
    decisions = summary["decisions"]["adaptive:max_sharpe"]
    assert len(decisions) == summary["data"]["days"] - 1  # one decision a day from the second day on
    changes = sum(d["changed"] for d in decisions)
    assert summary["strategies"]["adaptive:max_sharpe"]["weight_changes"] == changes
    hold = summary["strategies"]["buy_and_hold"]
    assert hold["weight_changes"] == 0 and hold["sharpe"] is not None and hold["gross_sharpe"] >= hold["sharpe"]
    equal = summary["strategies"]["equal_weight"]
    assert equal["fees"] > 0 and equal["gross_sharpe"] > equal["sharpe"]  # costs lower the net figure
    assert equal["turnover"] > 0 and equal["max_drawdown"] <= 0

    report = (directory / "report.html").read_text()
    assert report.count("<svg") >= 4  # equity, drawdowns, one weights chart per adaptive method
    assert not re.search(r"<script|<link|<img|https?://(?!www\.w3\.org)", report)
    assert "adaptive:max_sharpe" in report and "contains 0" in report or "excludes 0" in report
    assert json.loads((directory / "run.json").read_text())["status"] == "complete"


def test_default_method_is_the_one_adaptive_entry(candles: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEPIPE_OPTIMIZER_METHOD", "risk_parity")
    result = walkforward(candles, "--name", "default", "--end", "2019-06-12", "--json", "--quiet", "--bootstrap-resamples", "100", "--no-agent-books")
    assert result.exit_code == 0, result.output
    summary = _strict_json(result.stdout)
    assert [k for k in summary["strategies"] if k.startswith("adaptive:")] == ["adaptive:risk_parity"]
    assert summary["data"]["last_bar"] == "2019-06-12T23:00:00Z"
    assert set(summary["strategies"]) == {"adaptive:risk_parity", "equal_weight", "buy_and_hold"}


def test_the_schema_refuses_a_broken_summary() -> None:
    figures = dict.fromkeys(FIGURES, 0.0) | {"weight_changes": 0}
    summary = {
        "schema_version": 1, "name": "x", "status": "complete",
        "data": {"directory": "d", "symbols": ["BTC/USDT"], "timeframe": "1h", "first_bar": "a", "last_bar": "b", "bars": 1},
        "config": {"methods": [], "fee_bps": 10, "slippage_bps": 5, "window_days": 30},
        "strategies": {"equal_weight": figures, "buy_and_hold": figures},
        "comparisons": {},
    }
    validate_summary(summary)
    missing = {**summary, "strategies": {"equal_weight": {"sharpe": 1.0}, "buy_and_hold": figures}}
    with pytest.raises(SummaryInvalidError, match="strategies/equal_weight"):
        validate_summary(missing)
    with pytest.raises(SummaryInvalidError, match="adaptive"):
        validate_summary({**summary, "comparisons": {"adaptive:max_sharpe": {"sharpe_diff_vs_equal": 0.1, "ci95": [0.2]}}})


def test_figures_are_the_books_own(candles: Path) -> None:
    """Net return and fees in the summary are the engine book's, and the metric definitions are core.metrics'."""
    from decimal import Decimal

    from tradepipe.core.metrics import summarize
    from tradepipe.config.settings import load_settings
    from tradepipe.research.data import load_market
    from tradepipe.research.engine import config_from_settings, default_strategies, run_walk_forward
    from tradepipe.research.summary import build_summary

    settings = load_settings(market_source="replay", replay_dir=candles, timeframe="1h", symbols="BTC/USDT,ETH/USDT")
    config = config_from_settings(settings, window_days=5)
    market = load_market(candles, config.symbols, "1h")
    run = run_walk_forward(market, config, default_strategies(config, ["max_sharpe"])[1:2], end_ms=int(market.timeline[400]))
    summary = build_summary(run, name="t", data_dir=str(candles), methods=[], resamples=100)
    book = run.books["equal_weight"]
    equity = np.array(book.equity)
    returns = equity / np.concatenate(([10000.0], equity[:-1])) - 1
    figures = summary["strategies"]["equal_weight"]
    assert figures["total_return"] == pytest.approx(equity[-1] / 10000 - 1, rel=1e-9)
    assert figures["sharpe"] == pytest.approx(summarize(returns, 8760)["sharpe"], rel=1e-12)
    assert figures["fees"] == float(book.portfolio.fees_paid) and book.portfolio.fees_paid > Decimal(0)


def test_workers_give_the_same_result(candles: Path) -> None:
    from tradepipe.config.settings import load_settings
    from tradepipe.research.data import load_market
    from tradepipe.research.engine import config_from_settings, default_strategies, run_walk_forward

    config = config_from_settings(load_settings(market_source="replay", replay_dir=candles, timeframe="1h", symbols="BTC/USDT,ETH/USDT"), window_days=5)
    market = load_market(candles, config.symbols, "1h")
    specs = default_strategies(config, ["max_sharpe", "risk_parity"])
    one = run_walk_forward(market, config, specs, end_ms=int(market.timeline[24 * 12]))
    two = run_walk_forward(market, config, specs, end_ms=int(market.timeline[24 * 12]), workers=2)
    assert one.skipped == two.skipped
    for key, book in one.books.items():
        other = two.books[key]
        assert (book.equity, book.fees, book.traded, book.portfolio) == (other.equity, other.fees, other.traded, other.portfolio)
        assert book.fill_log == other.fill_log and len(book.fill_log) == book.fills  # the results tables' fills come back from the workers
        assert [(d.day_ms, d.weights, d.reason) for d in book.decisions] == [(d.day_ms, d.weights, d.reason) for d in other.decisions]
