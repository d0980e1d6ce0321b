"""Selection among many tried variants, corrected for the number tried, and the pool's rules. Pure.

* :func:`expected_max_sharpe` and :func:`deflated_sharpe` (Bailey and Lopez de Prado, "The Deflated
  Sharpe Ratio", 2014): the probability that the observed Sharpe ratio beats the best Sharpe ratio that
  ``trials`` independent strategies without skill would show, with the observed skewness and kurtosis.
  Sharpe ratios are per period (not annualised), as in the paper's formulas.
* :func:`pbo_cscv` (Bailey, Borwein, Lopez de Prado and Zhu, "The Probability of Backtest Overfitting",
  2017): combinatorially symmetric cross-validation of the "pick the best in-sample" rule.
* :func:`promotion_decisions` and :func:`retirement_decisions`: the documented rules that move a
  candidate into the live pool and a decaying member out of it. A human promotion runs
  :func:`promotion_check` too.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import norm

EULER_GAMMA = 0.5772156649015329


def expected_max_sharpe(trials: int, sharpe_variance: float) -> float:
    """E[max of ``trials`` Sharpe ratios of skill-less strategies] (the paper's SR_0, per period):
    ``sqrt(V) ((1 - g) Z(1 - 1/N) + g Z(1 - 1/(N e)))``, g = Euler-Mascheroni."""
    if trials < 1:
        raise ValueError(f"trials must be at least 1, got {trials}")
    if trials == 1 or sharpe_variance <= 0:
        return 0.0
    return math.sqrt(sharpe_variance) * (
        (1.0 - EULER_GAMMA) * norm.ppf(1.0 - 1.0 / trials) + EULER_GAMMA * norm.ppf(1.0 - 1.0 / (trials * math.e))
    )


def probabilistic_sharpe(sharpe: float, benchmark: float, observations: int, skew: float, kurtosis: float) -> float:
    """PSR: P[true Sharpe > benchmark] given ``observations`` returns with that skew and (non-excess) kurtosis."""
    if observations < 2:
        return 0.0
    denominator = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if denominator <= 0:
        return 0.0
    return float(norm.cdf((sharpe - benchmark) * math.sqrt(observations - 1) / math.sqrt(denominator)))


def deflated_sharpe(sharpe: float, observations: int, skew: float, kurtosis: float, trials: int, sharpe_variance: float) -> float:
    """DSR = PSR against the expected maximum Sharpe of ``trials`` trials (all per period)."""
    return probabilistic_sharpe(sharpe, expected_max_sharpe(trials, sharpe_variance), observations, skew, kurtosis)


def pbo_cscv(returns: np.ndarray, blocks: int = 16) -> dict[str, Any]:
    """Probability of backtest overfitting of choosing the best-Sharpe column of ``returns`` (T x N).

    The rows are cut into ``blocks`` (even) equal parts; for every half of the parts as in-sample (the
    rest out-of-sample, C(S, S/2) splits) the in-sample best column's out-of-sample relative rank
    ``w = rank / (N + 1)`` gives the logit ``log(w / (1 - w))``; PBO is the share of splits whose logit
    is at most 0 (the chosen one is no better than the median out of sample).
    """
    matrix = np.nan_to_num(np.asarray(returns, dtype=float))
    if matrix.ndim != 2 or matrix.shape[1] < 2:
        raise ValueError("PBO needs a T x N matrix with at least 2 strategies")
    if blocks < 2 or blocks % 2:
        raise ValueError(f"blocks must be an even number >= 2, got {blocks}")
    rows = matrix.shape[0] - matrix.shape[0] % blocks
    if rows < blocks * 2:
        raise ValueError(f"PBO needs at least {blocks * 2} rows for {blocks} blocks, got {matrix.shape[0]}")
    parts = matrix[:rows].reshape(blocks, rows // blocks, matrix.shape[1])
    n = matrix.shape[1]
    # Per block sums of r and r^2: a split's Sharpe ratios come from adding blocks, not re-reading rows.
    sums, squares, size = parts.sum(axis=1), (parts * parts).sum(axis=1), rows // blocks
    logits = []
    for chosen in itertools.combinations(range(blocks), blocks // 2):
        rest = [b for b in range(blocks) if b not in chosen]
        in_sample = _sharpe_from_sums(sums[list(chosen)].sum(axis=0), squares[list(chosen)].sum(axis=0), size * len(chosen))
        out_sample = _sharpe_from_sums(sums[rest].sum(axis=0), squares[rest].sum(axis=0), size * len(rest))
        best = int(np.argmax(in_sample))
        rank = 1 + int(np.sum(out_sample < out_sample[best])) + 0.5 * int(np.sum(out_sample == out_sample[best]) - 1)
        w = rank / (n + 1)
        logits.append(math.log(w / (1.0 - w)))
    values = np.array(logits)
    return {"pbo": float(np.mean(values <= 0.0)), "splits": int(values.size), "logit_median": float(np.median(values))}


def _sharpe_from_sums(total: np.ndarray, squares: np.ndarray, count: int) -> np.ndarray:
    mean = total / count
    variance = np.maximum((squares - total * mean) / (count - 1), 0.0)
    std = np.sqrt(variance)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(std > 1e-15, mean / std, 0.0)


# --------------------------------------------------------------------------- the pool's rules


@dataclass(frozen=True)
class PoolRules:
    """Promotion: DSR at least ``min_dsr`` against every variant tried so far, at least ``min_trades``
    holding periods (entries from cash: a book flipping long to short counts once), the generation's PBO at most ``max_pbo``, at most ``max_pool`` members (a better
    candidate replaces the weakest). Retirement: the member's Sharpe over the last ``decay_days`` below
    ``retire_sharpe`` (annualised)."""

    min_dsr: float = 0.95
    min_trades: int = 3
    max_pbo: float = 0.5
    max_pool: int = 5
    retire_sharpe: float = 0.0
    decay_days: int = 60

    def __post_init__(self) -> None:
        if not (0 <= self.min_dsr <= 1 and 0 <= self.max_pbo <= 1 and self.max_pool >= 1 and self.min_trades >= 0 and self.decay_days >= 1):
            raise ValueError(f"PoolRules out of range: {self}")


@dataclass(frozen=True)
class Evaluation:
    """One candidate's figures on the bars before the decision (what the table and the asset record)."""

    name: str
    sharpe: float  # annualised
    deflated_sharpe: float
    trades: int
    trials: int
    pbo: float
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PoolChange:
    name: str
    action: str  # promote | retire | reject
    reason: str


