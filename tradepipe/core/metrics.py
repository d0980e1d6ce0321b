"""Performance metrics for per-bar return streams: pure numpy, no Dagster, no I/O.

Every definition follows ``docs/architecture.md`` ("Definitions to match exactly"). Results are plain Python
``float``/``int``/``None`` so they go straight into asset metadata, JSON or SQL. A metric that is
undefined is ``None`` (never ``inf`` or ``NaN``) and ``null_reasons[metric]`` says why.

Null rules (in priority order, first match wins for the reason):

========================  ===============================================================
metric                    ``None`` when
========================  ===============================================================
sharpe                    fewer than 2 returns; zero volatility (constant series)
sortino                   fewer than 2 returns; zero volatility; no negative returns
volatility                fewer than 2 returns (a constant series gives ``0.0``)
total_return              never (``0.0`` for an empty series)
max_drawdown              never (``0.0`` for an empty series)
calmar                    fewer than 2 returns; final equity negative; zero drawdown
win_rate                  fewer than 2 returns; no non-zero returns
profit_factor             fewer than 2 returns; no losing returns
avg_win / avg_loss        no winning / no losing returns (one return is enough)
max_consecutive_*         never (``0`` when there is no such run)
========================  ===============================================================

"Fewer than 2 returns" nulls every *ratio* (sharpe, sortino, volatility, calmar, win_rate,
profit_factor), as docs/architecture.md asks; totals, averages and run lengths stay, since they are
meaningful for a single bar. ``min_returns`` raises that minimum (a Sharpe annualised
from 8 hourly bars came out as -810): below it every ratio is ``None`` with the reason
"fewer than N returns". The performance rows use ``TRADEPIPE_MIN_METRIC_RETURNS`` (default 20). Any value that would still come out non-finite (overflow on absurd
inputs) is ``None`` with the reason "not finite (numeric overflow)".

**Bars shorter than a day: risk-adjusted figures on daily returns** (:data:`DAILY_RULE`). A Sharpe
ratio annualised from one-minute bars over a few hours multiplies noise by sqrt(525,600) and
reads -338. So when the bar times are given and the bars are shorter than a day, the
risk-adjusted metrics (:data:`RISK_ADJUSTED`: Sharpe, Sortino, volatility, Calmar) are computed
on daily returns (the bars' returns compounded per UTC day, annualised with 365 days), and are
``None`` with the reason until ``min_days`` days exist (``TRADEPIPE_MIN_METRIC_DAYS``, default
:data:`MIN_DAYS` = 14: two weeks of daily returns is the least that gives a Sharpe ratio more
signal than noise, and fits the 30-day performance window twice; 0 turns the rule off: per-bar
figures, as before, for tests and for whoever wants them). Totals, drawdown, win rate,
profit factor and run lengths stay per bar. One rule for every figure a trader reads:
``agent_performance``, the report's best agent, the weights' expected improvement
(:func:`daily_sharpe`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

FEWER_THAN_2 = "fewer than 2 returns"
ZERO_VOLATILITY = "zero volatility (constant returns)"
NO_NEGATIVE_RETURNS = "no negative returns (zero downside deviation)"
ZERO_DRAWDOWN = "zero drawdown"
NEGATIVE_EQUITY = "final equity is negative (returns below -100%), so CAGR is undefined"
NO_NONZERO_RETURNS = "no non-zero returns"
NO_WINS = "no winning returns"
NO_LOSSES = "no losing returns"
NOT_FINITE = "not finite (numeric overflow)"

MIN_DAYS = 14
RISK_ADJUSTED = ("sharpe", "sortino", "volatility", "calmar")


def daily_rule(min_days: int = MIN_DAYS) -> str:
    """The rule in words, for the pages and the report that show the figures."""
    if not min_days:
        return "Sharpe, Sortino, volatility and Calmar are annualised from per-bar returns (the daily rule is off: TRADEPIPE_MIN_METRIC_DAYS=0)"
    return (
        "Sharpe, Sortino, volatility and Calmar of bars shorter than a day are computed on daily returns "
        f"(compounded per UTC day, annualised with 365 days) and are null until {min_days} days of returns exist"
    )


DAILY_RULE = daily_rule()
_DAY_MS = 86_400_000

FLOAT_METRICS = (
    "sharpe",
    "sortino",
    "volatility",
    "total_return",
    "max_drawdown",
    "calmar",
    "win_rate",
    "profit_factor",
    "avg_win",
    "avg_loss",
)
COUNT_METRICS = ("max_consecutive_wins", "max_consecutive_losses")


class Summary(TypedDict):
    """What :func:`summarize` returns for one return stream."""

    sharpe: float | None
    sortino: float | None
    volatility: float | None
    total_return: float | None
    max_drawdown: float | None
    calmar: float | None
    win_rate: float | None
    profit_factor: float | None
    avg_win: float | None
    avg_loss: float | None
    max_consecutive_wins: int
    max_consecutive_losses: int
    null_reasons: dict[str, str]


class Classification(TypedDict):
    """What :func:`classify_agents` returns."""

    ranking: list[str]
    top_performers: list[str]
    underperformers: dict[str, str]


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def summarize(returns: Any, periods_per_year: float, risk_free: float = 0.0, min_returns: int = 2) -> Summary:
    """Performance summary of one stream of per-bar simple returns.

    ``returns`` is 1-D: a numpy array, list, pandas Series or polars Series, oldest first.
    ``periods_per_year`` is ``365 * bars_per_day`` (see ``timeframes.periods_per_year``);
    ``risk_free`` is an annual rate, converted per bar as ``(1 + rf) ** (1 / ppy) - 1``.
    Raises ``ValueError`` naming the index of the first NaN/inf return.

    Example (in a notebook)::

        >>> from tradepipe.core.metrics import summarize
        >>> s = summarize([0.01, -0.02, 0.03], periods_per_year=4)
        >>> round(s["sharpe"], 6), round(s["sortino"], 6)     # 2/sqrt(57)*2, 2/sqrt(3)
        (0.529813, 1.154701)
        >>> round(s["total_return"], 6), round(s["max_drawdown"], 6)
        (0.019494, -0.02)
        >>> s["win_rate"], s["profit_factor"], s["max_consecutive_losses"]
        (0.6666666666666666, 2.0, 1)
        >>> summarize([0.01], periods_per_year=8760)["null_reasons"]["sharpe"]
        'fewer than 2 returns'
    """
    vector = _as_float_array(returns, ndim=1, what="returns")
    _raise_on_non_finite_vector(vector, what="returns")
    return _summarize_rows(vector.reshape(1, -1), periods_per_year, risk_free, min_returns)[0]


def summarize_many(
    returns_matrix: Any,
    periods_per_year: float,
    risk_free: float = 0.0,
    names: Sequence[str] | None = None,
    min_returns: int = 2,
    bar_times: Any = None,
    min_days: int = MIN_DAYS,
) -> dict[str, Summary]:
    """:func:`summarize` for many agents at once, vectorised across columns.

    ``returns_matrix`` is bars x agents: a 2-D numpy array, or a pandas/polars DataFrame with
    one column per agent. Names come from ``names``, else the DataFrame's columns, else
    ``"0"``, ``"1"``, ... Result is ``{name: summary}`` in column order and equals
    ``summarize`` applied to each column. A NaN/inf raises ``ValueError`` naming the agent
    and the bar index. ``bar_times`` (one per bar: ms since the epoch, or datetimes in UTC)
    switches on the daily rule for bars shorter than a day (module docstring).
    """
    matrix = _as_float_array(returns_matrix, ndim=2, what="returns_matrix")
    agent_names = _column_names(returns_matrix, names, matrix.shape[1])
    # One contiguous row per agent: every reduction then walks memory in order, and a row is
    # reduced exactly as summarize() reduces a single series (same floating-point results).
    rows = np.ascontiguousarray(matrix.T)
    _raise_on_non_finite_rows(rows, agent_names)
    summaries = _summarize_rows(rows, periods_per_year, risk_free, min_returns)
    # Too few bars already nulls every ratio with its own reason; otherwise the daily rule decides.
    if bar_times is not None and min_days and periods_per_year > 365.0 + 1e-9 and rows.shape[1] >= min_returns:
        daily = _daily_rows(rows, utc_days(bar_times))
        for summary, day_summary in zip(summaries, _summarize_daily(daily, risk_free, min_days)):
            _use_daily(summary, day_summary)
    return dict(zip(agent_names, summaries))


def utc_days(bar_times: Any) -> NDArray[np.int64]:
    """The UTC day number of each bar time: ms since the epoch, numpy datetime64, or a pandas
    DatetimeIndex (naive ones are taken as UTC, as the ledger stores them)."""
    if getattr(bar_times, "tz", None) is not None:  # a zoned pandas index: its UTC wall times, naive
        bar_times = bar_times.tz_convert("UTC").tz_localize(None)
    times = np.asarray(bar_times)
    if times.dtype.kind == "O":
        times = times.astype("datetime64[ns]")
    if times.dtype.kind == "M":
        return times.astype("datetime64[D]").astype(np.int64)
    if times.dtype.kind in "iu":
        return times.astype(np.int64) // _DAY_MS
    raise ValueError(f"bar times must be ms since the epoch or datetimes, got dtype {times.dtype}")


def daily_sharpe(
    stream: Any, bar_times: Any, periods_per_year: float, risk_free: float = 0.0, min_days: int = MIN_DAYS
) -> tuple[float | None, str | None]:
    """The Sharpe ratio of one per-bar stream under the module's rule, and the reason when it is None.

    Bars of a day or longer: the per-bar Sharpe. Shorter bars: the Sharpe of the daily returns,
    None until ``min_days`` days exist."""
    vector = _as_float_array(stream, ndim=1, what="returns")
    _raise_on_non_finite_vector(vector, what="returns")
    rows = vector.reshape(1, -1)
    if min_days and periods_per_year > 365.0 + 1e-9:
        daily = _daily_rows(rows, utc_days(bar_times))
        sharpe, reason = _row_sharpe(daily, 365.0, risk_free, min_days)
        if reason == (FEWER_THAN_2 if min_days == 2 else f"fewer than {min_days} returns"):
            reason = f"fewer than {min_days} days of returns ({daily.shape[1]}): bars shorter than a day are judged on daily returns"
        return sharpe, reason
    return _row_sharpe(rows, periods_per_year, risk_free)


def _row_sharpe(rows: FloatArray, ppy: float, risk_free: float, min_returns: int = 2) -> tuple[float | None, str | None]:
    """``_summarize_rows(rows, ...)[0]``'s Sharpe ratio and its null reason, without the other metrics
    (the daily weight decision asks for two books' Sharpe every day): the same arithmetic, the same rules."""
    _check_rates(ppy, risk_free)
    if not (isinstance(min_returns, int) and min_returns >= 2):
        raise ValueError(f"min_returns must be an integer >= 2, got {min_returns!r}")
    if rows.shape[1] < min_returns:
        return None, FEWER_THAN_2 if min_returns == 2 else f"fewer than {min_returns} returns"
    with np.errstate(all="ignore"):
        risk, zero_vol, _ = _risk_metrics(rows, np.minimum(rows, 0.0), ppy, risk_free)
    if zero_vol[0]:
        return None, ZERO_VOLATILITY
    value = float(risk["sharpe"][0])
    return (value, None) if math.isfinite(value) else (None, NOT_FINITE)


def _daily_rows(rows: FloatArray, days: NDArray[np.int64]) -> FloatArray:
    """Per-bar returns compounded per UTC day (bars in time order)."""
    if rows.shape[1] != len(days):
        raise ValueError(f"{len(days)} bar times for {rows.shape[1]} returns")
    if rows.shape[1] == 0:
        return rows
    starts = np.flatnonzero(np.r_[True, days[1:] != days[:-1]])
    return np.multiply.reduceat(1.0 + rows, starts, axis=1) - 1.0


def _summarize_daily(daily: FloatArray, risk_free: float, min_days: int) -> list[Summary]:
    summaries = _summarize_rows(daily, 365.0, risk_free, min_days)
    short = FEWER_THAN_2 if min_days == 2 else f"fewer than {min_days} returns"
    for summary in summaries:
        reasons = summary["null_reasons"]
        for key in RISK_ADJUSTED:
            if reasons.get(key) == short:
                reasons[key] = f"fewer than {min_days} days of returns ({daily.shape[1]}): bars shorter than a day are judged on daily returns"
    return summaries


def _use_daily(summary: Summary, day_summary: Summary) -> None:
    """Replace the risk-adjusted figures of a per-bar summary by those of its daily returns."""
    for key in RISK_ADJUSTED:
        summary[key] = day_summary[key]  # type: ignore[literal-required]
        reason = day_summary["null_reasons"].get(key)
        if reason is None:
            summary["null_reasons"].pop(key, None)
        else:
            summary["null_reasons"][key] = reason


def agent_return_stream(positions: Any, closes: Any, fee_bps: float) -> FloatArray:
    """What following one agent's signal alone would have earned per bar, net of fees.

    Alignment: ``positions[t]`` is the signal emitted at the close of bar ``t`` and is held
    from ``close[t]`` to ``close[t+1]``. For ``t = 0 .. n-2``::

        out[t] = positions[t] * (closes[t+1] / closes[t] - 1)
                 - fee_bps / 1e4 * |positions[t] - positions[t-1]|     (positions[-1] = 0)

    so the fee for entering a position is charged in the bar it is first held, and the output
    has ``n - 1`` values (none for the last bar, whose next close is unknown; a change of
    position at the last bar is therefore not charged). Positions are taken as given (agents
    emit values in [-1, 1]). NaN/inf anywhere, or a close <= 0, raises ``ValueError`` naming
    the index.
    """
    held = _as_float_array(positions, ndim=1, what="positions")
    close = _as_float_array(closes, ndim=1, what="closes")
    if held.shape != close.shape:
        raise ValueError(f"positions and closes differ in length: {held.shape[0]} != {close.shape[0]}")
    _raise_on_non_finite_vector(held, what="positions")
    _raise_on_non_finite_vector(close, what="closes")
    if np.any(close <= 0):
        raise ValueError(f"closes[{int(np.argmax(close <= 0))}] is not positive")
    if not math.isfinite(fee_bps) or fee_bps < 0:
        raise ValueError(f"fee_bps must be finite and >= 0, got {fee_bps!r}")
    next_bar_return = close[1:] / close[:-1] - 1.0
    held = held[:-1]
    turnover = np.abs(np.diff(held, prepend=0.0))
    return held * next_bar_return - (fee_bps / 1e4) * turnover


def classify_agents(
    perf: Mapping[str, Mapping[str, Any]],
    top_sharpe: float = 1.5,
    under_sharpe: float = 0.5,
    under_win_rate: float = 0.45,
) -> Classification:
    """Rank agents by Sharpe and flag top and under-performers.

    ``perf`` maps agent name to a :func:`summarize` result (only ``sharpe``, ``win_rate`` and
    ``null_reasons`` are read). Returns:

    - ``ranking``: names by Sharpe, highest first; ``None`` Sharpe last; ties by name.
    - ``top_performers``: names with ``sharpe > top_sharpe``, in ranking order.
    - ``underperformers``: ``{name: reason}`` in ranking order, for ``sharpe < under_sharpe``
      or ``win_rate < under_win_rate`` or a ``None`` Sharpe. An agent can be in both lists
      (high Sharpe with a low win rate): the two rules are independent, as specified.
    """
    ranking = sorted(perf, key=lambda name: _sharpe_rank_key(name, perf[name]))
    top = [name for name in ranking if _exceeds(perf[name].get("sharpe"), top_sharpe)]
    under: dict[str, str] = {}
    for name in ranking:
        reason = _underperformance_reason(perf[name], under_sharpe, under_win_rate)
        if reason:
            under[name] = reason
    return {"ranking": ranking, "top_performers": top, "underperformers": under}


# --------------------------------------------------------------------------------------------
# Vectorised core: rows are series (shape agents x bars), every step reduces along axis 1.
# --------------------------------------------------------------------------------------------


def _summarize_rows(rows: FloatArray, periods_per_year: float, risk_free: float, min_returns: int = 2) -> list[Summary]:
    _check_rates(periods_per_year, risk_free)
    if not (isinstance(min_returns, int) and min_returns >= 2):
        raise ValueError(f"min_returns must be an integer >= 2, got {min_returns!r}")
    values, nulls = _row_metrics(rows, periods_per_year, risk_free, min_returns)
    return [_row_summary(values, nulls, i) for i in range(rows.shape[0])]


def _row_metrics(
    rows: FloatArray, ppy: float, risk_free: float, min_returns: int = 2
) -> tuple[dict[str, np.ndarray], dict[str, list[tuple[np.ndarray, str]]]]:
    """Raw per-row metric values plus, per metric, the (mask, reason) pairs that null it."""
    n = rows.shape[1]
    too_short = np.full(rows.shape[0], n < min_returns)
    short = FEWER_THAN_2 if min_returns == 2 else f"fewer than {min_returns} returns"
    losses_only = np.minimum(rows, 0.0)  # shared by Sortino's downside and the loss sums
    with np.errstate(all="ignore"):  # 0/0 and x/0 are expected; the null masks cover them
        risk, zero_vol, no_downside = _risk_metrics(rows, losses_only, ppy, risk_free)
        equity, negative_equity, zero_drawdown = _equity_metrics(rows, ppy)
        trades, no_nonzero, no_wins, no_losses = _trade_metrics(rows, losses_only)
    values = {**risk, **equity, **trades}
    values["max_consecutive_wins"], values["max_consecutive_losses"] = _longest_runs(rows)
    nulls = {
        "sharpe": [(too_short, short), (zero_vol, ZERO_VOLATILITY)],
        "sortino": [(too_short, short), (zero_vol, ZERO_VOLATILITY), (no_downside, NO_NEGATIVE_RETURNS)],
        "volatility": [(too_short, short)],
        "calmar": [(too_short, short), (negative_equity, NEGATIVE_EQUITY), (zero_drawdown, ZERO_DRAWDOWN)],
        "win_rate": [(too_short, short), (no_nonzero, NO_NONZERO_RETURNS)],
        "profit_factor": [(too_short, short), (no_losses, NO_LOSSES)],
        "avg_win": [(no_wins, NO_WINS)],
        "avg_loss": [(no_losses, NO_LOSSES)],
    }
    return values, nulls


def _risk_metrics(
    rows: FloatArray, losses_only: FloatArray, ppy: float, risk_free: float
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Sharpe, Sortino and volatility; plus the zero-volatility and zero-downside masks."""
    n = rows.shape[1]
    annualiser = math.sqrt(ppy)
    rf_per_period = (1.0 + risk_free) ** (1.0 / ppy) - 1.0
    excess_mean = rows.sum(axis=1) / n - rf_per_period
    if n >= 2:
        std = rows.std(axis=1, ddof=1)
        # A constant series can leave a rounding residue (~1e-18) in std; max == min is exact.
        std[rows.max(axis=1) == rows.min(axis=1)] = 0.0
    else:
        std = np.full(rows.shape[0], np.nan)
    downside = np.sqrt(np.einsum("ij,ij->i", losses_only, losses_only) / n)  # sum of squares, no temporary
    metrics = {
        "sharpe": excess_mean / std * annualiser,
        "sortino": excess_mean / downside * annualiser,
        "volatility": std * annualiser,
    }
    return metrics, std == 0.0, downside == 0.0


def _equity_metrics(rows: FloatArray, ppy: float) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Total return, max drawdown and Calmar; plus the negative-equity and zero-drawdown masks."""
    n = rows.shape[1]
    equity = np.cumprod(1.0 + rows, axis=1)
    # prod(1 + r) is the last point of the (sequentially multiplied) equity curve.
    total_return = equity[:, -1] - 1.0 if n else np.zeros(rows.shape[0])
    max_drawdown = _max_drawdown(equity, rows)  # type: ignore[arg-type]  # numpy's stubs widen cumprod to floating[Any]
    cagr = (1.0 + total_return) ** (ppy / n) - 1.0 if n else np.full(rows.shape[0], np.nan)
    metrics = {
        "total_return": total_return,
        "max_drawdown": max_drawdown,
        "calmar": cagr / np.abs(max_drawdown),
    }
    return metrics, total_return < -1.0, max_drawdown == 0.0


def _max_drawdown(equity: FloatArray, rows: FloatArray) -> FloatArray:
    """min(equity / running_max(equity)) - 1 with equity starting at 1.0 before the first bar.

    The plain equity curve, as docs/architecture.md writes it. A row whose equity overflows float64 (a
    long, strongly trending series) is redone on log equity, which cannot overflow.
    """
    ratio = np.maximum.accumulate(equity, axis=1)
    np.maximum(ratio, 1.0, out=ratio)  # the initial equity 1.0 is part of the running max
    np.divide(equity, ratio, out=ratio)
    drawdown = np.min(ratio, axis=1, initial=1.0) - 1.0
    overflowed = ~np.isfinite(equity[:, -1]) if equity.shape[1] else np.zeros(equity.shape[0], bool)
    if overflowed.any():
        drawdown[overflowed] = _max_drawdown_in_logs(rows[overflowed])
    return drawdown


def _max_drawdown_in_logs(rows: FloatArray) -> FloatArray:
    # log(0) = -inf is right (equity wiped out); a return below -100% gives NaN -> "not finite".
    log_equity = np.cumsum(np.log1p(rows), axis=1)
    log_peak = np.maximum(np.maximum.accumulate(log_equity, axis=1), 0.0)
    return np.expm1(np.min(log_equity - log_peak, axis=1, initial=0.0))


def _trade_metrics(
    rows: FloatArray, losses_only: FloatArray
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """Win rate, profit factor, average win and loss; plus the no-nonzero/no-win/no-loss masks."""
    win_count = np.count_nonzero(rows > 0.0, axis=1)
    loss_count = np.count_nonzero(rows < 0.0, axis=1)
    loss_sum = losses_only.sum(axis=1)
    win_sum = np.maximum(rows, 0.0).sum(axis=1)
    metrics = {
        "win_rate": win_count / (win_count + loss_count),
        "profit_factor": win_sum / np.abs(loss_sum),
        "avg_win": win_sum / win_count,
        "avg_loss": loss_sum / loss_count,
    }
    return metrics, (win_count + loss_count) == 0, win_count == 0, loss_count == 0


def _longest_runs(rows: FloatArray) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Longest run of wins (r > 0) and of losses (r < 0) per row, without a Python loop.

    Rows are laid end to end as one sequence of signs (+1, 0, -1). A run starts wherever the
    sign changes or a row starts; run lengths are the gaps between starts. A zero is its own
    sign, so it breaks a run of wins or losses. The longest +1 and -1 run of each row is then a
    segmented max (maximum.reduceat) over that row's runs.
    """
    n_rows, n = rows.shape
    if n == 0:
        return np.zeros(n_rows, np.int64), np.zeros(n_rows, np.int64)
    sign = ((rows > 0.0).view(np.int8) - (rows < 0.0).view(np.int8)).ravel()
    is_start = np.empty(sign.size, dtype=bool)
    is_start[0] = True
    np.not_equal(sign[1:], sign[:-1], out=is_start[1:])
    is_start[::n] = True
    starts = np.flatnonzero(is_start)
    lengths = np.diff(starts, append=sign.size)
    run_sign = sign[starts]
    first_run_of_row = np.searchsorted(starts, np.arange(n_rows) * n)
    longest = [np.maximum.reduceat(np.where(run_sign == s, lengths, 0), first_run_of_row) for s in (1, -1)]
    return longest[0], longest[1]


def _row_summary(values: dict[str, np.ndarray], nulls: dict[str, list[tuple[np.ndarray, str]]], i: int) -> Summary:
    summary: dict[str, Any] = {}
    reasons: dict[str, str] = {}
    for key in FLOAT_METRICS:
        value = float(values[key][i])
        reason = next((why for mask, why in nulls.get(key, ()) if mask[i]), None)
        if reason is None and not math.isfinite(value):
            reason = NOT_FINITE
        summary[key] = None if reason else value
        if reason:
            reasons[key] = reason
    for key in COUNT_METRICS:
        summary[key] = int(values[key][i])
    summary["null_reasons"] = reasons
    return summary  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------
# Input handling
# --------------------------------------------------------------------------------------------


def _as_float_array(data: Any, ndim: int, what: str) -> FloatArray:
    """numpy/list/pandas/polars -> float64 ndarray; nulls become NaN (and are rejected later)."""
    to_numpy = getattr(data, "to_numpy", None)
    if to_numpy is not None:
        try:
            data = to_numpy(dtype=np.float64, na_value=np.nan)  # pandas, incl. nullable dtypes
        except TypeError:
            data = to_numpy()  # polars: nulls in numeric columns already come out as NaN
    array = np.asarray(data, dtype=np.float64)
    if array.ndim != ndim:
        raise ValueError(f"{what} must be {ndim}-D, got shape {array.shape}")
    return array


def _raise_on_non_finite_vector(vector: FloatArray, what: str) -> None:
    bad = ~np.isfinite(vector)
    if bad.any():
        index = int(np.argmax(bad))
        raise ValueError(f"{what} contain {vector[index]} at index {index}: every value must be finite")


def _raise_on_non_finite_rows(rows: FloatArray, names: Sequence[str]) -> None:
    bad = ~np.isfinite(rows)
    if bad.any():
        agent = int(np.argmax(bad.any(axis=1)))
        bar = int(np.argmax(bad[agent]))
        raise ValueError(
            f"returns for agent {names[agent]!r} at bar index {bar} is {rows[agent, bar]}: every return must be finite"
        )


def _column_names(data: Any, names: Sequence[str] | None, count: int) -> list[str]:
    if names is None:
        columns = getattr(data, "columns", None)
        names = [str(c) for c in columns] if columns is not None else [str(i) for i in range(count)]
    names = list(names)
    if len(names) != count:
        raise ValueError(f"{len(names)} names for {count} columns")
    if len(set(names)) != count:
        raise ValueError(f"agent names must be unique, got {names}")
    return names


def _check_rates(periods_per_year: float, risk_free: float) -> None:
    if not math.isfinite(periods_per_year) or periods_per_year <= 0:
        raise ValueError(f"periods_per_year must be finite and > 0, got {periods_per_year!r}")
    if not math.isfinite(risk_free) or risk_free <= -1:
        raise ValueError(f"risk_free must be finite and > -1, got {risk_free!r}")


# --------------------------------------------------------------------------------------------
# Classification helpers
# --------------------------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    """A metric as float, or None when missing or not finite (summaries never hold NaN)."""
    if value is None or not math.isfinite(float(value)):
        return None
    return float(value)


def _exceeds(value: Any, threshold: float) -> bool:
    number = _number(value)
    return number is not None and number > threshold


def _sharpe_rank_key(name: str, summary: Mapping[str, Any]) -> tuple[bool, float, str]:
    sharpe = _number(summary.get("sharpe"))
    return (sharpe is None, -(sharpe or 0.0), name)


def _underperformance_reason(summary: Mapping[str, Any], under_sharpe: float, under_win_rate: float) -> str:
    sharpe, win_rate = _number(summary.get("sharpe")), _number(summary.get("win_rate"))
    reasons = []
    if sharpe is None:
        why = (summary.get("null_reasons") or {}).get("sharpe", "not available")
        reasons.append(f"sharpe is undefined ({why})")
    elif sharpe < under_sharpe:
        reasons.append(f"sharpe {sharpe:.3f} < {under_sharpe}")
    if win_rate is not None and win_rate < under_win_rate:
        reasons.append(f"win_rate {win_rate:.3f} < {under_win_rate}")
    return "; ".join(reasons)


def sharpe_difference_ci(
    returns: Any,
    baseline: Any,
    periods_per_year: float,
    block: int,
    *,
    resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float | None, tuple[float, float] | None]:
    """Sharpe(returns) - Sharpe(baseline) and its moving-block bootstrap confidence interval.

    The two streams are resampled together (same blocks of ``block`` consecutive bars, e.g. a week),
    so their correlation and each one's autocorrelation within a block are kept. Percentile
    interval at ``level``. ``(None, None)`` when either Sharpe is undefined or there are fewer than
    two blocks of data. Deterministic for a given ``seed``.
    """
    a = _as_float_array(returns, ndim=1, what="returns")
    b = _as_float_array(baseline, ndim=1, what="baseline")
    if a.shape != b.shape:
        raise ValueError(f"returns and baseline differ in length: {a.shape[0]} != {b.shape[0]}")
    _raise_on_non_finite_vector(a, what="returns")
    _raise_on_non_finite_vector(b, what="baseline")
    if block < 1 or not 0 < level < 1:
        raise ValueError(f"block must be >= 1 and level in (0, 1), got {block} and {level}")
    n = a.shape[0]

    def sharpe(x: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return x.mean(axis=-1) / x.std(axis=-1, ddof=1) * math.sqrt(periods_per_year)

    diff = float(sharpe(a) - sharpe(b))
    if n < 2 * block or not math.isfinite(diff):
        return None, None
    rng = np.random.default_rng(seed)
    blocks = -(-n // block)
    draws: list[np.ndarray] = []
    for chunk in range(0, resamples, 100):  # bounded memory: 100 resamples of n bars at a time
        size = min(100, resamples - chunk)
        starts = rng.integers(0, n - block + 1, size=(size, blocks))
        index = (starts[:, :, None] + np.arange(block)).reshape(size, -1)[:, :n]
        draws.append(sharpe(a[index]) - sharpe(b[index]))
    values = np.concatenate(draws)
    values = values[np.isfinite(values)]
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return diff, (float(low), float(high))
