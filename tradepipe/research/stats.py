"""Figures of a walk-forward: per-strategy metrics on the book's per-bar returns, buy-and-hold, and the
block-bootstrap confidence interval of a Sharpe difference. Pure numpy.

Definitions (``core.metrics`` / docs/architecture.md "Definitions to match exactly", on per-bar simple returns):

* book return at bar t = equity_t / equity_{t-1} - 1, equity marked at each bar's close, equity before
  the first bar = starting cash;
* ``sharpe`` (net) on those returns; ``gross_sharpe`` on the same book's equity with the fees and the
  slippage paid so far added back (the same trades, before costs: gross P&L tracked alongside, not a
  second run without fees);
* ``total_return``, ``max_drawdown`` as ``core.metrics.summarize``; ``cagr`` = (1 + total_return) **
  (periods_per_year / n) - 1;
* ``turnover`` = notional traded per year as a multiple of mean equity
  (sum of fill notionals / mean equity x periods_per_year / n);
* ``fees`` = fees paid in the quote currency; ``weight_changes`` = days the weights in force changed.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tradepipe.core.metrics import summarize

DEFAULT_RESAMPLES = 2000
DEFAULT_SEED = 20240909


def book_returns(equity: np.ndarray, starting_cash: float) -> np.ndarray:
    previous = np.concatenate(([starting_cash], equity[:-1]))
    return equity / previous - 1.0


def strategy_figures(
    equity: np.ndarray,
    gross_equity: np.ndarray,
    traded: np.ndarray,
    fees: float,
    weight_changes: int,
    starting_cash: float,
    periods_per_year: float,
    risk_free: float = 0.0,
) -> dict[str, Any]:
    """The eight summary.json figures of one strategy."""
    net = summarize(book_returns(equity, starting_cash), periods_per_year, risk_free)
    gross = summarize(book_returns(gross_equity, starting_cash), periods_per_year, risk_free)
    n = equity.size
    total = net["total_return"]
    cagr = None
    if n and total is not None and total > -1.0:
        cagr = _finite((1.0 + total) ** (periods_per_year / n) - 1.0)
    mean_equity = float(np.mean(equity)) if n else 0.0
    turnover = float(np.sum(traded)) / mean_equity * periods_per_year / n if n and mean_equity > 0 else None
    return {
        "sharpe": net["sharpe"],
        "gross_sharpe": gross["sharpe"],
        "total_return": total,
        "cagr": cagr,
        "max_drawdown": net["max_drawdown"],
        "turnover": _finite(turnover),
        "fees": float(fees),
        "weight_changes": int(weight_changes),
    }


def buy_and_hold(closes: dict[str, np.ndarray], starting_cash: float, cost_bps: float, fee_bps: float) -> dict[str, np.ndarray | float]:
    """Equal parts of the cash in each symbol, bought at its first close in the span and held.

    ``cost_bps`` (fee + slippage) is paid once on entry; a symbol's part waits in cash until its
    first bar; a missing bar keeps the last close. Returns net and gross equity, traded notional
    (per bar) and the fees paid.
    """
    symbols = list(closes)
    part = starting_cash / len(symbols)
    n = next(iter(closes.values())).size
    net, gross, traded = np.zeros(n), np.zeros(n), np.zeros(n)
    fees = 0.0
    for symbol in symbols:
        close = closes[symbol]
        valid = np.flatnonzero(np.isfinite(close))
        if valid.size == 0:
            net += part
            gross += part
            continue
        first = int(valid[0])
        filled = close.copy()
        last = np.maximum.accumulate(np.where(np.isfinite(close), np.arange(n), -1))
        filled[last >= 0] = close[last[last >= 0]]
        growth = np.where(np.arange(n) >= first, filled / close[first], 1.0)
        held = np.arange(n) >= first
        net += np.where(held, part * (1.0 - cost_bps / 1e4) * growth, part)
        gross += np.where(held, part * growth, part)
        traded[first] += part
        fees += part * fee_bps / 1e4
    return {"equity": net, "gross_equity": gross, "traded": traded, "fees": fees}


# --------------------------------------------------------------------------- bootstrap


def block_starts(rng: np.random.Generator, n: int, block: int, resamples: int) -> np.ndarray:
    """Moving-block bootstrap: ``resamples`` x (n // block) block starts, uniform on [0, n - block]."""
    return rng.integers(0, n - block + 1, size=(resamples, n // block))


def _resampled_sharpes(returns: np.ndarray, starts: np.ndarray, block: int, periods_per_year: float, rf_per_period: float) -> np.ndarray:
    """Sharpe of every resampled series (its blocks laid end to end), from block sums of r and r^2."""
    first = np.concatenate(([0.0], np.cumsum(returns)))
    second = np.concatenate(([0.0], np.cumsum(returns * returns)))
    s1 = (first[starts + block] - first[starts]).sum(axis=1)
    s2 = (second[starts + block] - second[starts]).sum(axis=1)
    m = starts.shape[1] * block
    variance = (s2 - s1 * s1 / m) / (m - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (s1 / m - rf_per_period) / np.sqrt(variance) * math.sqrt(periods_per_year)


def sharpe_difference_ci(
    a: np.ndarray,
    b: np.ndarray,
    block: int,
    periods_per_year: float,
    risk_free: float = 0.0,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> dict[str, Any]:
    """Sharpe(a) - Sharpe(b) on the full sample and its 95% percentile interval from a moving-block
    bootstrap: the same blocks of bars drawn for both series (they are paired in time), ``block``
    bars long (a week), n // block blocks per resample, ``resamples`` draws from ``seed``.

    ``ci95`` is None (with ``note``) when a Sharpe is undefined or the series is under two blocks.
    """
    if a.shape != b.shape:
        raise ValueError(f"paired series differ in length: {a.size} != {b.size}")
    sa = summarize(a, periods_per_year, risk_free)["sharpe"]
    sb = summarize(b, periods_per_year, risk_free)["sharpe"]
    diff = None if sa is None or sb is None else sa - sb
    result: dict[str, Any] = {"sharpe_diff_vs_equal": _finite(diff), "ci95": None, "block_bars": block, "resamples": resamples, "seed": seed}
    if diff is None:
        result["note"] = "a Sharpe ratio is undefined (no volatility): no interval"
        return result
    if a.size < 2 * block:
        result["note"] = f"{a.size} bars are fewer than two {block}-bar blocks: no interval"
        return result
    rf = (1.0 + risk_free) ** (1.0 / periods_per_year) - 1.0
    starts = block_starts(np.random.default_rng(seed), a.size, block, resamples)
    diffs = _resampled_sharpes(a, starts, block, periods_per_year, rf) - _resampled_sharpes(b, starts, block, periods_per_year, rf)
    diffs = diffs[np.isfinite(diffs)]
    if diffs.size < resamples // 2:
        result["note"] = "most resamples had an undefined Sharpe ratio: no interval"
        return result
    low, high = (float(x) for x in np.percentile(diffs, [2.5, 97.5]))
    result["ci95"] = [low, high]
    return result


def verdict(key: str, comparison: dict[str, Any]) -> str:
    """One honest sentence about a comparison."""
    diff, ci = comparison.get("sharpe_diff_vs_equal"), comparison.get("ci95")
    if diff is None or ci is None:
        return f"{key} vs equal weight: no confidence interval ({comparison.get('note', 'undefined')})."
    low, high = ci
    span = f"Sharpe difference {diff:+.2f}, 95% CI [{low:+.2f}, {high:+.2f}]"
    if low <= 0.0 <= high:
        return f"{key} vs equal weight: {span}; the interval contains 0, so this run does not show that {key} differs from equal weight."
    better = "better" if low > 0 else "worse"
    return f"{key} vs equal weight: {span}; the interval excludes 0: {key} did {better} than equal weight out of sample on these data."


def _finite(value: float | None) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None
