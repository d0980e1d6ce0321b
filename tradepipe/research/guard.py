"""The cycle guard's verdict for every row of a symbol at once, equal to judging each row's window.

The walk-forward engine trades bar ``t`` on the window of ``history_bars`` rows ending at the row
that opened at ``t``; the live cycle judges that window with
:func:`tradepipe.core.agents.validate_history` (decision time: the bar's close). Judging 35k windows
one by one costs ~40 CPU seconds for 4 years of two symbols, so :func:`window_verdicts` splits the
windows in two by construction:

* a window is *clean* when every blocking rule provably passes on it: no bar of it fails a per-bar
  rule (nulls, non-positive prices, negative volume, high/low, alignment: each computed from the
  bar's own values only, so the whole file's column is the window's column); its timestamps
  strictly increase (so no duplicate, no decrease, and no bar opens or closes after the newest
  bar's close); and no bar of it is an outlier. The outlier ratio of a bar reads up to
  ``OUTLIER_NEIGHBOURS`` (N) bars on each side, so a bar at least N rows from both ends of the
  window reads the same bars in the window as in the whole file (row order = time order there),
  and the ratios of the first and last N bars are those of the window's first and last 2N rows,
  computed for all windows in one batch with the same :func:`outlier_scores`;
* every other window (a defect in or near it, or fewer than 2N rows) gets ``validate_history``
  itself, so its reason string is the live cycle's.

``tests/walkforward/test_fast_guard.py`` checks every row against ``validate_history`` on real
candles with planted defects.
"""

from __future__ import annotations

import numpy as np

from tradepipe.core.agents import validate_history
from tradepipe.core.bar_quality import OUTLIER_NEIGHBOURS, PRICE_COLUMNS, VALUE_COLUMNS, bar_columns, outlier_scores, rule_failures
from tradepipe.research.data import SymbolBars

# Rules whose column at a bar depends on that bar's values only.
_PER_BAR_RULES = ("null_value", "non_positive_price", "negative_volume", "high_low_inconsistent", "misaligned_timestamp")
_EDGE_ROWS = 2 * OUTLIER_NEIGHBOURS
# Windows per batch of the edge computation (bounds its memory to a few tens of MB).
_BATCH_WINDOWS = 2048


def _prefix(flags: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(flags, dtype=np.int64)])


def _edge_failures(prices: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """For each run of ``_EDGE_ROWS`` rows starting at row j: does one of its first (last)
    ``OUTLIER_NEIGHBOURS`` bars fail the outlier rule, judged on that run alone."""
    runs = len(prices["close"]) - _EDGE_ROWS + 1
    first = np.zeros(max(runs, 0), dtype=bool)
    last = np.zeros(max(runs, 0), dtype=bool)
    for start in range(0, max(runs, 0), _BATCH_WINDOWS):
        stop = min(start + _BATCH_WINDOWS, runs)
        batch = {
            name: np.ascontiguousarray(np.lib.stride_tricks.sliding_window_view(prices[name][start : stop + _EDGE_ROWS - 1], _EDGE_ROWS))
            for name in PRICE_COLUMNS
        }
        ratio, _ = outlier_scores(batch)
        with np.errstate(invalid="ignore"):
            fails = ratio > 1.0
        first[start:stop] = fails[:, :OUTLIER_NEIGHBOURS].any(axis=1)
        last[start:stop] = fails[:, OUTLIER_NEIGHBOURS:].any(axis=1)
    return first, last


def window_verdicts(bars: SymbolBars, history_bars: int, step_ms: int, rows: tuple[int, int] | None = None) -> list[str | None]:
    """The guard's verdict on the window ending at each row (``rows=(first, last)``: only rows
    first..last, inclusive, judged on those rows and the ``history_bars - 1`` before them: a window
    never reads further back, and the outlier ratios of a window's inner bars read only rows inside
    it, so the verdicts equal the whole file's at those rows)."""
    if rows is None:
        return _all_verdicts(bars, history_bars, step_ms)
    first, last = rows
    if not 0 <= first <= last < len(bars):
        raise ValueError(f"rows {rows} outside the file's {len(bars)} rows")
    lo = max(first + 1 - history_bars, 0)
    part = slice(lo, last + 1)
    sub = SymbolBars(
        bars.symbol, bars.timeframe, bars.timestamps[part], bars.open[part], bars.high[part], bars.low[part], bars.close[part], bars.volume[part]
    )
    return _all_verdicts(sub, history_bars, step_ms)[first - lo :]


def _all_verdicts(bars: SymbolBars, history_bars: int, step_ms: int) -> list[str | None]:
    """``validate_history(bars.window(row, history_bars), as_of_ms=bars.timestamps[row] + step_ms)``
    for every row (the guard's verdict when the engine trades the bar that opened at that row)."""
    n = len(bars)
    arrays = {name: getattr(bars, name) for name in VALUE_COLUMNS}

    def judged(row: int) -> str | None:
        return validate_history(bars.window(row, history_bars), int(bars.timestamps[row]) + step_ms)

    if any(len(array) != n for array in arrays.values()) or history_bars < _EDGE_ROWS:
        return [judged(row) for row in range(n)]
    stamps = np.asarray(bars.timestamps, dtype=np.float64)
    values = {name: np.asarray(array, dtype=np.float64) for name, array in arrays.items()}
    masks = rule_failures(bar_columns(stamps, values, bars.symbol, bars.timeframe), None)
    per_bar = _prefix(np.logical_or.reduce([masks[name] for name in _PER_BAR_RULES]))
    with np.errstate(invalid="ignore"):
        not_increasing = _prefix(np.concatenate([[False], ~(np.diff(stamps) > 0)]))  # NaN counts as not increasing
        outliers = _prefix(outlier_scores({name: values[name] for name in PRICE_COLUMNS})[0] > 1.0)  # file in row order
    first_fails, last_fails = _edge_failures({name: values[name] for name in PRICE_COLUMNS})

    verdicts: list[str | None] = []
    for row in range(n):
        start = max(row + 1 - history_bars, 0)
        clean = (
            row + 1 - start >= _EDGE_ROWS
            and per_bar[row + 1] == per_bar[start]
            and not_increasing[row + 1] == not_increasing[start + 1]
            and outliers[row + 1 - OUTLIER_NEIGHBOURS] == outliers[start + OUTLIER_NEIGHBOURS]
            and not first_fails[start]
            and not last_fails[row + 1 - _EDGE_ROWS]
        )
        verdicts.append(None if clean else judged(row))
    return verdicts