def null_sharpe_variance(observations: int) -> float:
    """The variance of a per-period Sharpe estimate near 0 over ``observations`` returns, ``1 / (T - 1)``
    (Lo 2002): the trials' Sharpe variance under the null of no skill, which the loop deflates against
    (docs/self-improvement.md says why not the cross-sectional variance)."""
    return 1.0 / max(observations - 1, 1)


def judge(name: str, figures: Mapping[str, Any], column: int, observations: int, trials: int, pbo: float | None) -> Evaluation:
    """Column ``column`` of ``evaluation.stream_figures`` as an :class:`Evaluation`: annualised Sharpe,
    deflated Sharpe against ``trials`` tries, holding periods, and the selection's PBO (unknown: 1.0,
    which no rule accepts)."""
    sharpe = float(np.nan_to_num(figures["sharpe"][column]))
    dsr = deflated_sharpe(
        float(figures["sharpe_per_period"][column]), observations, float(figures["skew"][column]), float(figures["kurtosis"][column]),
        trials, null_sharpe_variance(observations),
    )
    return Evaluation(name, sharpe, dsr, int(figures["holding_periods"][column]), trials, 1.0 if pbo is None else pbo)


def recorded_evaluation(name: str, metrics: Mapping[str, Any], deflated_sharpe: float | None, trials: int | None, pbo: float | None) -> Evaluation:
    """A ``strategy_variants`` row's recorded figures as the :class:`Evaluation` the rules read: the one
    form ``live_pool`` and ``tradepipe variants promote`` both check (an unknown PBO is 1.0, which no
    rule accepts)."""
    return Evaluation(
        name, float(metrics.get("sharpe") or 0.0), float(deflated_sharpe or 0.0), int(metrics.get("trades") or 0), int(trials or 0),
        1.0 if pbo is None else float(pbo),
    )


