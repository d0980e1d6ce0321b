"""Deciding the next agent weights: eligibility, the method, and what happens when few agents qualify.

Pure. ``agent_weights`` (and the walk-forward engine) call ``decide_weights`` with the window's
traded return streams (``performance.agent_streams``) and performance rows, and record the decision
(old, new, method, expected improvement, reason) in weight_history.

A decision never freezes. With ``k`` eligible agents:

* ``k = 0``: equal weight over every configured agent (the prior: no agent has shown anything);
* ``k`` below what the bounds need (``k x max_weight < 1``): the ineligible are dropped and the
  upper bound becomes ``1 / k`` (the tightest feasible one), so the eligible still share all weight;
* otherwise the method runs within ``[min_weight, max_weight]``.

Only a method that fails on the window (a singular covariance, no positive expected return, too
few bars) keeps the previous weights, with the reason recorded.

Methods: the optimiser's ``max_sharpe``, ``risk_parity`` and ``equal_weight`` over the eligible
agents, and ``hedge``, built for noisy estimates: exponential weights (Hedge, the online
multiplicative-weights rule) on the window's traded streams, ``w_a ~ exp(eta x z_a)`` with
``z_a = sum(r_a) / (sigma x sqrt(n))`` the agent's cumulative return in units of its noise
(``sigma`` pooled over the agents, so ``z`` is a t-statistic and ``eta`` is unit-free), over every
agent with at least ``min_signals`` votes (no Sharpe threshold: weak evidence moves weight a
little, strong evidence a lot), projected onto the bounds. ``eta = 0`` is equal weight.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tradepipe.core.metrics import MIN_DAYS, daily_sharpe
from tradepipe.core.optimizer import OptimizationError, eligible_agents, optimize
from tradepipe.core.performance import streams_table


METHODS = ("max_sharpe", "risk_parity", "equal_weight", "hedge")


@dataclass(frozen=True)
class WeightDecision:
    weights: dict[str, float]
    updated: bool
    reason: str
    eligible: list[str]
    ineligible: dict[str, str]
    expected_sharpe: float | None = None
    current_sharpe: float | None = None
    sharpe_improvement: float | None = None
    return_improvement: float | None = None
    notes: list[str] = field(default_factory=list)


def _window_return(streams: pd.DataFrame, weights: Mapping[str, float]) -> float | None:
    if streams.empty:
        return None
    w = np.array([weights.get(agent, 0.0) for agent in streams.columns])
    return float(np.prod(1.0 + streams.to_numpy(dtype=float) @ w) - 1.0)


def _renormalised(weights: dict[str, float], agents: Sequence[str]) -> dict[str, float]:
    """The current weights over the configured agents, summing to 1: an agent removed from
    TRADEPIPE_AGENTS since they were published must not leave a set that sums to less."""
    total = sum(weights.values())
    if total <= 0:
        return {agent: 1.0 / len(agents) for agent in agents}
    if abs(total - 1.0) <= 1e-12:
        return weights
    return {agent: value / total for agent, value in weights.items()}


def concentration_excess(weights: Mapping[str, Any], max_weight: float) -> list[tuple[str, float]]:
    """Agents holding more than ``max_weight`` (TRADEPIPE_MAX_WEIGHT), largest first.

    A set may exceed it only when too few agents share the weight (``feasible_max_weight``); promoting
    such a concentrated set by hand then needs ``--force``.
    """
    over = [(str(a), float(w)) for a, w in weights.items() if math.isfinite(float(w)) and float(w) > max_weight + 1e-12]
    return sorted(over, key=lambda item: (-item[1], item[0]))


def weight_differences(live: Mapping[str, Any], new: Mapping[str, Any]) -> list[tuple[str, float, float]]:
    """(agent, live weight, new weight) for every agent of either set, alphabetical (missing counts as 0)."""
    return [(a, float(live.get(a, 0.0)), float(new.get(a, 0.0))) for a in sorted(set(live) | set(new))]


def feasible_max_weight(count: int, max_weight: float) -> float:
    """The upper bound used for ``count`` weighted agents: ``max_weight``, raised to ``1 / count``
    when fewer agents than ``1 / max_weight`` share the weight (so they can still sum to 1)."""
    return max(max_weight, 1.0 / count) if count else max_weight


def project_to_bounds(weights: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """The nearest point (Euclidean) to ``weights`` with ``lo <= w <= hi`` and ``sum(w) = 1``:
    ``clip(w - tau, lo, hi)`` with ``tau`` found by bisection (the sum is monotone in ``tau``)."""
    low, high = float(weights.min() - hi), float(weights.max() - lo)
    for _ in range(200):
        tau = 0.5 * (low + high)
        if np.clip(weights - tau, lo, hi).sum() > 1.0:
            if low == tau:  # the bracket no longer moves: the remaining steps would change nothing
                break
            low = tau
        else:
            if high == tau:
                break
            high = tau
    projected = np.clip(weights - 0.5 * (low + high), lo, hi)
    return projected / projected.sum()


def hedge_weights(streams: pd.DataFrame, learning_rate: float, lo: float, hi: float) -> dict[str, float]:
    """Exponential weights on risk-normalised cumulative returns (see the module docstring)."""
    values = streams.to_numpy(dtype=float)
    n = values.shape[0]
    sigma = math.sqrt(float(np.mean(values.var(axis=0, ddof=1)))) if n >= 2 else 0.0
    if not sigma > 0:
        scores = np.zeros(values.shape[1])
    else:
        scores = values.sum(axis=0) / (sigma * math.sqrt(n))
    raw = np.exp(learning_rate * (scores - scores.max()))
    return dict(zip(streams.columns, project_to_bounds(raw / raw.sum(), lo, hi).tolist()))


def method_explanation(method: str, *, learning_rate: float, min_weight: float, max_weight: float, min_signals: int, min_sharpe: float) -> str:
    """Why the method gives the weights it gives, in a trader's words (the weights page and the report).

    For ``hedge`` it says why an agent with negative figures keeps a weight, since that surprises."""
    if method == "hedge":
        return (
            f"hedge (multiplicative weights, eta {learning_rate:g}): each agent with at least {min_signals} votes in the window "
            f"gets w ~ exp(eta x z), z = its traded cumulative return over the window in units of the agents' pooled noise, "
            f"then the weights are fitted into [{min_weight:g}, {max_weight:g}]. The weights are relative, not a verdict: "
            f"every voting agent keeps at least {min_weight:g} (the floor is the exploration share, so an agent that loses "
            f"now is still measured on traded returns and regains weight when it earns it), and with eta {learning_rate:g} "
            f"a z-score 4 units below the best only multiplies an agent's weight by exp(-1) = 0.37 before the bounds. "
            f"When every agent lost in the window they still share the weight (the book's size comes from the votes, "
            f"not from the weights); set TRADEPIPE_OPTIMIZER_METHOD=max_sharpe to drop agents with Sharpe <= {min_sharpe:g}."
        )
    if method == "max_sharpe":
        return (
            f"max_sharpe: agents with at least {min_signals} votes and Sharpe > {min_sharpe:g} share the weight that "
            f"maximises the window's Sharpe within [{min_weight:g}, {max_weight:g}]; the others get 0"
        )
    if method == "risk_parity":
        return f"risk_parity: eligible agents (>= {min_signals} votes, Sharpe > {min_sharpe:g}) weighted by inverse risk within [{min_weight:g}, {max_weight:g}]"
    return f"{method}: eligible agents (>= {min_signals} votes, Sharpe > {min_sharpe:g}) share the weight equally"


def _hedge_rows(rows: dict[str, dict[str, Any]], table: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Hedge reads no Sharpe ratio, only the traded streams: an agent whose stream moved in the window is
    eligible by its votes alone, also while its Sharpe is null for want of days (metrics' daily rule);
    one whose stream stayed constant (it never held a position) stays out, as its Sharpe is undefined."""
    values = table.to_numpy(dtype=float)
    moved = set(table.columns[values.max(axis=0) != values.min(axis=0)]) if len(table) >= 2 else set()
    return {agent: {**row, "sharpe": 0.0 if agent in moved else None} for agent, row in rows.items()}


