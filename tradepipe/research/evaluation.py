"""Many variants' traded streams at once: whole-array votes, then the live book's solo-book simulation.

``variant_streams`` is ``core.performance.agent_streams`` for variants, without the signal table: the
votes come from ``variants.variant_votes`` (whole arrays, proven equal to the per-bar agents) and the
cube goes straight to ``core.performance.simulate_books`` (the function ``agent_streams`` calls).
``tests/research/test_variants.py`` proves the result equal to ``agent_streams`` on a signal table of
per-bar agent calls on real candles (1e-9).

The market's union timeline is the stream's index; a symbol without a bar at a time, or whose window
fails the cycle's guard there, is neither voted nor re-marked (NaN in the cube), as in the signal table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tradepipe.core.metrics import summarize_many
from tradepipe.core.performance import BookRules, simulate_books
from tradepipe.research.data import MarketFrame
from tradepipe.research.variants import Variant, variant_votes


@dataclass(frozen=True)
class VariantStreams:
    """Per-bar solo-book returns of each variant: ``returns`` is bars-1 x variants, row t earned by the
    position held over bar t (indexed by ``bar_ms[:-1]``, as ``agent_streams``)."""

    names: tuple[str, ...]
    bar_ms: np.ndarray
    returns: np.ndarray
    gross: np.ndarray | None = None


def history_bars_for(variants: Sequence[Variant], floor: int = 0) -> int:
    """The window every variant can vote on (the cycle's ``history_bars`` for this pool)."""
    return max([floor, *(v.min_bars for v in variants)])


def vote_cube(market: MarketFrame, variants: Sequence[Variant], history_bars: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """bars x variants x symbols of votes, and bars x symbols of closes and opens, on the union timeline."""
    n = market.timeline.size
    cube = np.full((n, len(variants), len(market.symbols)), np.nan)
    close = np.full((n, len(market.symbols)), np.nan)
    open_ = np.full((n, len(market.symbols)), np.nan)
    for s, symbol in enumerate(market.symbols):
        bars = market.bars[symbol]
        at = np.searchsorted(market.timeline, bars.timestamps)
        voted = None
        for k, variant in enumerate(variants):
            votes = variant_votes(variant, bars, history_bars)
            cube[at, k, s] = votes
            voted = np.isfinite(votes) if voted is None else voted
        if voted is None:
            continue
        close[at[voted], s] = bars.close[voted]
        open_[at[voted], s] = bars.open[voted]
    return cube, close, open_


def variant_streams(
    market: MarketFrame, variants: Sequence[Variant], rules: BookRules, history_bars: int | None = None, *, gross: bool = False
) -> VariantStreams:
    """Every variant's solo-book stream over the whole market (``gross``: also the stream before costs)."""
    window = history_bars or history_bars_for(variants)
    cube, close, open_ = vote_cube(market, variants, window)
    net = simulate_books(cube, close, open_, rules)
    before_costs = simulate_books(cube, close, open_, rules, costs=False) if gross else None
    return VariantStreams(tuple(v.name for v in variants), market.timeline, net, before_costs)


def window_rows(timeline: np.ndarray, step_ms: int, day_ms: int, lookback_days: int) -> slice:
    """The rows a decision at ``day_ms`` may read: bars opened in the last ``lookback_days`` days whose
    close is at or before ``day_ms``."""
    from tradepipe.core.timeframes import DAY_MS

    hi = int(np.searchsorted(timeline, day_ms - step_ms, side="right"))
    lo = int(np.searchsorted(timeline, day_ms - lookback_days * DAY_MS))
    return slice(lo, hi)


def window_streams(market: MarketFrame, variants: Sequence[Variant], rules: BookRules, history_bars: int, rows: slice) -> np.ndarray:
    """Each variant's solo book over ``rows`` only, started in cash at the window's first bar (net of
    costs; NaN read as 0): rows - 1 x variants, the matrix a decision's DSR and PBO read."""
    cube, close, open_ = vote_cube(market, variants, history_bars)
    return np.nan_to_num(simulate_books(cube[rows], close[rows], open_[rows], rules))


def holding_periods(returns: np.ndarray) -> np.ndarray:
    """Per column, the runs of bars with a non-zero return: the times the solo book went from cash to a
    position (a flat book earns exactly 0). The trade count the promotion rules read."""
    invested = np.nan_to_num(returns) != 0.0
    starts = invested & ~np.vstack([np.zeros((1, returns.shape[1]), dtype=bool), invested[:-1]])
    return starts.sum(axis=0)


def stream_figures(returns: np.ndarray, periods_per_year: float) -> dict[str, np.ndarray]:
    """Per column: annualised Sharpe (``core.metrics``), per-period Sharpe, skew, kurtosis, holding periods."""
    from scipy import stats as sps

    clean = np.nan_to_num(returns)
    summaries = summarize_many(clean, periods_per_year, 0.0, names=[str(i) for i in range(clean.shape[1])])
    sharpe = np.array([summaries[str(i)]["sharpe"] if summaries[str(i)]["sharpe"] is not None else np.nan for i in range(clean.shape[1])])
    std = clean.std(axis=0, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_period = np.where(std > 0, clean.mean(axis=0) / std, 0.0)
        skew = np.nan_to_num(sps.skew(clean, axis=0, bias=False))
        kurt = np.nan_to_num(sps.kurtosis(clean, axis=0, fisher=False, bias=False), nan=3.0)
    return {"sharpe": sharpe, "sharpe_per_period": per_period, "skew": skew, "kurtosis": kurt, "holding_periods": holding_periods(clean)}


__all__ = [
    "VariantStreams",
    "history_bars_for",
    "holding_periods",
    "stream_figures",
    "variant_streams",
    "vote_cube",
    "window_rows",
    "window_streams",
]