def promotion_check(candidate: Evaluation, rules: PoolRules) -> str | None:
    """Why ``candidate`` may not join the pool (None: it may). The same check for a human and the loop."""
    if not candidate.deflated_sharpe >= rules.min_dsr:
        return f"deflated Sharpe {candidate.deflated_sharpe:.3f} below {rules.min_dsr:.2f} ({candidate.trials} trials)"
    if candidate.trades < rules.min_trades:
        return f"{candidate.trades} trades, fewer than {rules.min_trades}"
    if not candidate.pbo <= rules.max_pbo:
        return f"the selection's PBO {candidate.pbo:.2f} above {rules.max_pbo:.2f}"
    return None


def promotion_decisions(pool: Mapping[str, float], candidates: Sequence[Evaluation], rules: PoolRules) -> list[PoolChange]:
    """Changes to ``pool`` (member -> its current deflated Sharpe): passing candidates by deflated Sharpe,
    best first, join while there is room or while they beat the weakest member (who is retired)."""
    members = dict(pool)
    changes: list[PoolChange] = []
    ranked = sorted(candidates, key=lambda c: (-c.deflated_sharpe, -c.sharpe, c.name))
    for candidate in ranked:
        if candidate.name in members:
            continue
        problem = promotion_check(candidate, rules)
        if problem:
            changes.append(PoolChange(candidate.name, "reject", problem))
            continue
        if len(members) >= rules.max_pool:
            weakest = min(members, key=lambda m: (members[m], m))
            if members[weakest] >= candidate.deflated_sharpe:
                changes.append(PoolChange(candidate.name, "reject", f"pool full ({rules.max_pool}) and no weaker member"))
                continue
            weakest_dsr = members.pop(weakest)
            changes.append(PoolChange(weakest, "retire", f"replaced by {candidate.name} (deflated Sharpe {weakest_dsr:.3f} < {candidate.deflated_sharpe:.3f})"))
        members[candidate.name] = candidate.deflated_sharpe
        changes.append(PoolChange(candidate.name, "promote", f"deflated Sharpe {candidate.deflated_sharpe:.3f} over {candidate.trials} trials, {candidate.trades} trades, PBO {candidate.pbo:.2f}"))
    return changes


def retirement_decisions(recent_sharpe: Mapping[str, float | None], rules: PoolRules) -> list[PoolChange]:
    """Members whose annualised Sharpe over the last ``decay_days`` fell below ``retire_sharpe``."""
    return [
        PoolChange(name, "retire", f"Sharpe {sharpe:+.2f} over the last {rules.decay_days} days below {rules.retire_sharpe:+.2f}")
        for name, sharpe in sorted(recent_sharpe.items())
        if sharpe is not None and sharpe < rules.retire_sharpe
    ]


def select_generation(pool: Mapping[str, float], recent_sharpe: Mapping[str, float | None], candidates: Sequence[Evaluation], rules: PoolRules) -> list[PoolChange]:
    """One selection: decayed members retire first, then candidates are promoted into the room left
    (``pool``: member -> its deflated Sharpe; ``recent_sharpe``: member -> Sharpe over ``decay_days``)."""
    changes = retirement_decisions(recent_sharpe, rules)
    retired = {c.name for c in changes}
    return changes + promotion_decisions({name: dsr for name, dsr in pool.items() if name not in retired}, candidates, rules)


__all__ = [
    "EULER_GAMMA",
    "Evaluation",
    "PoolChange",
    "PoolRules",
    "deflated_sharpe",
    "expected_max_sharpe",
    "judge",
    "null_sharpe_variance",
    "pbo_cscv",
    "probabilistic_sharpe",
    "promotion_check",
    "promotion_decisions",
    "recorded_evaluation",
    "retirement_decisions",
    "select_generation",
]
