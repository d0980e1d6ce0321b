"""summary.json of a walk-forward: the layout scripts depend on, checked against
``summary.schema.json`` before it is written.

``strategies[key]`` for ``adaptive:<method>``, ``equal_weight``, ``agent:<name>`` and ``buy_and_hold``
holds exactly ``sharpe`` (net), ``gross_sharpe``, ``total_return``, ``cagr``, ``max_drawdown``,
``turnover``, ``fees`` and ``weight_changes``; a figure that is undefined is ``null`` (an agent that
never voted has ``sharpe: null``). ``comparisons["adaptive:<method>"]`` holds
``sharpe_diff_vs_equal`` and ``ci95`` (``[low, high]``, or ``null`` with a ``note``), and the
multiple-testing figures ``trials``, ``deflated_sharpe``, ``pbo`` and ``promotions`` (plus ``pool``, the
members after each generation that changed them, for ``adaptive:loop``). Everything
else (run details, weight decisions, skipped bars) is in other top-level keys.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from tradepipe.core.timeframes import DAY_MS, bars_per_day
from tradepipe.research.engine import EngineRun
from tradepipe.research.stats import (
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    book_returns,
    buy_and_hold,
    sharpe_difference_ci,
    strategy_figures,
    verdict,
)
from tradepipe.core.timeframes import iso_utc

SCHEMA_PATH = Path(__file__).with_name("summary.schema.json")
SCHEMA_VERSION = 1
FIGURES = ("sharpe", "gross_sharpe", "total_return", "cagr", "max_drawdown", "turnover", "fees", "weight_changes")
DEFINITIONS = {
    "returns": "per bar: book equity at the bar's close / equity at the previous bar's close - 1 (the starting cash before the first bar)",
    "sharpe": "mean(r - rf) / std(r, ddof=1) * sqrt(periods_per_year) on the net book returns (core.metrics)",
    "gross_sharpe": "the same on the book's equity with the fees and slippage paid so far added back (same trades, before costs)",
    "total_return": "prod(1 + r) - 1",
    "cagr": "(1 + total_return) ** (periods_per_year / n) - 1",
    "max_drawdown": "min(equity / running_max(equity)) - 1, equity starting at 1.0",
    "turnover": "notional traded per year as a multiple of mean equity",
    "fees": "fees paid, quote currency",
    "weight_changes": "days on which the weights in force changed",
    "ci95": "moving-block bootstrap (weekly blocks, the same blocks for both books) percentile interval of the Sharpe difference",
    "out_of_sample": "the weights trading day d were decided from the signals of the window before d",
    "trials": "adaptive:loop: every variant its discovery evaluated over the run; another adaptive entry: the adaptive entries the run compared",
    "deflated_sharpe": "Deflated Sharpe Ratio (Bailey and Lopez de Prado 2014) of the entry's net per-bar book returns over the run against the best of `trials` skill-less trials (null-hypothesis Sharpe variance 1 / (T - 1)): the probability its Sharpe is above what that many tries would show by luck",
    "pbo": "Probability of Backtest Overfitting (CSCV, 16 blocks). adaptive:loop: the median over its generations of picking the best candidate; another adaptive entry: picking the best of the run's adaptive entries and equal_weight by in-sample Sharpe",
    "promotions": "adaptive:loop: every promotion and retirement of a variant, with its day and reason (empty for other entries)",
}
PBO_BLOCKS = 16


class SummaryInvalidError(RuntimeError):
    """summary.json would not match its schema: a bug, never written."""


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


def validate_summary(summary: dict[str, Any]) -> None:
    """Raise ``SummaryInvalidError`` naming the first problem if ``summary`` breaks the schema."""
    import jsonschema

    errors = sorted(jsonschema.Draft202012Validator(schema()).iter_errors(summary), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.path) or "(top level)"
        raise SummaryInvalidError(f"summary.json breaks its schema at {where}: {first.message}")


def strategy_series(run: EngineRun) -> dict[str, dict[str, np.ndarray]]:
    """Per strategy (buy-and-hold included): net equity, gross equity and traded notional per bar."""
    config = run.config
    series: dict[str, dict[str, np.ndarray]] = {}
    for key, book in run.books.items():
        equity = np.asarray(book.equity)
        gross = equity + np.asarray(book.fees) + np.asarray(book.slippage)
        series[key] = {"equity": equity, "gross_equity": gross, "traded": np.asarray(book.traded)}
    hold = buy_and_hold(run.closes, float(config.starting_cash), float(config.fee_bps + config.slippage_bps), float(config.fee_bps))
    series["buy_and_hold"] = {k: v for k, v in hold.items() if isinstance(v, np.ndarray)}
    series["buy_and_hold"]["fees"] = np.array([hold["fees"]])
    return series


def build_summary(
    run: EngineRun,
    *,
    name: str,
    data_dir: str,
    methods: Sequence[str],
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    series: dict[str, dict[str, np.ndarray]] | None = None,
    loops: Mapping[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """summary.json of ``run``; ``loops[key]`` is ``pool_book.loop_record`` of each loop entry."""
    config = run.config
    loops = loops or {}
    ppy = config.periods_per_year
    cash = float(config.starting_cash)
    series = series or strategy_series(run)
    strategies: dict[str, Any] = {}
    details: dict[str, Any] = {}
    for key, s in series.items():
        book = run.books.get(key)
        fees = float(book.portfolio.fees_paid) if book else float(s["fees"][0])
        changes = sum(d.updated for d in book.decisions) if book else 0
        strategies[key] = strategy_figures(s["equity"], s["gross_equity"], s["traded"], fees, changes, cash, ppy, config.risk_free)
        details[key] = {
            "final_equity": float(s["equity"][-1]),
            "fills": book.fills if book else 1,
            "slippage": float(book.slippage_total) if book else None,
            "weights": "adaptive" if book and book.spec.method else "fixed" if book else "none",
        }
    block = int(round(7 * bars_per_day(config.timeframe)))
    comparisons: dict[str, Any] = {}
    equal = book_returns(series["equal_weight"]["equity"], cash) if "equal_weight" in series else None
    for key in series:
        if not key.startswith("adaptive:") or equal is None:
            continue
        comparison = sharpe_difference_ci(book_returns(series[key]["equity"], cash), equal, block, ppy, config.risk_free, resamples, seed)
        comparison["verdict"] = verdict(key, comparison)
        comparisons[key] = comparison
    _add_selection_figures(comparisons, series, cash, loops)
    decisions = {
        key: [
            {"day": _iso_day(d.day_ms), "changed": d.updated, "weights": {a: round(w, 6) for a, w in d.weights.items()}, "reason": d.reason}
            for d in book.decisions
        ]
        for key, book in run.books.items()
        if book.spec.method
    }
    summary = {
        "schema_version": SCHEMA_VERSION,
        "name": name,
        "status": "complete",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data": {
            "directory": str(data_dir),
            "symbols": list(config.symbols),
            "timeframe": config.timeframe,
            "first_bar": _iso(int(run.bars[0])),
            "last_bar": _iso(int(run.bars[-1])),
            "bars": int(run.bars.size),
            "days": len({int(b) // DAY_MS for b in run.bars.tolist()}),
        },
        "config": {
            "methods": list(methods),
            "fee_bps": float(config.fee_bps),
            "slippage_bps": float(config.slippage_bps),
            "window_days": config.window_days,
            "starting_cash": float(config.starting_cash),
            "agents": list(config.agents),
            "history_bars": config.history_bars,
            "min_weight": config.min_weight,
            "max_weight": config.max_weight,
            "min_signals": config.min_signals,
            "min_sharpe": config.min_sharpe,
            "rebalance_band": config.rebalance_band,
            "entry_hysteresis": config.entry_hysteresis,
            "min_hold_bars": config.min_hold_bars,
            "learning_rate": config.learning_rate,
            "max_position_fraction": float(config.limits.max_position_fraction),
            "allow_short": config.limits.allow_short,
        },
        "definitions": DEFINITIONS,
        "strategies": strategies,
        "comparisons": comparisons,
        "details": details,
        "decisions": decisions,
        "skipped": run.skipped,
        "notes": list(run.notes),
        "timing": {
            "seconds": round(run.seconds, 3),
            "signal_seconds": round(run.signal_seconds, 3),
            "bars_per_second": round(run.bars.size / run.seconds, 1) if run.seconds > 0 else None,
        },
    }
    if loops:
        summary["loop"] = {key: {k: v for k, v in record.items() if k not in ("promotions", "pool")} for key, record in loops.items()}
    summary = _json_safe(summary)
    validate_summary(summary)
    return summary


def _add_selection_figures(comparisons: dict[str, Any], series: Mapping[str, dict[str, np.ndarray]], cash: float, loops: Mapping[str, dict[str, Any]]) -> None:
    """``trials``, ``deflated_sharpe``, ``pbo`` and ``promotions`` (and ``pool`` for a loop) per adaptive entry
    (see DEFINITIONS)."""
    from tradepipe.research.evaluation import stream_figures
    from tradepipe.research.selection import deflated_sharpe, pbo_cscv

    keys = [k for k in comparisons]
    if not keys:
        return
    returns = {k: np.nan_to_num(book_returns(series[k]["equity"], cash)) for k in [*keys, "equal_weight"]}
    matrix = np.column_stack([returns[k] for k in [*keys, "equal_weight"]])
    run_pbo = pbo_cscv(matrix, blocks=PBO_BLOCKS)["pbo"] if matrix.shape[0] >= 2 * PBO_BLOCKS else None
    for key in keys:
        loop = loops.get(key)
        trials = int(loop["trials"]) if loop else len([k for k in keys if k not in loops])
        r = returns[key]
        figures = stream_figures(r[:, None], 1.0)
        dsr = None
        if r.size > 2 and trials >= 1:
            dsr = deflated_sharpe(float(figures["sharpe_per_period"][0]), r.size, float(figures["skew"][0]), float(figures["kurtosis"][0]), trials, 1.0 / (r.size - 1))
        comparisons[key].update(
            trials=trials, deflated_sharpe=dsr, pbo=loop["pbo"] if loop else run_pbo,
            promotions=list(loop["promotions"]) if loop else [],
        )
        if loop:
            comparisons[key]["pool"] = list(loop["pool"])


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Atomic write of valid JSON (NaN and infinities are refused, never written)."""
    text = json.dumps(payload, indent=2, allow_nan=False, sort_keys=False)
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(text + "\n")
    temporary.replace(path)


def _json_safe(value: Any) -> Any:
    """NaN / infinity -> null; numpy scalars -> Python numbers."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def _iso(ms: int) -> str:
    return iso_utc(ms, timespec="auto")


def _iso_day(ms: int) -> str:
    return iso_utc(ms)[:10]
