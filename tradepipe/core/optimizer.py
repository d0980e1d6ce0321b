"""Agent-weight optimiser: maximum Sharpe, risk parity and equal weight under weight bounds.

Pure functions, no Dagster and no I/O. The input is a bars x agents table of per-bar returns
(what following each agent's signal alone would have earned, see docs/architecture.md); the output is a
weight per agent, in the table's column order, summing to 1 within 1e-12 and inside
``[min_weight, max_weight]`` within 1e-12.

Definitions (docs/architecture.md, "Definitions to match exactly"): the per-period risk-free rate is
``(1 + risk_free) ** (1 / periods_per_year) - 1``; Sharpe is
``mean(r - rf) / std(r, ddof=1) * sqrt(periods_per_year)``; the covariance is the sample
covariance (ddof=1), so the portfolio's std is ``sqrt(w' cov w)`` exactly.

Methods
-------
``max_sharpe``
    The global constrained optimum of Sharpe. Maximising a ratio is not convex in ``w``, so we
    solve the Cornuejols-Tütüncü reformulation, a convex QP in ``y = kappa * w``::

        minimise y' cov y   subject to  mu' y = 1,  kappa * min <= y_i <= kappa * max,
                                        sum(y) = kappa >= 0,                 w = y / kappa

    (``kappa`` is eliminated as ``sum(y)``). It is valid only when some feasible portfolio has
    a positive expected excess return. SLSQP (analytic gradient and constraint Jacobians)
    solves it; the active set it finds is then solved exactly by one KKT linear system
    ("polish", pinning bound weights exactly on the bound); and the result is certified:
    Sharpe is pseudo-concave on ``mu'w > 0``, so a point with no first-order ascent direction
    inside the bounded simplex (Frank-Wolfe gap <= 1e-9 relative, typically ~1e-15) is the
    global optimum. A point that fails the certificate goes to trust-constr as a fallback; if
    that fails too we raise ``solver_failed`` rather than return weights that are not optimal.
``risk_parity``
    Equal risk contributions ``w_i (cov w)_i``. Without binding bounds this is Spinu's convex
    problem ``min 1/2 x' cov x - sum(b_i log x_i)``, normalised (Newton, exact to ~1e-14).
    When the equal-risk weights fall outside the bounds we use Richard & Roncalli's
    constrained risk budgeting (2019): ``min 1/2 x' cov x - lam * sum(b_i log x_i)`` over the
    box ``min <= x_i <= max`` with ``lam`` chosen so that ``sum(x) = 1``. Agents at a bound sit
    exactly on it, and **the agents not at a bound keep equal risk contributions among
    themselves** (their KKT condition is ``x_i (cov x)_i = lam * b_i``). An agent pinned at
    ``max`` has a smaller contribution than the rest (it would take more), one pinned at ``min``
    a larger one. Edge case: when the lower bounds nearly exhaust the budget and an agent
    hedges the others, no such ``lam`` exists and the minimum-variance portfolio within the
    bounds is returned (the limit of the constrained solution as ``lam -> 0``).
``equal_weight``
    ``1 / n`` each (feasible whenever the bounds are).

Degenerate input is refused with :class:`OptimizationError` (a ``ValueError``) whose ``reason``
is machine-readable, so the caller can keep the previous weights and record why. A singular
covariance is refused rather than regularised (max_sharpe and risk_parity; equal_weight needs
no covariance): a constant stream, typically an agent that never traded, has no risk to
budget and unbounded Sharpe if its mean is positive, and linearly dependent streams (a
duplicated agent, or fewer bars than agents) make the split between them arbitrary. The
caller should drop those agents (``eligible_agents`` already drops agents without signals).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias

import numpy as np
from numpy.typing import ArrayLike, NDArray

# scipy.optimize (about a second to import) is imported by the functions that solve with it: hedge,
# eligibility and a trading cycle never need it.

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

__all__ = [
    "METHODS",
    "Method",
    "OptimizationError",
    "Reason",
    "ReturnsTable",
    "eligible_agents",
    "optimize",
    "portfolio_sharpe",
]

Vector: TypeAlias = NDArray[np.float64]
Matrix: TypeAlias = NDArray[np.float64]
ReturnsTable: TypeAlias = "pd.DataFrame | pl.DataFrame | Mapping[str, ArrayLike]"
Method: TypeAlias = Literal["max_sharpe", "risk_parity", "equal_weight"]
Reason: TypeAlias = Literal[
    "too_few_agents",
    "too_few_bars",
    "infeasible_bounds",
    "invalid_bounds",
    "invalid_input",
    "nan_input",
    "singular_covariance",
    "non_positive_returns",
    "unknown_method",
    "solver_failed",
]

METHODS: tuple[Method, ...] = ("max_sharpe", "risk_parity", "equal_weight")

# Slack for "n * bound == 1" comparisons: 20 * 0.05 is 1 only up to rounding.
_BOUND_SLACK = 1e-12
# Smallest eigenvalue of the correlation matrix below which the covariance counts as singular.
_RANK_TOL = 1e-10
# A stream whose std is below this fraction of its largest |return| counts as constant.
_CONSTANT_TOL = 1e-10
# Relative Frank-Wolfe gap that certifies the max-Sharpe optimum.
_GAP_TOL = 1e-9
# Risk parity weights may exceed the bounds by this much and still count as "not binding".
_RP_BOUND_TOL = 1e-12
# Smallest weight the log barrier is evaluated at when min_weight is 0.
_RP_FLOOR = 1e-12


class OptimizationError(ValueError):
    """The optimiser refused the problem; ``reason`` is machine-readable, ``str(err)`` is for people.

    Reasons: ``too_few_agents`` (no agents, or ``n * max_weight < 1``), ``infeasible_bounds``
    (``n * min_weight > 1``), ``invalid_bounds`` (negative, non-finite or ``min > max``),
    ``too_few_bars`` (< 2 bars), ``nan_input`` (a NaN or infinite return: names agent and bar),
    ``invalid_input`` (ragged, non-numeric or duplicate columns, bad ``periods_per_year``),
    ``singular_covariance`` (a constant stream such as an agent that never traded, or streams
    that are linear combinations of each other), ``non_positive_returns`` (max_sharpe: no
    portfolio within the bounds has a positive expected excess return), ``unknown_method``,
    ``solver_failed`` (the optimum could not be certified; should not happen).
    """

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason: Reason = reason


# --------------------------------------------------------------------------- public API


def optimize(
    returns: ReturnsTable,
    method: str = "max_sharpe",
    min_weight: float = 0.05,
    max_weight: float = 0.40,
    periods_per_year: float = 8760.0,
    risk_free: float = 0.0,
) -> dict[str, float]:
    """Weights per agent (column order) for ``method``, summing to 1, within the bounds.

    ``returns`` is a bars x agents table of per-bar returns: a pandas DataFrame with
    agent-named columns, a polars DataFrame, or a mapping of agent name to a 1-d array.
    ``risk_free`` is an annual rate, converted per bar with ``periods_per_year`` (it only
    matters for ``max_sharpe``). Raises :class:`OptimizationError` with a ``reason`` code.

    Example (notebook)::

        >>> import numpy as np, pandas as pd
        >>> from tradepipe.core.optimizer import optimize, portfolio_sharpe
        >>> rng = np.random.default_rng(7)
        >>> df = pd.DataFrame(rng.normal([2e-4, 1e-4, 3e-4], [4e-3, 2e-3, 6e-3], (5000, 3)),
        ...                   columns=["rsi", "macd", "sentiment"])
        >>> w = optimize(df)                      # max Sharpe, 5% <= w <= 40%
        >>> round(sum(w.values()), 12)
        1.0
        >>> sorted(w) == ["macd", "rsi", "sentiment"]
        True
        >>> new = portfolio_sharpe(df, w, 8760.0)
        >>> old = portfolio_sharpe(df, {"rsi": 1/3, "macd": 1/3, "sentiment": 1/3}, 8760.0)
        >>> new >= old                            # expected Sharpe improvement = new - old
        True
        >>> optimize(df, method="risk_parity")["macd"] > 1/3   # least volatile gets most
        True
    """
    if method not in METHODS:
        raise OptimizationError(
            "unknown_method", f"unknown method {method!r}: expected one of {', '.join(METHODS)}"
        )
    table = _returns_table(returns)
    _require_bars(table)
    lo, hi = _checked_bounds(len(table.names), min_weight, max_weight)
    rf_bar = _risk_free_per_bar(risk_free, periods_per_year)

    weights = _forced_weights(len(table.names), lo, hi)
    if method == "max_sharpe":
        mu, cov = table.values.mean(axis=0) - rf_bar, _checked_covariance(table)
        _require_positive_excess(mu, lo, hi, table.names)
        if weights is None:
            weights = _max_sharpe_weights(mu, cov, lo, hi)
    elif method == "risk_parity":
        cov = _checked_covariance(table)
        if weights is None:
            weights = _risk_parity_weights(cov, lo, hi)
    elif weights is None:
        weights = np.full(len(table.names), 1.0 / len(table.names))
    return dict(zip(table.names, _clean_weights(weights, lo, hi).tolist(), strict=True))


def portfolio_sharpe(
    returns: ReturnsTable,
    weights: Mapping[str, float],
    periods_per_year: float,
    risk_free: float = 0.0,
) -> float | None:
    """Annualised Sharpe of the weighted stream ``sum_i w_i * r_i`` (docs/architecture.md definition).

    Agents in ``returns`` without a weight count as 0; a weight for an agent that has no
    column is an error (``OptimizationError``, reason ``invalid_input``). Weights are used as
    given (not renormalised). ``None`` when Sharpe is undefined: fewer than 2 bars, or a
    constant weighted stream. Used for "expected Sharpe improvement" = new - current, both on
    the same window.
    """
    table = _returns_table(returns)
    unknown = [name for name in weights if name not in table.names]
    if unknown:
        raise OptimizationError("invalid_input", f"weights for agents with no returns column: {unknown}")
    if table.values.shape[0] < 2:
        return None
    w = np.array([float(weights.get(name, 0.0)) for name in table.names])
    stream = table.values @ w - _risk_free_per_bar(risk_free, periods_per_year)
    std = float(np.std(stream, ddof=1))
    if not math.isfinite(std) or std <= _CONSTANT_TOL * float(np.max(np.abs(stream))):
        return None
    return float(np.mean(stream)) / std * math.sqrt(periods_per_year)


def eligible_agents(
    performance: Mapping[str, Mapping[str, Any]],
    min_signals: int = 10,
    min_sharpe: float = 0.3,
) -> tuple[list[str], dict[str, str]]:
    """Split agents into eligible names (input order) and ``{ineligible name: reason}``.

    Eligible means ``signal_count >= min_signals`` and a defined ``sharpe > min_sharpe``
    (docs/architecture.md: "at least 10 signals and Sharpe > 0.3"). A missing ``signal_count`` counts as 0;
    a missing, ``None`` or NaN ``sharpe`` is "undefined". Every failed rule is in the reason.
    """
    eligible: list[str] = []
    ineligible: dict[str, str] = {}
    for name, row in performance.items():
        problems = _eligibility_problems(row, min_signals, min_sharpe)
        if problems:
            ineligible[name] = "; ".join(problems)
        else:
            eligible.append(name)
    return eligible, ineligible


def _eligibility_problems(row: Mapping[str, Any], min_signals: int, min_sharpe: float) -> list[str]:
    problems = []
    signals = int(row.get("signal_count") or 0)
    if signals < min_signals:
        problems.append(f"only {signals} signals (needs at least {min_signals})")
    sharpe = row.get("sharpe")
    if sharpe is None or not math.isfinite(float(sharpe)):
        problems.append("sharpe undefined")
    elif float(sharpe) <= min_sharpe:
        problems.append(f"sharpe {float(sharpe):.4g} not above {min_sharpe:g}")
    return problems


# --------------------------------------------------------------------------- input checks


class _DataFrameLike(Protocol):
    """What pandas and polars DataFrames both offer."""

    @property
    def columns(self) -> Any: ...

    def to_numpy(self) -> Any: ...


@dataclass(frozen=True)
class _Table:
    names: list[str]
    values: Matrix  # bars x agents, finite
    bar_labels: Sequence[object] | None  # pandas index labels, for error messages


def _returns_table(returns: ReturnsTable) -> _Table:
    names, columns, labels = _columns_of(returns)
    if len(set(names)) != len(names):
        raise OptimizationError("invalid_input", f"duplicate agent names in {names}")
    if not names:
        raise OptimizationError("too_few_agents", "the returns table has no agents (columns)")
    if len({len(column) for column in columns}) > 1:
        lengths = {name: len(column) for name, column in zip(names, columns, strict=True)}
        raise OptimizationError("invalid_input", f"return streams differ in length: {lengths}")
    values = np.column_stack(columns).astype(np.float64, copy=False)
    _require_finite(values, names, labels)
    return _Table(names, values, labels)


def _columns_of(returns: ReturnsTable) -> tuple[list[str], list[Vector], Sequence[object] | None]:
    try:
        if isinstance(returns, Mapping):
            names = [str(name) for name in returns]
            return names, [_as_vector(returns[name], str(name)) for name in returns], None
        frame: _DataFrameLike = returns
        names = [str(name) for name in frame.columns]
        matrix = np.asarray(frame.to_numpy(), dtype=np.float64)
    except OptimizationError:
        raise
    except (AttributeError, TypeError, ValueError) as err:
        raise OptimizationError(
            "invalid_input",
            f"returns must be a numeric pandas/polars DataFrame or a mapping of name to array: {err}",
        ) from err
    labels = getattr(returns, "index", None)  # pandas only: bar labels for error messages
    return names, [matrix[:, j] for j in range(matrix.shape[1])], labels


def _as_vector(values: ArrayLike, name: str) -> Vector:
    vector = np.asarray(values, dtype=np.float64)
    if vector.ndim != 1:
        raise OptimizationError(
            "invalid_input", f"returns of agent {name!r} must be 1-d, got shape {vector.shape}"
        )
    return vector


def _require_finite(values: Matrix, names: list[str], labels: Sequence[object] | None) -> None:
    bad = np.argwhere(~np.isfinite(values))  # row-major: the earliest bar first
    if bad.size == 0:
        return
    bar, agent = (int(i) for i in bad[0])
    where = f"bar {bar}" + (f" ({labels[bar]})" if labels is not None else "")
    more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
    raise OptimizationError(
        "nan_input",
        f"agent {names[agent]!r} has a non-finite return ({values[bar, agent]}) at {where}{more}",
    )


def _require_bars(table: _Table) -> None:
    if table.values.shape[0] < 2:
        raise OptimizationError(
            "too_few_bars", f"need at least 2 bars of returns, got {table.values.shape[0]}"
        )


def _checked_bounds(n: int, min_weight: float, max_weight: float) -> tuple[float, float]:
    """Validated ``(lo, hi)``; ``hi`` is capped at 1 since no weight can exceed it anyway."""
    lo, hi = float(min_weight), float(max_weight)
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo < 0 or lo > hi:
        raise OptimizationError(
            "invalid_bounds", f"need 0 <= min_weight <= max_weight, got {min_weight} and {max_weight}"
        )
    if n * hi < 1 - _BOUND_SLACK:
        raise OptimizationError(
            "too_few_agents",
            f"{n} agents x max_weight {hi:g} = {n * hi:g} < 1: add agents or raise max_weight",
        )
    if n * lo > 1 + _BOUND_SLACK:
        raise OptimizationError(
            "infeasible_bounds",
            f"{n} agents x min_weight {lo:g} = {n * lo:g} > 1: lower min_weight or drop agents",
        )
    return lo, min(hi, 1.0)


def _risk_free_per_bar(risk_free: float, periods_per_year: float) -> float:
    if not (math.isfinite(periods_per_year) and periods_per_year > 0):
        raise OptimizationError("invalid_input", f"periods_per_year must be positive, got {periods_per_year}")
    if not (math.isfinite(risk_free) and risk_free > -1):
        raise OptimizationError("invalid_input", f"risk_free must be an annual rate > -1, got {risk_free}")
    return (1.0 + risk_free) ** (1.0 / periods_per_year) - 1.0


def _checked_covariance(table: _Table) -> Matrix:
    """Sample covariance (ddof=1); refuses constant streams and linearly dependent streams.

    Both make the optimum ill-defined: a constant stream (typically an agent that never traded)
    has no risk to budget and, with a positive mean, unbounded Sharpe; dependent streams (e.g.
    a duplicated agent) make the split between them arbitrary. The caller should drop them.
    """
    values = table.values
    cov = np.atleast_2d(np.cov(values, rowvar=False, ddof=1))
    std = np.sqrt(np.diag(cov))
    constant = std <= _CONSTANT_TOL * np.max(np.abs(values), axis=0)
    if constant.any():
        names = [name for name, flag in zip(table.names, constant, strict=True) if flag]
        raise OptimizationError(
            "singular_covariance",
            f"constant return stream (zero variance) for {names}: an agent that never traded? drop it",
        )
    eigenvalues, eigenvectors = np.linalg.eigh(cov / np.outer(std, std))
    if eigenvalues[0] < _RANK_TOL:
        weights = np.abs(eigenvectors[:, 0])
        names = [name for name, v in zip(table.names, weights, strict=True) if v >= 0.1 * weights.max()]
        raise OptimizationError(
            "singular_covariance",
            f"return streams of {names} are linearly dependent (rank-deficient covariance, "
            f"{values.shape[0]} bars for {len(table.names)} agents): drop duplicates or add bars",
        )
    return cov


def _forced_weights(n: int, lo: float, hi: float) -> Vector | None:
    """The only feasible point when ``n * lo == 1`` or ``n * hi == 1``, else None."""
    if n * lo >= 1 - _BOUND_SLACK or n * hi <= 1 + _BOUND_SLACK:
        return np.full(n, 1.0 / n)
    return None


def _require_positive_excess(mu: Vector, lo: float, hi: float, names: list[str]) -> None:
    """max_sharpe is only meaningful (and its QP only valid) if some feasible Sharpe is positive."""
    if float(mu @ _best_vertex(mu, lo, hi)) > 0:
        return
    detail = (
        "all expected returns are non-positive"
        if np.all(mu <= 0)
        else f"no portfolio within bounds [{lo:g}, {hi:g}] has a positive expected excess return"
    )
    per_agent = ", ".join(f"{name}: {m:.3g}" for name, m in zip(names, mu, strict=True))
    raise OptimizationError(
        "non_positive_returns", f"max_sharpe undefined: {detail} (mean excess return per bar: {per_agent})"
    )


# --------------------------------------------------------------------------- feasible set


def _best_vertex(gradient: Vector, lo: float, hi: float) -> Vector:
    """argmax of ``gradient @ w`` over {sum(w) = 1, lo <= w <= hi}: fill the best agents first.

    A stable sort keeps ties deterministic.
    """
    order = np.argsort(-gradient, kind="stable")
    w = np.full(gradient.shape[0], lo)
    remaining = 1.0 - w.sum()
    for i in order:
        step = min(hi - lo, remaining)
        w[i] += step
        remaining -= step
        if remaining <= 0:
            break
    return w


def _clean_weights(weights: Vector, lo: float, hi: float) -> Vector:
    """Clip solver noise into the bounds and move the sum back to 1 through the slack agents.

    The residual is spread over the agents that can absorb it (in proportion to their room),
    so no bound is crossed; a second pass removes the last rounding error.
    """
    w = np.clip(weights, lo, hi)
    for _ in range(3):
        residual = 1.0 - math.fsum(w)
        if residual == 0.0:
            break
        room = hi - w if residual > 0 else w - lo
        if room.sum() <= 0:
            break  # cannot happen for feasible bounds; guards the division
        w = np.clip(w + residual * room / room.sum(), lo, hi)
    return w


# --------------------------------------------------------------------------- max Sharpe


def _max_sharpe_weights(mu: Vector, cov: Matrix, lo: float, hi: float) -> Vector:
    """Global max-Sharpe weights within the bounds (see module docstring)."""
    best = _best_vertex(mu, lo, hi)  # mu @ best > 0: checked by _require_positive_excess
    # Scale so the QP is O(1): cov to unit average variance, mu so that max over w of a'w is 1.
    a = mu / float(mu @ best)
    q = cov / float(np.mean(np.diag(cov)))
    solved = _sharpe_qp_slsqp(a, q, lo, hi, start=best)
    w, gap = _most_optimal(a, q, lo, hi, _sharpe_candidates(a, q, solved, lo, hi))
    if gap <= _GAP_TOL:
        return w
    fallback = _sharpe_qp_trust_constr(a, q, lo, hi, start=w)
    w, gap = _most_optimal(a, q, lo, hi, [w, *_sharpe_candidates(a, q, fallback, lo, hi)])
    if gap > _GAP_TOL:
        raise OptimizationError("solver_failed", f"max_sharpe optimum not certified (relative gap {gap:.3g})")
    return w


def _sharpe_candidates(a: Vector, q: Matrix, w: Vector, lo: float, hi: float) -> list[Vector]:
    """The solver's point and its polished versions, for a few "is it on the bound" tolerances.

    A weight a hair above its bound may be truly free or solver noise; trying several
    tolerances and keeping the certified best avoids guessing.
    """
    polished = (_polished_sharpe(a, q, w, lo, hi, tol) for tol in (1e-6, 1e-8, 1e-10))
    return [_clean_weights(c, lo, hi) for c in (w, *polished) if c is not None]


def _most_optimal(
    a: Vector, q: Matrix, lo: float, hi: float, candidates: list[Vector]
) -> tuple[Vector, float]:
    """The candidate with the smallest optimality gap (first on ties), and that gap.

    Chosen by gap, not Sharpe: near the optimum Sharpe differs only to second order, below
    rounding, while the gap of an exactly polished point is at rounding level.
    """
    gaps = [_sharpe_gap(a, q, w, lo, hi) for w in candidates]
    best = int(np.argmin(gaps))
    return candidates[best], gaps[best]


def _sharpe(a: Vector, q: Matrix, w: Vector) -> float:
    return float(a @ w) / math.sqrt(float(w @ q @ w))


def _sharpe_gap(a: Vector, q: Matrix, w: Vector, lo: float, hi: float) -> float:
    """Frank-Wolfe gap of Sharpe at ``w``, relative to Sharpe: 0 exactly at the global optimum.

    Sharpe is pseudo-concave where ``a'w > 0``, so no ascent direction inside the feasible
    polytope means no better point anywhere in it.
    """
    sigma = math.sqrt(float(w @ q @ w))
    gradient = a / sigma - float(a @ w) * (q @ w) / sigma**3
    vertex = _best_vertex(gradient, lo, hi)
    return max(0.0, float(gradient @ (vertex - w))) / _sharpe(a, q, w)


def _sharpe_constraints(a: Vector, lo: float, hi: float) -> tuple[Vector, Matrix]:
    """``a'y = 1`` and ``G y >= 0`` for ``lo * sum(y) <= y_i <= hi * sum(y)``.

    With ``lo == 0`` the lower rows are the bounds ``y >= 0`` again; dropping them halves the
    SLSQP subproblem for the many-agent case.
    """
    n = a.shape[0]
    eye, ones = np.eye(n), np.ones((n, n))
    upper = hi * ones - eye
    return a, (upper if lo == 0 else np.vstack([eye - lo * ones, upper]))


def _sharpe_qp_slsqp(a: Vector, q: Matrix, lo: float, hi: float, start: Vector) -> Vector:
    from scipy.optimize import minimize
    eq, ineq = _sharpe_constraints(a, lo, hi)
    result = minimize(
        lambda y: float(y @ q @ y),
        start / float(a @ start),
        jac=lambda y: 2.0 * (q @ y),
        method="SLSQP",
        bounds=[(0.0, None)] * a.shape[0],  # y = kappa * w with kappa > 0 and w >= lo >= 0
        constraints=[
            {"type": "eq", "fun": lambda y: np.array([eq @ y - 1.0]), "jac": lambda y: eq[None, :]},
            {"type": "ineq", "fun": lambda y: ineq @ y, "jac": lambda y: ineq},
        ],
        options={"ftol": 1e-15, "maxiter": 1000},
    )
    return _weights_from_y(result.x, start)


def _sharpe_qp_trust_constr(a: Vector, q: Matrix, lo: float, hi: float, start: Vector) -> Vector:
    from scipy.optimize import LinearConstraint, minimize
    eq, ineq = _sharpe_constraints(a, lo, hi)
    n = a.shape[0]
    result = minimize(
        lambda y: float(y @ q @ y),
        start / float(a @ start),
        jac=lambda y: 2.0 * (q @ y),
        hess=lambda y: 2.0 * q,
        method="trust-constr",
        constraints=[
            LinearConstraint(eq[None, :], 1.0, 1.0),
            LinearConstraint(np.vstack([ineq, np.eye(n)]), 0.0, np.inf),
        ],
        options={"gtol": 1e-13, "xtol": 1e-15, "maxiter": 5000},
    )
    return _weights_from_y(result.x, start)


def _weights_from_y(y: Vector, fallback: Vector) -> Vector:
    kappa = float(y.sum())
    return y / kappa if math.isfinite(kappa) and kappa > 0 else fallback


def _polished_sharpe(a: Vector, q: Matrix, w: Vector, lo: float, hi: float, tol: float) -> Vector | None:
    """Solve the QP exactly for the active set ``w`` suggests: pins the bound weights exactly.

    Weights within ``tol`` of a bound are fixed there (``y_i = kappa * bound``); the free
    ``y`` and ``kappa`` then solve an equality-constrained QP, i.e. one KKT linear system.
    Returns None when the active set was wrong (the solution leaves the bounds).
    """
    fixed = np.where(w <= lo + tol, lo, np.where(w >= hi - tol, hi, np.nan))
    free = np.flatnonzero(np.isnan(fixed))
    if free.size == 0:
        return None
    # y = P z with z = (y_free, kappa): free rows copy y_free, fixed rows are kappa * bound.
    n, m = a.shape[0], free.size
    p = np.zeros((n, m + 1))
    p[free, np.arange(m)] = 1.0
    p[:, m] = np.nan_to_num(fixed)
    c = np.vstack([a @ p, p.sum(axis=0) - np.eye(m + 1)[m]])  # a'y = 1, sum(y) - kappa = 0
    kkt = np.block([[2.0 * p.T @ q @ p, c.T], [c, np.zeros((2, 2))]])
    rhs = np.concatenate([np.zeros(m + 1), [1.0, 0.0]])
    try:
        z = np.linalg.solve(kkt, rhs)[: m + 1]
    except np.linalg.LinAlgError:
        return None
    if not z[m] > 0:
        return None
    polished = (p @ z) / z[m]
    inside = np.all(polished >= lo - 1e-12) and np.all(polished <= hi + 1e-12)
    return polished if inside else None


# --------------------------------------------------------------------------- risk parity


def _risk_parity_weights(cov: Matrix, lo: float, hi: float) -> Vector:
    """Equal risk contributions; constrained risk budgeting when the bounds bind."""
    n = cov.shape[0]
    q = cov / float(np.mean(np.diag(cov)))  # weights do not depend on the scale of cov
    budget = np.full(n, 1.0 / n)
    x = _spinu(q, budget)
    w = x / x.sum()
    if np.all(w >= lo - _RP_BOUND_TOL) and np.all(w <= hi + _RP_BOUND_TOL):
        return w
    return _bounded_risk_budget(q, budget, lo, hi, lam_guess=1.0 / float(x.sum()) ** 2)


def _spinu(q: Matrix, budget: Vector) -> Vector:
    """argmin ``1/2 x'qx - sum(b_i log x_i)``: strictly convex, solution ``x_i (qx)_i = b_i``.

    trust-exact (globally convergent) stops once objective changes drown in rounding, with the
    gradient near 1e-8; Newton steps on the stationarity equations then reach machine precision.
    """
    from scipy.optimize import minimize
    result = minimize(
        _barrier(q, budget, 1.0),
        np.sqrt(budget / np.diag(q)),  # exact when q is diagonal
        jac=_barrier_gradient(q, budget, 1.0),
        hess=lambda x: q + np.diag(budget / x**2),
        method="trust-exact",
        options={"gtol": 1e-14, "maxiter": 500},
    )
    x = _newton(lambda x: (q @ x - budget / x, q + np.diag(budget / x**2)), result.x)
    if not np.all(x > 0):
        raise OptimizationError("solver_failed", f"risk parity did not converge: {result.message}")
    return x


def _barrier(q: Matrix, budget: Vector, lam: float) -> Callable[[Vector], float]:
    def value(x: Vector) -> float:
        if np.any(x <= 0):
            return math.inf  # outside the barrier's domain: the trust region shrinks
        return 0.5 * float(x @ q @ x) - lam * float(budget @ np.log(x))

    return value


def _barrier_gradient(q: Matrix, budget: Vector, lam: float) -> Callable[[Vector], Vector]:
    return lambda x: q @ x - lam * budget / x


def _newton(system: Callable[[Vector], tuple[Vector, Matrix]], z: Vector, steps: int = 8) -> Vector:
    """Newton steps on ``F(z) = 0`` from a nearby ``z``; keeps the iterate with the smallest residual.

    Stops when the residual no longer shrinks (rounding level), the Jacobian is singular or an
    iterate leaves the domain (non-finite residual).
    """
    best, best_norm = z, math.inf
    for _ in range(steps):
        residual, jacobian = system(z)
        norm = float(np.max(np.abs(residual)))
        if not norm < best_norm:
            break
        best, best_norm = z, norm
        try:
            z = z - np.linalg.solve(jacobian, residual)
        except np.linalg.LinAlgError:
            break
    return best


def _bounded_risk_budget(q: Matrix, budget: Vector, lo: float, hi: float, lam_guess: float) -> Vector:
    """Richard & Roncalli constrained risk budgeting: box-constrained Spinu, ``lam`` s.t. sum = 1.

    ``sum(x*(lam))`` is continuous and tends to ``n * hi >= 1`` as ``lam`` grows, so a root search on
    ``log(lam)`` finds the budget; the inner problem is strictly convex (L-BFGS-B), and the
    active set it settles on is then solved exactly by Newton (see _polished_budget).

    No root exists when even ``lam -> 0`` (the box's minimum-variance point) sums to more
    than 1: the lower bounds nearly exhaust the budget and an agent hedges the others. Risk
    contributions cannot be equalised then; we return the minimum-variance portfolio within
    the bounds, which is where the constrained solution tends as the root ``lam`` reaches 0.
    """
    from scipy.optimize import brentq
    floor = max(lo, _RP_FLOOR)  # the log barrier needs x > 0
    if float(_box_spinu(q, budget, 0.0, floor, hi).sum()) >= 1.0:
        return _min_variance(q, lo, hi)
    sums: dict[float, float] = {}  # the bracket search and brentq revisit points

    def excess_sum(log_lam: float) -> float:
        if log_lam not in sums:
            sums[log_lam] = float(_box_spinu(q, budget, math.exp(log_lam), floor, hi).sum()) - 1.0
        return sums[log_lam]

    low = high = math.log(lam_guess)
    while excess_sum(low) > 0 and low > -700:  # terminates: the sum at lam = 0 is below 1
        low -= math.log(4.0)
    while excess_sum(high) < 0 and high < 700:  # terminates: the sum tends to n * hi >= 1
        high += math.log(4.0)
    # A coarse lam usually shows the right active set, which the polish then solves exactly;
    # only if it does not is the root search pushed to full precision.
    for xtol in (1e-4, 1e-12):
        lam = math.exp(brentq(excess_sum, low, high, xtol=xtol, maxiter=200))
        x = _box_spinu(q, budget, lam, floor, hi)
        polished = _polished_budget(q, budget, x, lam, floor, hi)
        if polished is not None:
            return polished
    return x / x.sum()


def _min_variance(q: Matrix, lo: float, hi: float) -> Vector:
    from scipy.optimize import minimize
    n = q.shape[0]
    result = minimize(
        lambda w: float(w @ q @ w),
        np.full(n, 1.0 / n),
        jac=lambda w: 2.0 * (q @ w),
        method="SLSQP",
        bounds=[(lo, hi)] * n,
        constraints=[
            {"type": "eq", "fun": lambda w: np.array([w.sum() - 1.0]), "jac": lambda w: np.ones((1, n))}
        ],
        options={"ftol": 1e-15, "maxiter": 1000},
    )
    return result.x


def _box_spinu(q: Matrix, budget: Vector, lam: float, lo: float, hi: float) -> Vector:
    """argmin ``1/2 x'qx - lam * sum(b_i log x_i)`` over ``lo <= x_i <= hi``.

    Always started from the same point for a given ``lam`` so that the root search sees a
    deterministic function of ``lam`` (warm starts made it path dependent).
    """
    from scipy.optimize import minimize
    result = minimize(
        _barrier(q, budget, lam),
        np.clip(np.sqrt(lam * budget / np.diag(q)), lo, hi),
        jac=_barrier_gradient(q, budget, lam),
        method="L-BFGS-B",
        bounds=[(lo, hi)] * q.shape[0],
        options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 10_000},
    )
    return result.x


def _polished_budget(q: Matrix, budget: Vector, x: Vector, lam: float, lo: float, hi: float) -> Vector | None:
    """Solve ``x_i (qx)_i = lam * b_i`` (free agents) and ``sum(x) = 1`` exactly for ``(x_free, lam)``.

    Agents L-BFGS-B left on a bound stay there. The result is accepted only if it is a KKT
    point of the box problem: free weights inside the box, and each pinned agent's gradient
    pushing into its bound. Otherwise None (the caller keeps the L-BFGS-B point).
    """
    pinned = (x <= lo * (1 + 1e-9)) | (x >= hi * (1 - 1e-9))
    free = np.flatnonzero(~pinned)
    if free.size == 0:
        return None
    base = np.where(x >= hi * (1 - 1e-9), hi, lo)
    qff, b = q[np.ix_(free, free)], budget[free]

    def full(z: Vector) -> Vector:
        out = base.copy()
        out[free] = z[:-1]
        return out

    def system(z: Vector) -> tuple[Vector, Matrix]:
        xs, lam_z = full(z), z[-1]
        xf = xs[free]
        residual = np.append((q @ xs)[free] - lam_z * b / xf, xs.sum() - 1.0)
        jacobian = np.block([
            [qff + np.diag(lam_z * b / xf**2), (-b / xf)[:, None]],
            [np.ones((1, free.size)), np.zeros((1, 1))],
        ])
        return (residual if np.all(xf > 0) else np.full(free.size + 1, np.inf)), jacobian

    z = _newton(system, np.append(x[free] / x.sum(), lam / x.sum() ** 2))
    xs, lam_z = full(z), z[-1]
    gradient = q @ xs - lam_z * budget / xs
    slack = 1e-9 * float(np.max(np.abs(q @ xs)))
    kkt = (
        np.all(xs[free] >= lo)
        and np.all(xs[free] <= hi)
        and np.all(gradient[pinned & (base == lo)] >= -slack)
        and np.all(gradient[pinned & (base == hi)] <= slack)
        and abs(xs.sum() - 1.0) < 1e-12
    )
    return xs if kkt else None
