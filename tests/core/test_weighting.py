"""decide_weights: who shares the weight, the keep-previous fallbacks, and the recorded improvement.

The expected Sharpe improvement and return improvement are recomputed here with plain numpy and
pandas, independently of tradepipe.core.metrics: on hourly bars the Sharpe ratios behind the expected
improvement are those of the daily returns (changed from per-bar ratios annualised with 8760 bars,
which read 223 on a short window of one-minute bars), and are None until 14 days exist.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tradepipe.core.timeframes import periods_per_year
from tradepipe.core.weighting import WeightDecision, decide_weights, project_to_bounds

PPY = periods_per_year("1h")  # 8760
AGENTS = ["momentum", "trend", "mean_reversion", "breakout", "sentiment"]
EQUAL = {agent: 1 / len(AGENTS) for agent in AGENTS}
BOUNDS = {"min_weight": 0.05, "max_weight": 0.40}
ELIGIBILITY = {"min_signals": 10, "min_sharpe": 0.3}


def streams(seed: int = 3, bars: int = 500, agents: list[str] = AGENTS, means: list[float] | None = None) -> pd.DataFrame:
    """Seeded per-bar agent returns, mildly correlated, hourly scale."""
    rng = np.random.default_rng(seed)
    n = len(agents)
    mu = np.array(means if means is not None else np.linspace(2e-4, 6e-4, n))
    vol = np.linspace(2e-3, 6e-3, n)
    common = rng.normal(0, 1, (bars, 1))
    noise = rng.normal(0, 1, (bars, n))
    values = mu + vol * (0.3 * common + math.sqrt(1 - 0.09) * noise)
    index = pd.date_range("2026-01-01", periods=bars, freq="h", tz="UTC")
    return pd.DataFrame(values, columns=agents, index=index)


def performance(sharpe: dict[str, float | None], signals: dict[str, int] | None = None) -> dict[str, dict]:
    return {a: {"sharpe": s, "signal_count": (signals or {}).get(a, 50)} for a, s in sharpe.items()}


def decide(perf: dict, table: pd.DataFrame, current: dict[str, float] = EQUAL, method: str = "max_sharpe", **overrides) -> WeightDecision:
    kwargs = {**BOUNDS, **ELIGIBILITY, "periods_per_year": PPY, **overrides}
    return decide_weights(AGENTS, perf, table, current, method=method, **kwargs)


def bar_sharpe(table: pd.DataFrame, weights: dict[str, float], ppy: float = PPY) -> float:
    """docs/architecture.md: mean(r) / std(r, ddof=1) * sqrt(periods_per_year) of the weighted stream (rf = 0):
    what max_sharpe maximises."""
    r = sum(table[a].to_numpy() * w for a, w in weights.items() if a in table)
    return float(np.mean(r) / np.std(r, ddof=1) * math.sqrt(ppy))


def reference_sharpe(table: pd.DataFrame, weights: dict[str, float]) -> float:
    """The Sharpe a trader is shown for hourly bars: the weighted stream compounded per UTC day,
    mean / std(ddof=1) x sqrt(365)."""
    r = sum(table[a] * w for a, w in weights.items() if a in table)
    daily = (1 + r).groupby(r.index.floor("D")).prod() - 1
    assert len(daily) >= 14
    return float(daily.mean() / daily.std(ddof=1) * math.sqrt(365))


def reference_return(table: pd.DataFrame, weights: dict[str, float]) -> float:
    r = sum(table[a].to_numpy() * w for a, w in weights.items() if a in table)
    return float(np.prod(1 + r) - 1)


def assert_kept(decision: WeightDecision, current: dict[str, float], reason_part: str) -> None:
    assert decision.updated is False
    assert decision.weights == {a: float(current.get(a, 0.0)) for a in AGENTS}
    assert "kept previous weights" in decision.reason
    assert reason_part in decision.reason
    assert decision.sharpe_improvement is None and decision.expected_sharpe is None


# --------------------------------------------------------------------------- new weights


@pytest.mark.parametrize("method", ["max_sharpe", "risk_parity", "equal_weight"])
def test_eligible_agents_share_the_weight_within_bounds_and_the_rest_are_dropped(method: str) -> None:
    table = streams()
    perf = performance(
        {"momentum": 1.2, "trend": 2.0, "mean_reversion": 0.9, "breakout": 0.1, "sentiment": 1.5},
        signals={"sentiment": 4},
    )
    decision = decide(perf, table, method=method)

    assert decision.updated is True
    assert list(decision.weights) == AGENTS  # every agent has a weight, dropped ones 0
    assert decision.eligible == ["momentum", "trend", "mean_reversion"]
    assert decision.weights["breakout"] == 0.0 and decision.weights["sentiment"] == 0.0
    kept = [decision.weights[a] for a in decision.eligible]
    assert all(0.05 - 1e-12 <= w <= 0.40 + 1e-12 for w in kept), decision.weights
    assert math.fsum(decision.weights.values()) == pytest.approx(1.0, abs=1e-12)
    # the reasons name each rule an agent failed
    assert set(decision.ineligible) == {"breakout", "sentiment"}
    assert "sharpe 0.1 not above 0.3" in decision.ineligible["breakout"]
    assert "only 4 signals (needs at least 10)" in decision.ineligible["sentiment"]
    assert method in decision.reason and "3 eligible" in decision.reason
    assert "breakout" in decision.reason and "sentiment" in decision.reason
    if method == "equal_weight":
        assert kept == pytest.approx([1 / 3] * 3, abs=1e-15)


def test_missing_undefined_or_nan_performance_makes_an_agent_ineligible() -> None:
    table = streams()
    perf = {
        "momentum": {"sharpe": 1.0, "signal_count": 50},
        "trend": {"sharpe": 1.0, "signal_count": 50},
        "mean_reversion": {"sharpe": 1.0, "signal_count": 50},
        "breakout": {"sharpe": None, "signal_count": 50},
        "sentiment": {"sharpe": float("nan"), "signal_count": None},
        "retired_agent": {"sharpe": 9.0, "signal_count": 500},  # not configured: ignored
    }
    decision = decide(perf, table, method="risk_parity")
    assert decision.updated
    assert decision.eligible == ["momentum", "trend", "mean_reversion"]
    assert decision.ineligible["breakout"] == "sharpe undefined"
    assert "only 0 signals" in decision.ineligible["sentiment"] and "sharpe undefined" in decision.ineligible["sentiment"]
    assert "retired_agent" not in decision.weights

    no_rows = decide({}, table)  # equal weight, no longer the kept previous weights
    assert no_rows.updated and no_rows.weights == EQUAL and "no eligible agent" in no_rows.reason
    assert set(no_rows.ineligible) == set(AGENTS)


def test_threshold_is_strictly_above_min_sharpe_and_at_least_min_signals() -> None:
    table = streams()
    perf = performance({"momentum": 0.3, "trend": 0.31, "mean_reversion": 1.0, "breakout": 1.0, "sentiment": 1.0},
                       signals={"breakout": 10, "sentiment": 9})
    decision = decide(perf, table, method="equal_weight")
    assert decision.eligible == ["trend", "mean_reversion", "breakout"]
    assert set(decision.ineligible) == {"momentum", "sentiment"}


def test_expected_improvement_is_new_minus_current_sharpe_on_the_same_window() -> None:
    table = streams(seed=11)
    perf = performance({a: 1.0 for a in AGENTS})
    current = {"momentum": 0.5, "trend": 0.2, "mean_reversion": 0.1, "breakout": 0.1, "sentiment": 0.1}
    decision = decide(perf, table, current=current, method="max_sharpe")

    assert decision.updated
    new_sharpe, old_sharpe = reference_sharpe(table, decision.weights), reference_sharpe(table, current)
    assert decision.expected_sharpe == pytest.approx(new_sharpe, rel=1e-9)
    assert decision.current_sharpe == pytest.approx(old_sharpe, rel=1e-9)
    assert decision.sharpe_improvement == pytest.approx(new_sharpe - old_sharpe, rel=1e-9, abs=1e-9)
    assert bar_sharpe(table, decision.weights) > bar_sharpe(table, current)  # max Sharpe (per bar) cannot do worse
    expected_return = reference_return(table, decision.weights) - reference_return(table, current)
    assert decision.return_improvement == pytest.approx(expected_return, rel=1e-9, abs=1e-15)


def test_max_sharpe_beats_every_other_feasible_weighting_on_the_window() -> None:
    table = streams(seed=5)
    perf = performance({a: 1.0 for a in AGENTS})
    best = decide(perf, table, method="max_sharpe")
    rng = np.random.default_rng(0)
    for _ in range(300):
        w = rng.dirichlet(np.ones(len(AGENTS)))
        w = np.clip(w, 0.05, 0.40)
        w = w / w.sum()
        if w.min() < 0.05 - 1e-12 or w.max() > 0.40 + 1e-12:
            continue
        assert bar_sharpe(table, dict(zip(AGENTS, w))) <= bar_sharpe(table, best.weights) + 1e-9


def test_current_weights_of_unknown_or_missing_agents_count_as_zero() -> None:
    table = streams(seed=2)
    perf = performance({a: 1.0 for a in AGENTS})
    current = {"momentum": 0.6, "trend": 0.4, "retired_agent": 0.5}
    decision = decide(perf, table, current=current, method="risk_parity")
    assert decision.current_sharpe == pytest.approx(reference_sharpe(table, {"momentum": 0.6, "trend": 0.4}), rel=1e-9)
    singular = table.assign(breakout=table["trend"])  # the method fails on the window: current weights kept
    kept = decide(perf, singular, current=current)
    assert kept.weights == {"momentum": 0.6, "trend": 0.4, "mean_reversion": 0.0, "breakout": 0.0, "sentiment": 0.0}


def test_the_expected_improvement_of_hourly_bars_waits_for_14_days_and_says_why() -> None:
    table = streams(seed=11, bars=13 * 24)  # 13 days of hourly returns
    decision = decide(performance({a: 1.0 for a in AGENTS}), table, method="max_sharpe")
    assert decision.updated
    assert decision.expected_sharpe is None and decision.current_sharpe is None and decision.sharpe_improvement is None
    assert any("fewer than 14 days of returns (13)" in note for note in decision.notes)


def test_same_inputs_give_identical_weights() -> None:
    table = streams(seed=8)
    perf = performance({a: 1.0 for a in AGENTS})
    for method in ("max_sharpe", "risk_parity"):
        first = decide(perf, table, method=method)
        second = decide(perf, table.copy(), method=method)
        assert first.weights == second.weights  # exact, not approximately


# --------------------------------------------------------------------------- keep the previous weights


def test_fewer_eligible_agents_than_the_bounds_need_share_all_weight_under_a_feasible_bound() -> None:
    # changed this: the previous weights were kept (for 17 months on real data); now the
    # ineligible are dropped and the upper bound widens to 1 / k, so the decision acts.
    table = streams()
    perf = performance({"momentum": 1.5, "trend": 2.0, "mean_reversion": 0.1, "breakout": -1.0, "sentiment": None})
    current = {"momentum": 0.1, "trend": 0.3, "mean_reversion": 0.2, "breakout": 0.2, "sentiment": 0.2}
    decision = decide(perf, table, current=current)  # 2 eligible x max 0.4 = 0.8 < 1

    assert decision.updated
    assert decision.eligible == ["momentum", "trend"]
    assert set(decision.ineligible) == {"mean_reversion", "breakout", "sentiment"}
    assert decision.weights["momentum"] + decision.weights["trend"] == pytest.approx(1.0, abs=1e-12)
    assert all(0.05 - 1e-12 <= decision.weights[a] <= 0.5 + 1e-12 for a in ("momentum", "trend"))
    assert decision.weights["mean_reversion"] == decision.weights["breakout"] == decision.weights["sentiment"] == 0.0
    assert "upper bound 0.5" in decision.reason
    assert decision.current_sharpe == pytest.approx(reference_sharpe(table, current), rel=1e-9)
    assert decision.expected_sharpe == pytest.approx(reference_sharpe(table, decision.weights), rel=1e-9)
    # the same two agents with max_weight 0.5 given: the same weights
    wider = decide(perf, table, current=current, max_weight=0.5)
    assert wider.weights == pytest.approx(decision.weights, abs=1e-9)
    # a single eligible agent takes it all
    alone = decide(performance({"momentum": 1.5, "trend": 0.0, "mean_reversion": 0.1, "breakout": -1.0, "sentiment": None}), table, current=current)
    assert alone.weights == {"momentum": 1.0, "trend": 0.0, "mean_reversion": 0.0, "breakout": 0.0, "sentiment": 0.0}


def test_no_eligible_agent_returns_to_equal_weight() -> None:
    # changed this: "no eligible agent" kept the previous weights indefinitely.
    losing = streams(seed=4, means=[-3e-4] * len(AGENTS))
    perf = performance({a: -2.0 for a in AGENTS})
    current = {"momentum": 0.4, "trend": 0.3, "mean_reversion": 0.1, "breakout": 0.1, "sentiment": 0.1}
    decision = decide(perf, losing, current=current)
    assert decision.updated and decision.weights == EQUAL
    assert "no eligible agent" in decision.reason
    assert decision.sharpe_improvement == pytest.approx(reference_sharpe(losing, EQUAL) - reference_sharpe(losing, current), rel=1e-9)

    # if the threshold lets them in, max Sharpe refuses a portfolio with no positive return: the
    # method failed on the window, so the previous weights are kept with the reason
    permissive = decide(perf, losing, min_sharpe=-100.0)
    assert_kept(permissive, EQUAL, "non_positive_returns")
    assert permissive.eligible == AGENTS


def test_singular_covariance_keeps_the_previous_weights() -> None:
    table = streams(seed=6)
    table["breakout"] = table["trend"]  # two agents that always agree
    perf = performance({a: 1.0 for a in AGENTS})
    current = {"momentum": 0.4, "trend": 0.3, "mean_reversion": 0.1, "breakout": 0.1, "sentiment": 0.1}
    for method in ("max_sharpe", "risk_parity"):
        assert_kept(decide(perf, table, current=current, method=method), current, "singular_covariance")


def test_an_eligible_agent_without_a_return_stream_is_a_constant_zero_stream() -> None:
    table = streams(seed=6).drop(columns=["breakout"])
    perf = performance({a: 1.0 for a in AGENTS})
    assert_kept(decide(perf, table, method="risk_parity"), EQUAL, "singular_covariance")


def test_no_return_bars_keeps_the_previous_weights() -> None:
    perf = performance({a: 1.0 for a in AGENTS})
    decision = decide(perf, pd.DataFrame(dtype=float))
    assert_kept(decision, EQUAL, "too_few_bars")
    assert decision.current_sharpe is None


# --------------------------------------------------------------------------- hedge


def test_hedge_is_softmax_of_the_risk_normalised_cumulative_return_within_bounds() -> None:
    table = streams(seed=8, bars=720)
    perf = {a: {"sharpe": 0.1, "signal_count": 50} for a in AGENTS}  # hedge needs votes, not a Sharpe above 0.3
    decision = decide(perf, table, method="hedge", learning_rate=0.5)
    values = table.to_numpy()
    sigma = math.sqrt(np.mean(values.var(axis=0, ddof=1)))
    z = values.sum(axis=0) / (sigma * math.sqrt(len(values)))
    raw = np.exp(0.5 * z) / np.exp(0.5 * z).sum()
    assert np.all((raw > 0.05) & (raw < 0.4))  # bounds do not bind here: the softmax itself
    assert [decision.weights[a] for a in AGENTS] == pytest.approx(raw.tolist(), rel=1e-9)
    assert decision.updated and decision.eligible == AGENTS
    # eta = 0 is equal weight; a large eta piles weight on the best agent up to max_weight
    assert decide(perf, table, method="hedge", learning_rate=0.0).weights == pytest.approx(EQUAL)
    greedy = decide(perf, table, method="hedge", learning_rate=50.0).weights
    best = AGENTS[int(np.argmax(z))]
    assert greedy[best] == pytest.approx(0.4, abs=1e-9)
    assert min(greedy.values()) >= 0.05 - 1e-12 and sum(greedy.values()) == pytest.approx(1.0, abs=1e-12)


def test_hedge_drops_agents_with_too_few_votes_and_never_freezes() -> None:
    table = streams(seed=9)
    perf = {a: {"sharpe": -5.0, "signal_count": 3 if a in ("sentiment", "breakout") else 50} for a in AGENTS}
    decision = decide(perf, table, method="hedge")
    assert decision.updated
    assert decision.weights["sentiment"] == decision.weights["breakout"] == 0.0
    assert sum(decision.weights[a] for a in ("momentum", "trend", "mean_reversion")) == pytest.approx(1.0, abs=1e-12)


def test_weight_problems_accepts_the_feasible_bound_of_few_agents_only() -> None:
    from tradepipe.core.weighting import weight_problems

    agents = set(AGENTS)
    assert weight_problems({"momentum": 0.6, "trend": 0.4, "breakout": 0.0}, agents, 0.05, 0.4) != []  # 2 agents: bound 0.5
    assert weight_problems({"momentum": 0.5, "trend": 0.5}, agents, 0.05, 0.4) == []
    assert weight_problems({"momentum": 1.0}, agents, 0.05, 0.4) == []
    assert weight_problems({"momentum": 0.5, "trend": 0.3, "breakout": 0.2}, agents, 0.05, 0.4) != []  # 3 agents: 0.4 holds


def test_hedge_weights_agents_by_their_streams_while_their_sharpe_waits_for_14_days() -> None:
    table = streams(seed=11, bars=13 * 24)  # 13 days: every Sharpe is null under the daily rule
    table["sentiment"] = 0.0  # never held a position: its stream did not move
    perf = performance({a: None for a in AGENTS})
    decision = decide(perf, table, method="hedge")
    assert decision.updated and decision.reason.startswith("hedge over 4 eligible agent(s)")
    assert decision.eligible == ["momentum", "trend", "mean_reversion", "breakout"]
    assert decision.ineligible == {"sentiment": "sharpe undefined"}
    assert decision.weights["breakout"] > decision.weights["momentum"]  # the larger mean return earns more weight


def _project_all_steps(weights: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """project_to_bounds as first written: all 200 bisection steps, no early stop."""
    low, high = float(weights.min() - hi), float(weights.max() - lo)
    for _ in range(200):
        tau = 0.5 * (low + high)
        if np.clip(weights - tau, lo, hi).sum() > 1.0:
            low = tau
        else:
            high = tau
    projected = np.clip(weights - 0.5 * (low + high), lo, hi)
    return projected / projected.sum()


def test_projection_stops_early_with_the_same_result() -> None:
    """The bisection stops once its bracket stops moving; the weights are those of all 200 steps, to the bit."""
    rng = np.random.default_rng(11)
    for _ in range(500):
        n = int(rng.integers(1, 9))
        raw = rng.exponential(1.0, n)
        weights = raw / raw.sum()
        lo = float(rng.choice([0.0, 0.02, 0.05]))
        hi = max(float(rng.choice([0.3, 0.4, 0.6, 1.0])), 1.0 / n)
        assert np.array_equal(project_to_bounds(weights, lo, hi), _project_all_steps(weights, lo, hi))
