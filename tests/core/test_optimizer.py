"""Tests for tradepipe.core.optimizer: optimum vs brute force, risk parity, errors, eligibility."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tradepipe.core.optimizer as optimizer
from tradepipe.core.optimizer import (
    OptimizationError,
    eligible_agents,
    optimize,
    portfolio_sharpe,
)
from tradepipe.core.timeframes import periods_per_year

HOURLY = periods_per_year("1h")  # 8760


# --------------------------------------------------------------------------- helpers


def correlated_streams(
    seed: int,
    means: list[float],
    vols: list[float],
    corr: list[list[float]] | None = None,
    bars: int = 4000,
) -> dict[str, np.ndarray]:
    """Seeded synthetic agent returns; the sample moments are close to, not equal to, the inputs."""
    n = len(means)
    rng = np.random.default_rng(seed)
    chol = np.linalg.cholesky(np.array(corr) if corr is not None else np.eye(n))
    noise = rng.standard_normal((bars, n)) @ chol.T
    returns = noise * np.array(vols) + np.array(means)
    return {chr(ord("a") + i): returns[:, i] for i in range(n)}


def matrix(streams: dict[str, np.ndarray]) -> np.ndarray:
    return np.column_stack(list(streams.values()))


def as_vector(weights: dict[str, float]) -> np.ndarray:
    return np.array(list(weights.values()))


def sharpes(returns: np.ndarray, weights: np.ndarray, rf_bar: float = 0.0) -> np.ndarray:
    """Per-bar Sharpe of each row of ``weights`` (mean / std, ddof=1): the definition, directly."""
    streams = returns @ np.atleast_2d(weights).T
    return (streams.mean(axis=0) - rf_bar) / streams.std(axis=0, ddof=1)


def simplex_grid(n: int, lo: float, hi: float, step: float) -> np.ndarray:
    """Every w on the ``step`` lattice with sum(w) = 1 and lo <= w_i <= hi (bounds on the lattice)."""
    units = round(1 / step)
    lo_u, hi_u = round(lo / step), round(hi / step)
    axes = [range(lo_u, hi_u + 1)] * (n - 1)
    head = np.array(list(itertools.product(*axes)), dtype=float).reshape(-1, n - 1)
    last = units - head.sum(axis=1)
    keep = (last >= lo_u) & (last <= hi_u)
    return np.column_stack([head[keep], last[keep]]) / units


def grid_best(returns: np.ndarray, lo: float, hi: float, step: float, rf_bar: float = 0.0):
    """Best grid point by Sharpe, from the sample moments (std(w'r, ddof=1) = sqrt(w' cov w))."""
    grid = simplex_grid(returns.shape[1], lo, hi, step)
    cov = np.cov(returns, rowvar=False, ddof=1)
    values = (grid @ returns.mean(axis=0) - rf_bar) / np.sqrt(np.einsum("ij,jk,ik->i", grid, cov, grid))
    best = int(np.argmax(values))
    return grid[best], float(values[best])


def risk_contributions(returns: np.ndarray, weights: np.ndarray) -> np.ndarray:
    cov = np.cov(returns, rowvar=False, ddof=1)
    return weights * (cov @ weights)


def assert_valid_weights(weights: dict[str, float], names: list[str], lo: float, hi: float) -> None:
    assert list(weights) == names
    values = as_vector(weights)
    assert abs(math.fsum(values) - 1.0) <= 1e-12
    assert np.all(values >= lo - 1e-12) and np.all(values <= hi + 1e-12)
    assert all(type(v) is float for v in values.tolist())


# --------------------------------------------------------------------------- max_sharpe vs brute force

MAX_SHARPE_CASES = {
    # name: (streams, lo, hi, grid step)
    "2 agents, no bounds": (
        correlated_streams(1, [3e-4, 1e-4], [0.01, 0.004], [[1, 0.3], [0.3, 1]]),
        0.0, 1.0, 0.001,
    ),
    "2 agents, upper bound binds": (
        correlated_streams(2, [4e-4, 5e-5], [0.005, 0.006], [[1, 0.2], [0.2, 1]]),
        0.1, 0.7, 0.001,
    ),
    "3 agents, default bounds, interior": (
        correlated_streams(3, [2e-4, 1.5e-4, 2.5e-4], [0.006, 0.004, 0.008],
                           [[1, 0.4, 0.1], [0.4, 1, -0.2], [0.1, -0.2, 1]]),
        0.05, 0.40, 0.01,
    ),
    "3 agents, no bounds": (
        correlated_streams(4, [2e-4, 1e-4, 3e-4], [0.006, 0.003, 0.009],
                           [[1, 0.5, 0.3], [0.5, 1, 0.2], [0.3, 0.2, 1]]),
        0.0, 1.0, 0.01,
    ),
    "4 agents, default bounds": (
        correlated_streams(5, [3e-4, 1e-4, 2e-4, -1e-4], [0.007, 0.003, 0.005, 0.004],
                           [[1, 0.2, 0.4, 0.1], [0.2, 1, 0.1, -0.3], [0.4, 0.1, 1, 0.2],
                            [0.1, -0.3, 0.2, 1]]),
        0.05, 0.40, 0.025,
    ),
    "4 agents, no bounds": (
        correlated_streams(6, [2e-4, 1.5e-4, 1e-4, 2.5e-4], [0.006, 0.004, 0.003, 0.008],
                           [[1, 0.3, 0.2, 0.5], [0.3, 1, 0.4, 0.1], [0.2, 0.4, 1, 0.0],
                            [0.5, 0.1, 0.0, 1]]),
        0.0, 1.0, 0.025,
    ),
}


@pytest.mark.parametrize("case", list(MAX_SHARPE_CASES))
def test_max_sharpe_beats_every_grid_point(case: str) -> None:
    streams, lo, hi, step = MAX_SHARPE_CASES[case]
    returns = matrix(streams)

    weights = optimize(streams, min_weight=lo, max_weight=hi)

    assert_valid_weights(weights, list(streams), lo, hi)
    w = as_vector(weights)
    grid_w, grid_sharpe = grid_best(returns, lo, hi, step)
    ours = float(sharpes(returns, w)[0])
    assert ours >= grid_sharpe - 1e-12 * abs(grid_sharpe)
    # The optimum is unique (positive-definite covariance): the grid's best is its neighbour.
    assert np.max(np.abs(w - grid_w)) <= 2 * step


def test_max_sharpe_pins_agent_that_unconstrained_optimum_would_short() -> None:
    # c earns less than a and moves with it: the tangency portfolio shorts c to hedge a.
    streams = correlated_streams(7, [3e-4, 2e-4, 5e-5, 1.5e-4], [0.006, 0.005, 0.006, 0.005],
                                 [[1, 0.1, 0.8, 0.1], [0.1, 1, 0.1, 0.2], [0.8, 0.1, 1, 0.1],
                                  [0.1, 0.2, 0.1, 1]])
    returns = matrix(streams)
    cov = np.cov(returns, rowvar=False)
    tangency = np.linalg.solve(cov, returns.mean(axis=0))
    assert (tangency / tangency.sum())[2] < 0  # the premise of this test

    weights = optimize(streams)  # 5% <= w <= 40%

    assert weights["c"] == pytest.approx(0.05, abs=1e-12)
    _, grid_sharpe = grid_best(returns, 0.05, 0.40, 0.025)
    assert sharpes(returns, as_vector(weights))[0] >= grid_sharpe - 1e-12 * grid_sharpe


def test_max_sharpe_pins_dominant_agent_at_max_weight() -> None:
    streams = correlated_streams(8, [6e-4, 1e-4, 1e-4, 1e-4], [0.004, 0.005, 0.005, 0.005])

    weights = optimize(streams)

    assert weights["a"] == pytest.approx(0.40, abs=1e-12)
    _, grid_sharpe = grid_best(matrix(streams), 0.05, 0.40, 0.025)
    assert sharpes(matrix(streams), as_vector(weights))[0] >= grid_sharpe - 1e-12 * grid_sharpe


def test_max_sharpe_uses_excess_returns_over_the_risk_free_rate() -> None:
    streams = correlated_streams(9, [3e-5, 2e-5, 4e-5], [0.001, 0.0004, 0.002])
    returns, annual_rf = matrix(streams), 0.05
    rf_bar = (1 + annual_rf) ** (1 / HOURLY) - 1

    with_rf = optimize(streams, risk_free=annual_rf, min_weight=0.0, max_weight=1.0)
    without_rf = optimize(streams, min_weight=0.0, max_weight=1.0)

    _, grid_sharpe = grid_best(returns, 0.0, 1.0, 0.01, rf_bar)
    assert sharpes(returns, as_vector(with_rf), rf_bar)[0] >= grid_sharpe - 1e-12 * grid_sharpe
    assert as_vector(with_rf) != pytest.approx(as_vector(without_rf), abs=1e-3)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 6),
    bounds=st.sampled_from([(0.0, 1.0), (0.05, 0.40), (0.0, 0.5), (0.1, 0.6)]),
)
def test_max_sharpe_is_a_global_optimum_on_random_problems(
    seed: int, n: int, bounds: tuple[float, float]
) -> None:
    lo, hi = bounds
    if n * hi < 1 or n * lo > 1:
        return
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(n, n)) * rng.uniform(0, 1) + np.diag(rng.uniform(0.2, 1, n))
    returns = rng.standard_normal((1500, n)) @ mix * 3e-3 + rng.normal(1e-4, 2e-4, n)
    streams = {f"agent{i}": returns[:, i] for i in range(n)}
    try:
        weights = optimize(streams, min_weight=lo, max_weight=hi)
    except OptimizationError as err:
        assert err.reason == "non_positive_returns"
        return
    assert_valid_weights(weights, list(streams), lo, hi)
    # No feasible point is better: random mixtures of vertices and a local search from many starts.
    vertices = np.array([optimizer._best_vertex(rng.normal(size=n), lo, hi) for _ in range(60)])
    mixtures = rng.dirichlet(np.ones(len(vertices)) * 0.3, size=3000) @ vertices
    points = np.vstack([vertices, mixtures])
    assert np.allclose(points.sum(axis=1), 1) and points.min() >= lo - 1e-12 and points.max() <= hi + 1e-12
    cov = np.cov(returns, rowvar=False)
    best_point = np.max(points @ returns.mean(axis=0) / np.sqrt(np.einsum("ij,jk,ik->i", points, cov, points)))
    ours = float(sharpes(returns, as_vector(weights))[0])
    assert ours >= best_point - 1e-12 * abs(ours)


def test_max_sharpe_falls_back_when_the_first_solver_misses(monkeypatch: pytest.MonkeyPatch) -> None:
    streams, lo, hi, step = MAX_SHARPE_CASES["4 agents, default bounds"]
    expected = optimize(streams, min_weight=lo, max_weight=hi)
    monkeypatch.setattr(optimizer, "_sharpe_qp_slsqp", lambda a, q, lo, hi, start: start)

    weights = optimize(streams, min_weight=lo, max_weight=hi)

    assert as_vector(weights) == pytest.approx(as_vector(expected), abs=1e-9)


def test_max_sharpe_refuses_an_uncertified_point(monkeypatch: pytest.MonkeyPatch) -> None:
    streams, lo, hi, _ = MAX_SHARPE_CASES["4 agents, default bounds"]
    monkeypatch.setattr(optimizer, "_sharpe_qp_slsqp", lambda a, q, lo, hi, start: start)
    monkeypatch.setattr(optimizer, "_sharpe_qp_trust_constr", lambda a, q, lo, hi, start: start)
    monkeypatch.setattr(optimizer, "_polished_sharpe", lambda *args: None)

    with pytest.raises(OptimizationError) as err:
        optimize(streams, min_weight=lo, max_weight=hi)
    assert err.value.reason == "solver_failed"


# --------------------------------------------------------------------------- risk parity


@pytest.mark.parametrize("n", [2, 3, 5, 8])
def test_risk_parity_equalises_risk_contributions_without_bounds(n: int) -> None:
    rng = np.random.default_rng(100 + n)
    mix = rng.normal(size=(n, n)) * 0.4 + np.diag(rng.uniform(0.3, 1.5, n))
    returns = rng.standard_normal((3000, n)) @ mix * 4e-3
    streams = {f"agent{i}": returns[:, i] for i in range(n)}

    weights = optimize(streams, method="risk_parity", min_weight=0.0, max_weight=1.0)

    assert_valid_weights(weights, list(streams), 0.0, 1.0)
    contributions = risk_contributions(returns, as_vector(weights))
    assert np.ptp(contributions) <= 1e-6 * contributions.mean()


def test_risk_parity_with_default_bounds_that_do_not_bind() -> None:
    streams = correlated_streams(11, [1e-4] * 4, [0.004, 0.005, 0.006, 0.0045],
                                 [[1, 0.3, 0.2, 0.1], [0.3, 1, 0.25, 0.2], [0.2, 0.25, 1, 0.3],
                                  [0.1, 0.2, 0.3, 1]])
    returns = matrix(streams)

    weights = optimize(streams, method="risk_parity")

    w = as_vector(weights)
    assert np.all(w > 0.05 + 1e-3) and np.all(w < 0.40 - 1e-3)  # the bounds really do not bind
    contributions = risk_contributions(returns, w)
    assert np.ptp(contributions) <= 1e-6 * contributions.mean()
    assert weights["a"] > weights["d"] > weights["b"] > weights["c"]  # less volatile, more weight


def test_risk_parity_with_binding_bounds_keeps_parity_among_free_agents() -> None:
    # a is far less volatile: equal risk would give it about half the portfolio, above 40%.
    streams = correlated_streams(12, [1e-4] * 4, [0.001, 0.004, 0.005, 0.006])
    returns = matrix(streams)
    unbounded = as_vector(optimize(streams, method="risk_parity", min_weight=0.0, max_weight=1.0))
    assert unbounded[0] > 0.40  # the premise of this test

    weights = optimize(streams, method="risk_parity")

    assert_valid_weights(weights, list(streams), 0.05, 0.40)
    w = as_vector(weights)
    assert w[0] == pytest.approx(0.40, abs=1e-12)
    contributions = risk_contributions(returns, w)
    free = contributions[1:]
    assert np.ptp(free) <= 1e-6 * free.mean()
    assert contributions[0] < free.min()  # capped: it carries less risk than it would take


@pytest.mark.parametrize("seed", range(8))
def test_risk_parity_kkt_on_random_binding_problems(seed: int) -> None:
    rng = np.random.default_rng(200 + seed)
    n, lo, hi = 8, 0.04, 0.2
    vols = rng.uniform(0.001, 0.01, n)  # a wide spread of volatility makes the bounds bind
    returns = (rng.standard_normal((2000, n)) @ (rng.normal(size=(n, n)) * 0.3 + np.eye(n))) * vols
    streams = {f"agent{i}": returns[:, i] for i in range(n)}

    w = as_vector(optimize(streams, method="risk_parity", min_weight=lo, max_weight=hi))

    contributions = risk_contributions(returns, w)
    at_lo, at_hi = np.isclose(w, lo, rtol=0, atol=1e-12), np.isclose(w, hi, rtol=0, atol=1e-12)
    free = contributions[~at_lo & ~at_hi]
    assert at_lo.any() or at_hi.any()  # the premise: some bound binds
    assert free.size >= 2 and np.ptp(free) <= 1e-6 * free.mean()
    # A pinned agent would move away from parity: at max it carries less risk, at min more.
    assert np.all(contributions[at_hi] <= free.mean() * (1 + 1e-9))
    assert np.all(contributions[at_lo] >= free.mean() * (1 - 1e-9))


def test_risk_parity_returns_min_variance_when_no_budget_can_equalise_risk() -> None:
    # Lower bounds use 90% of the budget and c hedges a and b: even the box's minimum-variance
    # point holds more than 100%, so no equal-risk solution exists (documented fallback).
    corr = [[1, 0.3, -0.6], [0.3, 1, -0.6], [-0.6, -0.6, 1]]
    streams = correlated_streams(13, [1e-4] * 3, [0.004, 0.004, 0.002], corr)
    returns = matrix(streams)

    weights = optimize(streams, method="risk_parity", min_weight=0.3, max_weight=0.5)

    assert_valid_weights(weights, list(streams), 0.3, 0.5)
    grid = simplex_grid(3, 0.3, 0.5, 0.001)
    cov = np.cov(returns, rowvar=False)
    grid_variance = np.einsum("ij,jk,ik->i", grid, cov, grid).min()
    w = as_vector(weights)
    assert w @ cov @ w <= grid_variance * (1 + 1e-9)


def test_risk_parity_does_not_depend_on_the_scale_of_returns() -> None:
    streams = correlated_streams(14, [1e-4] * 3, [0.001, 0.004, 0.006])
    scaled = {name: 100 * values for name, values in streams.items()}

    assert as_vector(optimize(scaled, method="risk_parity")) == pytest.approx(
        as_vector(optimize(streams, method="risk_parity")), abs=1e-10
    )


# --------------------------------------------------------------------------- equal weight, shared behaviour


@pytest.mark.parametrize("n", [3, 5, 20])
def test_equal_weight(n: int) -> None:
    rng = np.random.default_rng(n)
    streams = {f"agent{i}": rng.normal(0, 0.01, 50) for i in range(n)}

    weights = optimize(streams, method="equal_weight")

    assert_valid_weights(weights, list(streams), 0.05, 0.40)
    assert as_vector(weights) == pytest.approx(np.full(n, 1 / n), abs=1e-15)


def test_bounds_that_admit_a_single_portfolio_return_it_for_every_method() -> None:
    streams = correlated_streams(15, [1e-4] * 20, [0.004] * 20, bars=500)  # 20 x 5% = 100%

    for method in optimizer.METHODS:
        assert as_vector(optimize(streams, method=method)) == pytest.approx(np.full(20, 0.05), abs=1e-15)


@pytest.mark.parametrize("method", ["max_sharpe", "risk_parity", "equal_weight"])
def test_same_input_gives_bitwise_identical_weights(method: str) -> None:
    streams, lo, hi, _ = MAX_SHARPE_CASES["4 agents, default bounds"]
    copy = {name: values.copy() for name, values in streams.items()}

    assert optimize(streams, method=method) == optimize(copy, method=method)


@pytest.mark.parametrize("method", ["max_sharpe", "risk_parity", "equal_weight"])
def test_pandas_polars_and_mapping_inputs_agree(method: str) -> None:
    streams, _, _, _ = MAX_SHARPE_CASES["3 agents, default bounds, interior"]
    expected = optimize(streams, method=method)

    assert optimize(pd.DataFrame(streams), method=method) == expected
    assert optimize(pl.DataFrame(streams), method=method) == expected


def test_weights_follow_column_order() -> None:
    streams, _, _, _ = MAX_SHARPE_CASES["3 agents, default bounds, interior"]
    reordered = {name: streams[name] for name in ["c", "a", "b"]}

    weights = optimize(reordered)

    assert list(weights) == ["c", "a", "b"]
    assert weights == pytest.approx(optimize(streams), abs=1e-9)


@pytest.mark.parametrize("method", ["max_sharpe", "risk_parity"])
@pytest.mark.parametrize("seed", range(6))
def test_weights_sum_to_one_and_stay_inside_bounds(method: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 6
    returns = rng.standard_normal((800, n)) @ (rng.normal(size=(n, n)) * 0.5 + np.eye(n)) * 3e-3
    streams = {f"agent{i}": returns[:, i] + 3e-4 * (i + 1) / n for i in range(n)}

    weights = optimize(streams, method=method, min_weight=0.1, max_weight=0.3)

    assert_valid_weights(weights, list(streams), 0.1, 0.3)


# --------------------------------------------------------------------------- errors


def reason_of(returns, **kwargs) -> str:
    with pytest.raises(OptimizationError) as err:
        optimize(returns, **kwargs)
    assert str(err.value)  # a human message too
    return err.value.reason


THREE = correlated_streams(20, [2e-4, 1e-4, 1.5e-4], [0.004, 0.003, 0.005], bars=200)


def test_error_is_a_value_error_with_reason_and_message() -> None:
    err = OptimizationError("nan_input", "agent 'x' has NaN at bar 3")
    assert isinstance(err, ValueError)
    assert err.reason == "nan_input" and str(err) == "agent 'x' has NaN at bar 3"


def test_too_few_agents_for_the_max_weight() -> None:
    assert reason_of({k: THREE[k] for k in "ab"}) == "too_few_agents"  # 2 x 40% < 100%
    assert reason_of({}) == "too_few_agents"


def test_too_many_agents_for_the_min_weight() -> None:
    rng = np.random.default_rng(0)
    streams = {f"agent{i}": rng.normal(1e-4, 0.01, 100) for i in range(21)}  # 21 x 5% > 100%
    assert reason_of(streams) == "infeasible_bounds"


@pytest.mark.parametrize("lo, hi", [(0.5, 0.4), (-0.1, 0.4), (math.nan, 0.4)])
def test_invalid_bounds(lo: float, hi: float) -> None:
    assert reason_of(THREE, min_weight=lo, max_weight=hi) == "invalid_bounds"


@pytest.mark.parametrize("bars", [0, 1])
def test_too_few_bars(bars: int) -> None:
    assert reason_of({name: values[:bars] for name, values in THREE.items()}) == "too_few_bars"


def test_nan_input_names_agent_and_bar() -> None:
    streams = {name: values.copy() for name, values in THREE.items()}
    streams["b"][7] = math.nan
    streams["c"][9] = math.inf

    with pytest.raises(OptimizationError) as err:
        optimize(streams)

    assert err.value.reason == "nan_input"
    assert "'b'" in str(err.value) and "bar 7" in str(err.value) and "1 more" in str(err.value)


def test_nan_input_in_pandas_names_the_bar_timestamp() -> None:
    frame = pd.DataFrame(THREE, index=pd.date_range("2024-01-01", periods=200, freq="h", tz="UTC"))
    frame.iloc[5, 2] = math.nan

    with pytest.raises(OptimizationError) as err:
        optimize(frame)

    assert err.value.reason == "nan_input"
    assert "'c'" in str(err.value) and "2024-01-01 05:00:00" in str(err.value)


def test_polars_null_counts_as_nan() -> None:
    frame = pl.DataFrame(THREE).with_columns(
        pl.when(pl.int_range(pl.len()) == 3).then(None).otherwise(pl.col("a")).alias("a")
    )
    assert reason_of(frame) == "nan_input"


def test_agent_that_never_traded_makes_covariance_singular() -> None:
    streams = {**THREE, "idle": np.zeros(200)}

    with pytest.raises(OptimizationError) as err:
        optimize(streams)
    assert err.value.reason == "singular_covariance" and "idle" in str(err.value)
    assert reason_of(streams, method="risk_parity") == "singular_covariance"
    assert optimize(streams, method="equal_weight")["idle"] == 0.25  # needs no covariance


def test_duplicate_or_dependent_streams_make_covariance_singular() -> None:
    assert reason_of({**THREE, "copy_of_a": THREE["a"].copy()}) == "singular_covariance"
    assert reason_of({**THREE, "a_plus_b": THREE["a"] + 2 * THREE["b"]}) == "singular_covariance"


def test_fewer_bars_than_agents_makes_covariance_singular() -> None:
    rng = np.random.default_rng(1)
    streams = {f"agent{i}": rng.normal(1e-3, 0.01, 4) for i in range(5)}
    assert reason_of(streams) == "singular_covariance"


def test_non_positive_expected_returns() -> None:
    losing = {name: values - 0.01 for name, values in THREE.items()}

    with pytest.raises(OptimizationError) as err:
        optimize(losing)

    assert err.value.reason == "non_positive_returns"
    assert "all expected returns are non-positive" in str(err.value)
    assert optimize(losing, method="risk_parity")  # the other methods do not need a positive mean


def test_non_positive_when_the_bounds_force_in_losing_agents() -> None:
    streams = correlated_streams(21, [1e-4, -1e-3, -1e-3], [0.004, 0.004, 0.004], bars=300)
    assert optimize(streams, min_weight=0.0, max_weight=1.0)["a"] == pytest.approx(1.0)

    with pytest.raises(OptimizationError) as err:
        optimize(streams, min_weight=0.3, max_weight=0.4)

    assert err.value.reason == "non_positive_returns" and "within bounds" in str(err.value)


def test_risk_free_rate_can_make_excess_returns_non_positive() -> None:
    noisy = correlated_streams(22, [0.0] * 3, [0.004, 0.003, 0.005], bars=300)
    streams = {name: values - values.mean() + 2e-6 for name, values in noisy.items()}  # mean 2e-6
    assert optimize(streams)  # positive without a risk-free rate; 50% a year is 4.6e-5 an hour

    assert reason_of(streams, risk_free=0.5) == "non_positive_returns"


def test_unknown_method() -> None:
    assert reason_of(THREE, method="kelly") == "unknown_method"


@pytest.mark.parametrize(
    "returns, kwargs",
    [
        ({"a": np.zeros(3), "b": np.zeros(4), "c": np.zeros(3)}, {}),  # ragged
        ({"a": ["x", "y"], "b": [1.0, 2.0], "c": [1.0, 2.0]}, {}),  # not numbers
        (pd.DataFrame(np.ones((3, 3)), columns=["a", "a", "b"]), {}),  # duplicate names
        (np.ones((10, 3)), {}),  # no agent names
        (THREE, {"periods_per_year": 0.0}),
        (THREE, {"risk_free": math.nan}),
    ],
)
def test_invalid_input(returns, kwargs) -> None:
    assert reason_of(returns, **kwargs) == "invalid_input"


# --------------------------------------------------------------------------- portfolio_sharpe


def test_portfolio_sharpe_matches_the_definition() -> None:
    r = {"a": np.array([0.01, -0.02, 0.03, 0.005]), "b": np.array([0.0, 0.01, -0.01, 0.02])}
    stream = 0.25 * r["a"] + 0.75 * r["b"]
    expected = stream.mean() / stream.std(ddof=1) * math.sqrt(8760)

    assert portfolio_sharpe(r, {"a": 0.25, "b": 0.75}, HOURLY) == pytest.approx(expected, rel=1e-12)


def test_portfolio_sharpe_with_risk_free_rate() -> None:
    r = {"a": np.array([0.01, -0.02, 0.03, 0.005])}
    rf_bar = 1.04 ** (1 / 365) - 1
    expected = (r["a"].mean() - rf_bar) / r["a"].std(ddof=1) * math.sqrt(365)

    assert portfolio_sharpe(r, {"a": 1.0}, 365.0, risk_free=0.04) == pytest.approx(expected, rel=1e-12)


def test_portfolio_sharpe_undefined_cases() -> None:
    assert portfolio_sharpe({"a": np.array([0.01])}, {"a": 1.0}, HOURLY) is None
    assert portfolio_sharpe({"a": np.full(5, 0.01)}, {"a": 1.0}, HOURLY) is None
    assert portfolio_sharpe({"a": np.zeros(5), "b": np.ones(5)}, {"a": 1.0}, HOURLY) is None  # b unweighted


def test_portfolio_sharpe_reports_improvement_of_the_optimum() -> None:
    streams, lo, hi, _ = MAX_SHARPE_CASES["4 agents, default bounds"]
    current = dict.fromkeys(streams, 0.25)

    new = portfolio_sharpe(streams, optimize(streams), HOURLY)
    old = portfolio_sharpe(streams, current, HOURLY)

    assert new is not None and old is not None and new - old > 0


def test_portfolio_sharpe_refuses_weights_for_unknown_agents() -> None:
    with pytest.raises(OptimizationError) as err:
        portfolio_sharpe(THREE, {"a": 0.5, "ghost": 0.5}, HOURLY)
    assert err.value.reason == "invalid_input" and "ghost" in str(err.value)


# --------------------------------------------------------------------------- eligible_agents


def test_eligible_agents() -> None:
    performance = {
        "rsi": {"sharpe": 1.2, "signal_count": 40},
        "macd": {"sharpe": 0.3, "signal_count": 40},  # not above 0.3
        "sentiment": {"sharpe": 2.0, "signal_count": 9},
        "idle": {"sharpe": None, "signal_count": 0},
        "broken": {"sharpe": math.nan, "signal_count": 12},
        "edge": {"sharpe": 0.3000001, "signal_count": 10},  # exactly 10 signals is enough
        "empty": {},
    }

    eligible, reasons = eligible_agents(performance)

    assert eligible == ["rsi", "edge"]
    assert list(reasons) == ["macd", "sentiment", "idle", "broken", "empty"]
    assert "not above 0.3" in reasons["macd"]
    assert "only 9 signals" in reasons["sentiment"]
    assert "only 0 signals" in reasons["idle"] and "sharpe undefined" in reasons["idle"]
    assert reasons["broken"] == "sharpe undefined"
    assert "only 0 signals" in reasons["empty"] and "sharpe undefined" in reasons["empty"]


def test_eligible_agents_with_custom_thresholds() -> None:
    performance = {"a": {"sharpe": 0.1, "signal_count": 3}, "b": {"sharpe": -0.5, "signal_count": 3}}

    eligible, reasons = eligible_agents(performance, min_signals=3, min_sharpe=0.0)

    assert (eligible, reasons) == (["a"], {"b": "sharpe -0.5 not above 0"})
    assert eligible_agents({}) == ([], {})
