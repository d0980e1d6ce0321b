"""Metrics against hand-computed values, an independent pandas implementation, and edge cases."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradepipe.core import metrics
from tradepipe.core.metrics import (
    FEWER_THAN_2,
    NO_LOSSES,
    NO_NEGATIVE_RETURNS,
    NO_NONZERO_RETURNS,
    NO_WINS,
    NOT_FINITE,
    ZERO_DRAWDOWN,
    ZERO_VOLATILITY,
    agent_return_stream,
    classify_agents,
    summarize,
    summarize_many,
)

KEYS = [
    "sharpe", "sortino", "volatility", "total_return", "max_drawdown", "calmar", "win_rate",
    "profit_factor", "avg_win", "avg_loss", "max_consecutive_wins", "max_consecutive_losses",
    "null_reasons",
]
approx = pytest.approx


def assert_no_inf_or_nan(summary: dict) -> None:
    for key, value in summary.items():
        if isinstance(value, float):
            assert math.isfinite(value), key
        if value is None:
            assert key in summary["null_reasons"], key
    for key in summary["null_reasons"]:
        assert summary[key] is None, key


# ---------------------------------------------------------------- hand-computed values


def test_hand_computed_three_returns():
    # r = [0.01, -0.02, 0.03], ppy = 4 (sqrt(ppy) = 2), rf = 0
    # mean = 0.02 / 3 = 1/150
    # deviations = 1/300, -8/300, 7/300 -> squares sum to 114/90000 -> var(ddof=1) = 57/90000
    # std = sqrt(57)/300
    # sharpe = (1/150) / (sqrt(57)/300) * 2 = 4 / sqrt(57) = 0.529813...
    # downside = sqrt((0^2 + 0.02^2 + 0^2) / 3) = 0.02 / sqrt(3)
    # sortino = (1/150) / (0.02/sqrt(3)) * 2 = (1/3) * sqrt(3) * 2 = 2 / sqrt(3) = 1.154700...
    # volatility = sqrt(57)/300 * 2 = sqrt(57)/150 = 0.050332...
    # equity: 1 -> 1.01 -> 1.01*0.98 = 0.9898 -> 0.9898*1.03 = 1.019494 ; total = 0.019494
    # running max: 1, 1.01, 1.01, 1.019494 -> worst ratio 0.9898/1.01 = 0.98 -> max_dd = -0.02
    # CAGR = 1.019494 ** (4/3) - 1 ; calmar = CAGR / 0.02
    # wins 0.01, 0.03 ; loss -0.02: win_rate 2/3, profit_factor 0.04/0.02 = 2,
    # avg_win 0.02, avg_loss -0.02, longest runs 1 and 1
    s = summarize([0.01, -0.02, 0.03], periods_per_year=4)
    assert list(s) == KEYS
    assert s["sharpe"] == approx(4 / math.sqrt(57), rel=1e-12)
    assert s["sortino"] == approx(2 / math.sqrt(3), rel=1e-12)
    assert s["volatility"] == approx(math.sqrt(57) / 150, rel=1e-12)
    assert s["total_return"] == approx(0.019494, rel=1e-12)
    assert s["max_drawdown"] == approx(-0.02, rel=1e-12)
    assert s["calmar"] == approx((1.019494 ** (4 / 3) - 1) / 0.02, rel=1e-12)
    assert s["win_rate"] == approx(2 / 3)
    assert s["profit_factor"] == approx(2.0)
    assert s["avg_win"] == approx(0.02)
    assert s["avg_loss"] == approx(-0.02)
    assert (s["max_consecutive_wins"], s["max_consecutive_losses"]) == (1, 1)
    assert s["null_reasons"] == {}


def test_risk_free_is_converted_per_period():
    # rf = 0.21 a year, ppy = 2 -> per period (1.21) ** (1/2) - 1 = 0.1
    # r = [0.3, 0.1]: mean excess = 0.2 - 0.1 = 0.1 ; std(ddof=1) = sqrt(0.1^2 + 0.1^2) = sqrt(0.02)
    # sharpe = 0.1 / sqrt(0.02) * sqrt(2) = 1.0 ; no negative returns -> sortino None
    s = summarize([0.3, 0.1], periods_per_year=2, risk_free=0.21)
    assert s["sharpe"] == approx(1.0, rel=1e-12)
    assert s["sortino"] is None
    assert s["null_reasons"]["sortino"] == NO_NEGATIVE_RETURNS
    # r = [0.2, 0.0]: mean 0.1 equals the per-period rf -> sharpe 0
    assert summarize([0.2, 0.0], periods_per_year=2, risk_free=0.21)["sharpe"] == approx(0.0, abs=1e-15)


def test_sortino_uses_all_bars_in_the_downside_denominator():
    # r = [0.04, -0.02, -0.02, 0.04], ppy = 1: mean = 0.01
    # downside = sqrt((0.02^2 + 0.02^2) / 4) = sqrt(0.0002) = 0.0141421...
    # sortino = 0.01 / 0.0141421 = 0.7071067... = 1/sqrt(2)
    s = summarize([0.04, -0.02, -0.02, 0.04], periods_per_year=1)
    assert s["sortino"] == approx(1 / math.sqrt(2), rel=1e-12)


def test_drawdown_from_the_initial_equity():
    # r = [-0.1, 0.05]: equity 1 -> 0.9 -> 0.945; the peak is the starting 1.0 -> max_dd = -0.1
    # total = 0.945 - 1 = -0.055 ; CAGR with ppy=2, n=2: 0.945 ** 1 - 1 = -0.055
    # calmar = -0.055 / 0.1 = -0.55
    s = summarize([-0.1, 0.05], periods_per_year=2)
    assert s["max_drawdown"] == approx(-0.1)
    assert s["total_return"] == approx(-0.055)
    assert s["calmar"] == approx(-0.55)


def test_zeros_break_runs_and_do_not_count_in_win_rate():
    # wins: [0.01, 0.02] run 2, then 0 breaks, [0.03] run 1 -> longest 2
    # losses: [-0.01, -0.02, -0.03] run 3, 0 breaks, [-0.01] -> longest 3
    # win_rate = 3 wins / (3 wins + 4 losses) = 3/7 (the two zeros count for neither)
    r = [0.01, 0.02, 0.0, 0.03, -0.01, -0.02, -0.03, 0.0, -0.01]
    s = summarize(r, periods_per_year=365)
    assert s["max_consecutive_wins"] == 2
    assert s["max_consecutive_losses"] == 3
    assert s["win_rate"] == approx(3 / 7)
    assert s["profit_factor"] == approx(0.06 / 0.07)


# ---------------------------------------------------------------- null rules


def test_empty_series():
    s = summarize([], periods_per_year=8760)
    assert_no_inf_or_nan(s)
    for key in ("sharpe", "sortino", "volatility", "calmar", "win_rate", "profit_factor"):
        assert s["null_reasons"][key] == FEWER_THAN_2
    assert s["total_return"] == 0.0 and s["max_drawdown"] == 0.0
    assert s["null_reasons"]["avg_win"] == NO_WINS and s["null_reasons"]["avg_loss"] == NO_LOSSES
    assert s["max_consecutive_wins"] == 0 and s["max_consecutive_losses"] == 0


def test_one_return_nulls_every_ratio_but_keeps_totals():
    s = summarize(np.array([0.05]), periods_per_year=8760)
    assert_no_inf_or_nan(s)
    for key in ("sharpe", "sortino", "volatility", "calmar", "win_rate", "profit_factor"):
        assert s[key] is None and s["null_reasons"][key] == FEWER_THAN_2
    assert s["total_return"] == approx(0.05)
    assert s["max_drawdown"] == 0.0
    assert s["avg_win"] == approx(0.05)
    assert s["max_consecutive_wins"] == 1


def test_only_winners():
    s = summarize([0.01, 0.02, 0.03], periods_per_year=365)
    assert_no_inf_or_nan(s)
    assert s["profit_factor"] is None and s["null_reasons"]["profit_factor"] == NO_LOSSES
    assert s["avg_loss"] is None and s["null_reasons"]["avg_loss"] == NO_LOSSES
    assert s["sortino"] is None and s["null_reasons"]["sortino"] == NO_NEGATIVE_RETURNS
    assert s["calmar"] is None and s["null_reasons"]["calmar"] == ZERO_DRAWDOWN
    assert s["win_rate"] == 1.0 and s["max_consecutive_wins"] == 3
    assert s["sharpe"] is not None


def test_only_losers():
    # r = [-0.01, -0.02]: profit_factor = 0 / 0.03 = 0 ; win_rate 0 ; no wins -> avg_win None
    s = summarize([-0.01, -0.02], periods_per_year=365)
    assert_no_inf_or_nan(s)
    assert s["profit_factor"] == 0.0
    assert s["win_rate"] == 0.0
    assert s["avg_win"] is None and s["null_reasons"]["avg_win"] == NO_WINS
    assert s["avg_loss"] == approx(-0.015)
    assert s["max_consecutive_losses"] == 2
    assert s["max_drawdown"] == approx(0.99 * 0.98 - 1)
    assert s["sharpe"] < 0 and s["sortino"] < 0 and s["calmar"] < 0


@pytest.mark.parametrize("value", [0.01, -0.01, 0.1, 0.0, 1e-3 / 3])
def test_constant_series_gives_none_not_inf(value):
    s = summarize([value] * 7, periods_per_year=8760)
    assert_no_inf_or_nan(s)
    assert s["sharpe"] is None and s["null_reasons"]["sharpe"] == ZERO_VOLATILITY
    assert s["sortino"] is None and s["null_reasons"]["sortino"] == ZERO_VOLATILITY
    assert s["volatility"] == 0.0


def test_all_zero_series():
    s = summarize([0.0, 0.0, 0.0], periods_per_year=8760)
    assert_no_inf_or_nan(s)
    assert s["null_reasons"]["win_rate"] == NO_NONZERO_RETURNS
    assert s["total_return"] == 0.0 and s["max_drawdown"] == 0.0
    assert s["null_reasons"]["calmar"] == ZERO_DRAWDOWN


def test_overflowing_equity_is_none_not_inf():
    # +1% / -0.5% alternating: equity grows ~0.49% per pair and overflows float64 after ~290k bars
    r = np.full(400_000, 0.01)
    r[1::2] = -0.005
    s = summarize(r, periods_per_year=8760)
    assert_no_inf_or_nan(s)
    assert s["total_return"] is None and s["null_reasons"]["total_return"] == NOT_FINITE
    assert s["max_drawdown"] == approx(-0.005)  # computed on log equity for this row


def test_return_below_minus_100_percent():
    # equity 1 -> -1 (r = -2) -> -1.5: max_dd = -1.5/1 - 1 = -2.5 ; final equity negative -> calmar None
    s = summarize([-2.0, 0.5], periods_per_year=2)
    assert_no_inf_or_nan(s)
    assert s["max_drawdown"] == approx(-2.5)
    assert s["calmar"] is None


def test_non_finite_input_names_the_index():
    with pytest.raises(ValueError, match="index 2"):
        summarize([0.01, 0.02, float("nan"), 0.03], periods_per_year=365)
    with pytest.raises(ValueError, match="index 0"):
        summarize([float("inf")], periods_per_year=365)
    with pytest.raises(ValueError, match="index 1"):
        summarize([0.01, None], periods_per_year=365)  # a null is a missing return


def test_rejects_bad_rates_and_shapes():
    with pytest.raises(ValueError):
        summarize([0.01, 0.02], periods_per_year=0)
    with pytest.raises(ValueError):
        summarize([0.01, 0.02], periods_per_year=365, risk_free=-1.0)
    with pytest.raises(ValueError, match="1-D"):
        summarize(np.zeros((3, 2)), periods_per_year=365)


def test_accepts_pandas_and_polars_series():
    r = [0.01, -0.02, 0.03, 0.0]
    expected = summarize(np.array(r), periods_per_year=365)
    assert summarize(pd.Series(r), periods_per_year=365) == expected
    assert summarize(pl.Series(r), periods_per_year=365) == expected
    with pytest.raises(ValueError, match="index 1"):
        summarize(pl.Series([0.01, None]), periods_per_year=365)
    with pytest.raises(ValueError, match="index 1"):
        summarize(pd.Series([0.01, None], dtype="Float64"), periods_per_year=365)


def test_docstring_examples_run():
    assert doctest.testmod(metrics).failed == 0


# ---------------------------------------------------------------- independent cross-check


def div(a: float, b: float) -> float:
    return float(a) / float(b) if b else math.nan  # undefined -> NaN in the reference


def reference_summary(r: list[float], ppy: float, rf: float) -> dict:
    """Straightforward pandas + Python-loop version of the docs/architecture.md definitions (NaN = undefined)."""
    s = pd.Series(r, dtype=float)
    rf_p = (1 + rf) ** (1 / ppy) - 1
    std = s.std()  # pandas defaults to ddof=1
    downside = math.sqrt((s.clip(upper=0) ** 2).sum() / len(s))
    equity = pd.concat([pd.Series([1.0]), (1 + s).cumprod()], ignore_index=True)
    max_dd = (equity / equity.cummax()).min() - 1
    total = (1 + s).prod() - 1
    cagr = (1 + total) ** (ppy / len(s)) - 1
    runs = {"win": 0, "loss": 0}
    best = {"win": 0, "loss": 0}
    for x in r:
        runs["win"] = runs["win"] + 1 if x > 0 else 0
        runs["loss"] = runs["loss"] + 1 if x < 0 else 0
        best = {k: max(best[k], runs[k]) for k in best}
    wins, losses = s[s > 0], s[s < 0]
    return {
        "sharpe": div((s - rf_p).mean(), std) * math.sqrt(ppy),
        "sortino": div((s - rf_p).mean(), downside) * math.sqrt(ppy),
        "volatility": std * math.sqrt(ppy),
        "total_return": total,
        "max_drawdown": max_dd,
        "calmar": div(cagr, abs(max_dd)),
        "win_rate": div(len(wins), len(wins) + len(losses)),
        "profit_factor": div(wins.sum(), abs(losses.sum())),
        "avg_win": wins.mean(),
        "avg_loss": losses.mean(),
        "max_consecutive_wins": best["win"],
        "max_consecutive_losses": best["loss"],
    }


def random_returns(seed: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    r = rng.normal(0.0003, 0.01, n)
    r[rng.random(n) < 0.1] = 0.0  # flat bars, which break runs
    return r


@pytest.mark.parametrize("seed", range(5))
def test_matches_independent_pandas_implementation(seed):
    r = random_returns(seed, 2_000)
    got = summarize(r, periods_per_year=8760, risk_free=0.04)
    expected = reference_summary(list(r), 8760, 0.04)
    for key, value in expected.items():
        assert got[key] == approx(value, rel=1e-9, abs=1e-15), key


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([-0.02, -0.01, 0.0, 0.01, 0.03]), min_size=2, max_size=60))
def test_runs_and_counts_match_a_python_loop(r):
    got = summarize(r, periods_per_year=365)
    expected = reference_summary(r, 365, 0.0)
    assert_no_inf_or_nan(got)
    assert got["max_consecutive_wins"] == expected["max_consecutive_wins"]
    assert got["max_consecutive_losses"] == expected["max_consecutive_losses"]
    if got["win_rate"] is not None:
        assert got["win_rate"] == approx(expected["win_rate"])
    assert got["max_drawdown"] == approx(expected["max_drawdown"], abs=1e-12)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(min_value=-1.0, max_value=5.0), max_size=40), st.sampled_from([1.0, 365.0, 525_600.0]))
def test_never_inf_or_nan(r, ppy):
    assert_no_inf_or_nan(summarize(r, periods_per_year=ppy))


# ---------------------------------------------------------------- summarize_many


def test_summarize_many_equals_summarize_per_column():
    matrix = np.column_stack([random_returns(seed, 500) for seed in range(4)])
    matrix[:, 3] = 0.002  # a constant column (None ratios) among ordinary ones
    many = summarize_many(matrix, periods_per_year=8760, risk_free=0.03, names=["a", "b", "c", "d"])
    assert list(many) == ["a", "b", "c", "d"]
    for j, name in enumerate(many):
        assert many[name] == summarize(matrix[:, j], periods_per_year=8760, risk_free=0.03)


def test_summarize_many_takes_dataframe_column_names():
    data = {"trend": [0.01, -0.02, 0.03], "mean_rev": [0.0, 0.01, -0.01]}
    expected = {k: summarize(v, periods_per_year=365) for k, v in data.items()}
    assert summarize_many(pd.DataFrame(data), periods_per_year=365) == expected
    assert summarize_many(pl.DataFrame(data), periods_per_year=365) == expected
    assert list(summarize_many(np.zeros((3, 2)), periods_per_year=365)) == ["0", "1"]


def test_summarize_many_nan_error_names_agent_and_bar():
    frame = pd.DataFrame({"a": [0.01, 0.02, 0.03], "b": [0.01, 0.02, np.nan]})
    with pytest.raises(ValueError, match=r"agent 'b' at bar index 2"):
        summarize_many(frame, periods_per_year=365)
    with pytest.raises(ValueError, match=r"agent 'x' at bar index 1"):
        summarize_many(np.array([[0.0, 0.0], [0.0, np.inf]]), periods_per_year=365, names=["w", "x"])


def test_summarize_many_edge_shapes():
    assert summarize_many(np.zeros((0, 2)), periods_per_year=365)["1"] == summarize([], periods_per_year=365)
    with pytest.raises(ValueError, match="2-D"):
        summarize_many(np.zeros(3), periods_per_year=365)
    with pytest.raises(ValueError, match="unique"):
        summarize_many(np.zeros((3, 2)), periods_per_year=365, names=["a", "a"])


# ---------------------------------------------------------------- agent_return_stream


def test_agent_return_stream_hand_computed():
    # closes 100 -> 110 -> 99 -> 99, positions [1, 1, -1, 0], fee 10 bps = 0.001
    # t=0: hold  1 over +10%: 0.10 - 0.001 * |1 - 0| = 0.099
    # t=1: hold  1 over -10%: -0.10 - 0.001 * |1 - 1| = -0.100
    # t=2: hold -1 over   0%: 0.00 - 0.001 * |-1 - 1| = -0.002
    # (the change to 0 at the last bar has no next bar, so it is not charged)
    out = agent_return_stream([1.0, 1.0, -1.0, 0.0], [100.0, 110.0, 99.0, 99.0], fee_bps=10)
    assert out == approx([0.099, -0.100, -0.002], abs=1e-15)
    assert out.shape == (3,)


def test_agent_return_stream_short_and_fractional_positions():
    # position -0.5 over +2%: -0.01, minus 0.5 * 0.0025 entry fee = -0.01125
    # position 0.25 over -1% (102 -> 100.98): -0.0025, minus |0.25 + 0.5| * 0.0025 = -0.004375
    out = agent_return_stream(np.array([-0.5, 0.25, 0.25]), np.array([100.0, 102.0, 100.98]), fee_bps=25)
    assert out == approx([-0.01125, -0.004375], abs=1e-15)


def test_agent_return_stream_edges_and_errors():
    assert agent_return_stream([], [], fee_bps=5).shape == (0,)
    assert agent_return_stream([1.0], [100.0], fee_bps=5).shape == (0,)
    with pytest.raises(ValueError, match="positions contain nan at index 1"):
        agent_return_stream([0.0, np.nan, 1.0], [1.0, 2.0, 3.0], fee_bps=5)
    with pytest.raises(ValueError, match="closes contain nan at index 2"):
        agent_return_stream([0.0, 1.0, 1.0], [1.0, 2.0, np.nan], fee_bps=5)
    with pytest.raises(ValueError, match=r"closes\[0\] is not positive"):
        agent_return_stream([0.0, 1.0], [0.0, 2.0], fee_bps=5)
    with pytest.raises(ValueError, match="differ in length"):
        agent_return_stream([0.0, 1.0], [1.0], fee_bps=5)


# ---------------------------------------------------------------- classify_agents


def test_classify_agents():
    perf = {
        "star": {"sharpe": 2.0, "win_rate": 0.60},
        "trend": {"sharpe": 1.8, "win_rate": 0.40},  # top by Sharpe, under by win rate: both
        "ok": {"sharpe": 1.0, "win_rate": 0.50},
        "weak": {"sharpe": 0.2, "win_rate": 0.55},
        "new": {"sharpe": None, "win_rate": None, "null_reasons": {"sharpe": FEWER_THAN_2}},
        "alpha_tie": {"sharpe": 1.0, "win_rate": 0.50},
    }
    result = classify_agents(perf)
    assert result["ranking"] == ["star", "trend", "alpha_tie", "ok", "weak", "new"]
    assert result["top_performers"] == ["star", "trend"]
    assert list(result["underperformers"]) == ["trend", "weak", "new"]
    assert "win_rate 0.400 < 0.45" in result["underperformers"]["trend"]
    assert "sharpe 0.200 < 0.5" in result["underperformers"]["weak"]
    assert FEWER_THAN_2 in result["underperformers"]["new"]


def test_classify_agents_from_summaries():
    perf = summarize_many(
        np.column_stack([random_returns(1, 300) + 0.01, random_returns(2, 300) - 0.01]),
        periods_per_year=8760,
        names=["good", "bad"],
    )
    result = classify_agents(perf)
    assert result["ranking"] == ["good", "bad"]
    assert result["top_performers"] == ["good"]
    assert list(result["underperformers"]) == ["bad"]


def test_ratios_from_fewer_returns_than_the_minimum_are_null_with_the_reason() -> None:
    # 8 hourly bars annualised gave a Sharpe of -810; below the minimum it is null.
    eight = [-0.002, -0.001, -0.003, -0.002, -0.0015, -0.002, -0.0025, -0.001]
    loose = summarize(eight, periods_per_year=8760)
    assert loose["sharpe"] is not None and loose["sharpe"] < -100  # what the 2-return rule allowed
    strict = summarize(eight, periods_per_year=8760, min_returns=30)
    for metric in ("sharpe", "sortino", "volatility", "calmar", "win_rate", "profit_factor"):
        assert strict[metric] is None and strict["null_reasons"][metric] == "fewer than 30 returns"
    assert strict["total_return"] == loose["total_return"] and strict["max_drawdown"] == loose["max_drawdown"]
    enough = summarize(eight * 4, periods_per_year=8760, min_returns=30)
    assert enough["sharpe"] == summarize(eight * 4, periods_per_year=8760)["sharpe"]
    many = summarize_many(np.array([eight, eight]).T, 8760, names=["a", "b"], min_returns=30)
    assert many["a"]["sharpe"] is None and many["b"]["null_reasons"]["sharpe"] == "fewer than 30 returns"
    with pytest.raises(ValueError, match="min_returns"):
        summarize(eight, 8760, min_returns=1)


# --------------------------------------------------------------------------- bars shorter than a day


def _hourly(days: float, seed: int = 7) -> tuple[np.ndarray, pd.DatetimeIndex]:
    n = int(days * 24)
    returns = np.random.default_rng(seed).normal(2e-4, 4e-3, (n, 2))
    return returns, pd.date_range("2026-03-01 05:00", periods=n, freq="h")  # days start mid-day: a partial first day


def test_risk_adjusted_figures_of_hourly_bars_are_those_of_the_daily_returns() -> None:
    returns, times = _hourly(20.5)
    rows = summarize_many(returns, 8760.0, names=["a", "b"], min_returns=20, bar_times=times)
    per_bar = summarize_many(returns, 8760.0, names=["a", "b"], min_returns=20)
    for column, name in enumerate(["a", "b"]):
        series = pd.Series(returns[:, column], index=times)
        daily = (1 + series).groupby(times.floor("D")).prod() - 1  # 21 UTC days (the first and last partial)
        assert len(daily) == 21
        sharpe = daily.mean() / daily.std(ddof=1) * math.sqrt(365)
        downside = math.sqrt((np.minimum(daily, 0) ** 2).mean())
        assert rows[name]["sharpe"] == pytest.approx(sharpe, rel=1e-9)
        assert rows[name]["volatility"] == pytest.approx(daily.std(ddof=1) * math.sqrt(365), rel=1e-9)
        assert rows[name]["sortino"] == pytest.approx(daily.mean() / downside * math.sqrt(365), rel=1e-9)
        # totals, drawdown and the per-bar counts are the bars' own
        for key in ("total_return", "max_drawdown", "win_rate", "profit_factor", "max_consecutive_wins"):
            assert rows[name][key] == per_bar[name][key]
        assert rows[name]["sharpe"] != pytest.approx(per_bar[name]["sharpe"], rel=1e-3)


def test_risk_adjusted_figures_of_hourly_bars_are_null_with_the_reason_until_14_days() -> None:
    returns, times = _hourly(12.5)  # 300 bars: enough bars, 13 UTC days
    row = summarize_many(returns, 8760.0, names=["a", "b"], min_returns=20, bar_times=times)["a"]
    for key in ("sharpe", "sortino", "volatility", "calmar"):
        assert row[key] is None
        assert row["null_reasons"][key] == "fewer than 14 days of returns (13): bars shorter than a day are judged on daily returns"
    assert row["total_return"] is not None and row["win_rate"] is not None


def test_daily_bars_keep_their_own_figures() -> None:
    returns = np.random.default_rng(1).normal(1e-3, 2e-2, (30, 1))
    times = pd.date_range("2026-01-01", periods=30, freq="D")
    assert summarize_many(returns, 365.0, bar_times=times) == summarize_many(returns, 365.0)


def test_daily_sharpe_equals_the_whole_summary_rule() -> None:
    """daily_sharpe computes only the Sharpe ratio: its value and null reason are the full summary's, to the bit."""
    from tradepipe.core.metrics import _daily_rows, _summarize_daily, _summarize_rows, daily_sharpe, utc_days

    rng = np.random.default_rng(5)
    hour = 3_600_000
    for case in range(300):
        n = int(rng.integers(0, 24 * 40))
        stream = rng.normal(0.0, 0.01, n) * (rng.random(n) < rng.random())
        if case % 7 == 0:
            stream[:] = 0.001  # constant: zero volatility
        times = np.arange(n, dtype=np.int64) * hour + int(rng.integers(0, 24)) * hour
        ppy = float(rng.choice([8760.0, 365.0, 52.0]))
        min_days = int(rng.choice([2, 14, 30]))
        rf = float(rng.choice([0.0, 0.02]))
        rows = stream.reshape(1, -1)
        if ppy > 365.0 + 1e-9:
            summary = _summarize_daily(_daily_rows(rows, utc_days(times)), rf, min_days)[0]
        else:
            summary = _summarize_rows(rows, ppy, rf)[0]
        assert daily_sharpe(stream, times, ppy, rf, min_days) == (summary["sharpe"], summary["null_reasons"].get("sharpe"))
