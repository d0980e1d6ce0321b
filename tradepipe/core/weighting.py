"""Deciding the next agent weights: eligibility, optimisation, and the keep-previous fallbacks.

Pure. ``agent_weights`` calls ``decide_weights`` with the window's return streams and performance
rows, and records the decision (old, new, method, expected improvement, reason) in weight_history.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd



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
) -> WeightDecision:
    """New weights for every agent, or the current ones kept with the reason why.

    Eligible agents (at least ``min_signals`` votes and Sharpe > ``min_sharpe`` in the window) share
    the weight within [min_weight, max_weight]. Ineligible agents are dropped to weight 0: they keep
    voting and being measured, so they come back when their own stream earns it. With too few
    eligible agents for the bounds, an infeasible or singular problem, or no positive expected
    return, the current weights are kept.
    """
    # Imported here: scipy.optimize costs about a second of import time in every trading-cycle run.
    from tradepipe.core.optimizer import OptimizationError, eligible_agents, optimize, portfolio_sharpe

    rows = {agent: {"sharpe": performance.get(agent, {}).get("sharpe"), "signal_count": performance.get(agent, {}).get("signal_count", 0)} for agent in agents}
    eligible, ineligible = eligible_agents(rows, min_signals=min_signals, min_sharpe=min_sharpe)
    table = streams.reindex(columns=list(agents)).fillna(0.0) if not streams.empty else pd.DataFrame(columns=list(agents), dtype=float)
    current_full = _renormalised({agent: float(current.get(agent, 0.0)) for agent in agents}, agents)
    current_sharpe = portfolio_sharpe(table, current_full, periods_per_year, risk_free) if len(table) >= 2 else None
    keep = dict(current_full)
    if not eligible:
        return WeightDecision(keep, False, "kept previous weights: no eligible agent in the window", eligible, ineligible, current_sharpe=current_sharpe)
    try:
        chosen = optimize(table[eligible], method=method, min_weight=min_weight, max_weight=max_weight, periods_per_year=periods_per_year, risk_free=risk_free)
    except OptimizationError as exc:
        return WeightDecision(keep, False, f"kept previous weights: {exc.reason}: {exc}", eligible, ineligible, current_sharpe=current_sharpe)
    new = {agent: float(chosen.get(agent, 0.0)) for agent in agents}
    expected = portfolio_sharpe(table, new, periods_per_year, risk_free)
    improvement = None if expected is None or current_sharpe is None else expected - current_sharpe
    new_return, old_return = _window_return(table, new), _window_return(table, current_full)
    return WeightDecision(
        weights=new,
        updated=True,
        reason=f"{method} over {len(eligible)} eligible agent(s)" + (f"; dropped {sorted(ineligible)}" if ineligible else ""),
        eligible=eligible,
        ineligible=ineligible,
        expected_sharpe=expected,
        current_sharpe=current_sharpe,
        sharpe_improvement=improvement,
        return_improvement=None if new_return is None or old_return is None else new_return - old_return,
    )


def weight_problems(weights: Mapping[str, Any], agents: set[str], min_weight: float, max_weight: float) -> list[str]:
    """Why a weight set must not be published; empty when it is sound. Weight 0 marks a dropped agent.

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
    out = sorted(k for k, v in values.items() if math.isfinite(v) and v != 0 and not (min_weight - 1e-12 <= v <= max_weight + 1e-12))
    if out:
        problems.append(f"outside [{min_weight}, {max_weight}]: {out}")
    return problems