def _columns(table: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """``table[names]`` (copied, as pandas copies), built from the array: cheaper than pandas' selection."""
    position = {name: k for k, name in enumerate(table.columns)}
    return pd.DataFrame(table.to_numpy(dtype=float)[:, [position[name] for name in names]], index=table.index, columns=list(names))


def _book_sharpe(
    table: pd.DataFrame, weights: Mapping[str, float], periods_per_year: float, risk_free: float, min_days: int
) -> tuple[float | None, str | None]:
    """Sharpe of the book ``sum_a w_a x r_a`` over the window, by the one rule of ``metrics.daily_sharpe``
    (bars shorter than a day: on daily returns, None until enough days), and why it is None."""
    if len(table) < 2:
        return None, f"fewer than 2 bars of returns ({len(table)})"
    stream = table.to_numpy(dtype=float) @ np.array([float(weights.get(agent, 0.0)) for agent in table.columns])
    return daily_sharpe(stream, table.index, periods_per_year, risk_free, min_days)


def decide_weights(
    agents: Sequence[str],
    performance: Mapping[str, Mapping[str, Any]],
    streams: pd.DataFrame,
    current: Mapping[str, float],
    *,
    method: str,
    min_weight: float,
    max_weight: float,
    min_signals: int,
    min_sharpe: float,
    periods_per_year: float,
    risk_free: float = 0.0,
    learning_rate: float = 0.25,
    min_days: int = MIN_DAYS,
) -> WeightDecision:
    """New weights for every agent, or the current ones kept with the reason why.

    Eligible agents (at least ``min_signals`` votes and Sharpe > ``min_sharpe`` in the window; for
    ``hedge`` the votes alone) share the weight within [min_weight, max_weight], the upper bound
    widened to ``1 / k`` for ``k`` eligible agents when the bounds need more; none eligible gives
    equal weight over all agents. Ineligible agents are dropped to weight 0: they keep voting and
    being measured, so they come back when their own stream earns it. A method that fails on the
    window (singular or no positive expected return) keeps the current weights. ``learning_rate``
    is hedge's ``eta``; ``min_days`` the days the expected Sharpe of bars shorter than a day needs.
    """
    table = streams_table(streams, agents) if not streams.empty else pd.DataFrame(columns=list(agents), dtype=float)
    rows = {agent: {"sharpe": performance.get(agent, {}).get("sharpe"), "signal_count": performance.get(agent, {}).get("signal_count", 0)} for agent in agents}
    if method == "hedge":  # no Sharpe threshold: votes and a stream that moved are enough (see _hedge_rows)
        rows = _hedge_rows(rows, table)
    eligible, ineligible = eligible_agents(rows, min_signals=min_signals, min_sharpe=-math.inf if method == "hedge" else min_sharpe)
    current_full = _renormalised({agent: float(current.get(agent, 0.0)) for agent in agents}, agents)
    current_sharpe, _ = _book_sharpe(table, current_full, periods_per_year, risk_free, min_days)
    keep = dict(current_full)
    notes: list[str] = []
    if not eligible:
        new = {agent: 1.0 / len(agents) for agent in agents}
        reason = "equal weight: no eligible agent in the window (the prior until an agent earns weight)"
        return _decision(new, reason, eligible, ineligible, table, current_full, current_sharpe, periods_per_year, risk_free, notes, min_days)
    upper = feasible_max_weight(len(eligible), max_weight)
    if upper > max_weight:
        notes.append(f"{len(eligible)} eligible agent(s) x max_weight {max_weight} < 1: upper bound {upper:.4g}")
    try:
        if method == "hedge":
            if len(table) < 2:
                raise OptimizationError("too_few_bars", f"hedge needs at least 2 bars of returns, got {len(table)}")
            chosen = hedge_weights(_columns(table, eligible), learning_rate, min_weight, upper)
        else:
            chosen = optimize(_columns(table, eligible), method=method, min_weight=min_weight, max_weight=upper, periods_per_year=periods_per_year, risk_free=risk_free)
    except OptimizationError as exc:
        return WeightDecision(keep, False, f"kept previous weights: {exc.reason}: {exc}", eligible, ineligible, current_sharpe=current_sharpe)
    new = {agent: float(chosen.get(agent, 0.0)) for agent in agents}
    reason = f"{method} over {len(eligible)} eligible agent(s)" + (f"; dropped {sorted(ineligible)}" if ineligible else "") + "".join(f"; {n}" for n in notes)
    return _decision(new, reason, eligible, ineligible, table, current_full, current_sharpe, periods_per_year, risk_free, notes, min_days)


def _decision(
    new: dict[str, float],
    reason: str,
    eligible: list[str],
    ineligible: dict[str, str],
    table: pd.DataFrame,
    current_full: dict[str, float],
    current_sharpe: float | None,
    periods_per_year: float,
    risk_free: float,
    notes: list[str],
    min_days: int = MIN_DAYS,
) -> WeightDecision:
    expected, why_none = _book_sharpe(table, new, periods_per_year, risk_free, min_days)
    improvement = None if expected is None or current_sharpe is None else expected - current_sharpe
    if improvement is None and why_none:
        notes = [*notes, f"expected Sharpe improvement not computed: {why_none}"]
    new_return, old_return = _window_return(table, new), _window_return(table, current_full)
    return WeightDecision(
        weights=new,
        updated=True,
        reason=reason,
        eligible=eligible,
        ineligible=ineligible,
        expected_sharpe=expected,
        current_sharpe=current_sharpe,
        sharpe_improvement=improvement,
        return_improvement=None if new_return is None or old_return is None else new_return - old_return,
        notes=notes,
    )


def weight_problems(weights: Mapping[str, Any], agents: set[str], min_weight: float, max_weight: float) -> list[str]:
    """Why a weight set must not be published; empty when it is sound. Weight 0 marks a dropped agent.

    The upper bound is ``feasible_max_weight`` of the number of weighted agents (as decided).

    The rule of the blocking check ``weights_are_sound`` and of every publication (``publish_weights``).
    """
    problems = []
    unknown = sorted(set(weights) - agents)
    if unknown:
        problems.append(f"unknown agents {unknown}")
    values = {k: float(v) for k, v in weights.items()}
    nan = sorted(k for k, v in values.items() if not math.isfinite(v))
    if nan:
        problems.append(f"non-finite weights for {nan}")
    elif abs(sum(values.values()) - 1.0) > 1e-9:
        problems.append(f"weights sum to {sum(values.values())!r}, not 1")
    upper = feasible_max_weight(sum(1 for v in values.values() if v != 0), max_weight)
    out = sorted(k for k, v in values.items() if math.isfinite(v) and v != 0 and not (min_weight - 1e-12 <= v <= upper + 1e-12))
    if out:
        problems.append(f"outside [{min_weight}, {upper:.6g}]: {out}")
    return problems
