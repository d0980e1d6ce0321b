"""Market-bar quality rules: one pure, vectorised definition used by the cycle's guard, the Great
Expectations bar suite and ``tradepipe data check``.

:func:`bar_features` turns one symbol's bars (in the order they arrived) into a frame with one
derived column per rule; :data:`BAR_RULES` says, for each rule, which column and which bound make a
bar fail. The plain-code guard (:func:`find_defects`, :func:`blocking_reason`) and the Great
Expectations suite (``tradepipe.checks.bar_suite``) evaluate exactly these columns against exactly
these bounds, so the two cannot drift apart (a test compares them on every shared candle file).

Severities: ``ERROR`` means the bar must never reach a trade: the cycle skips the symbol while such a
bar is among the bars its agents read. ``WARN`` means the bar is real but would mislead a report
(gaps, zero-volume bars, a possibly unfinished last row of a file); it is reported, not blocked.

The outlier rule ("a bar far outside the recent range") is built to catch the bogus first rows of
the CryptoDataDownload exports (BTC open/high 16199.91 against a close of 4308.83; ETH 652.74 against
300.79) without flagging real crashes, pumps and flash-crash wicks (2017-08-22 ETH wick to 144,
2018-10-15 Tether de-peg, 2020-03-12, 2021-05-19):

* reference: the median log close of the ``OUTLIER_NEIGHBOURS`` bars before the bar, and separately
  of the ones after it (three bars before, or one bar after, are enough for a side to count);
* scale: the median log range ``ln(high / low)`` of those neighbours (flat zero-range bars left out),
  i.e. how far prices typically move within one bar right now;
* distance: each price's distance to the nearer of the two references, and the farthest price's
  distance counts. A real move starts at one side's level and ends at the other's (a crash bar
  opens at the old level and closes at the new one), a bad print is far from both. The body (open,
  close) and the wicks (high, low) are judged apart, because real wicks go much further than real
  bodies;
* a bar is an outlier when a distance exceeds both a multiple of the scale and an absolute floor.
  With one side only the floors are much higher, because a real move and a bad print look alike
  there: a file's first bars (later bars only) need a body x1.82 away; the newest bar of a live
  cycle (earlier bars only) x3.3, since blocking a symbol in a real crash would keep its stop-loss
  from acting, and one cycle later the bar is judged again with the bar after it. The newest bar's
  open, though, must be near the previous close (the market trades around the clock), with the
  two-sided bounds: a whole bar printed at the wrong price is caught at once; a bad close alone is
  caught one cycle later.

Measured on the shared candles (``tests/core/test_bar_quality.py``): the two bogus rows reach 2.2 and
1.3 times their bound; no other bar of the 4-year BTC/ETH/LTC 1h files, the 2018 1h/5m/1d or the 2024
4h files reaches 0.4 of it, and judged as a live cycle judges its newest bar none reaches 0.5.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from tradepipe.core.timeframes import iso_utc, timeframe_ms
from tradepipe.core.types import BarHistory

__all__ = [
    "BAR_RULES",
    "ERROR",
    "WARN",
    "BarDefect",
    "BarRule",
    "bar_columns",
    "bar_features",
    "bar_features_from_history",
    "blocking_defects",
    "blocking_reason",
    "defects_from_mask",
    "find_defects",
    "history_columns",
    "outlier_scores",
    "rule_failures",
]

Severity = Literal["ERROR", "WARN"]
ERROR: Severity = "ERROR"
WARN: Severity = "WARN"

PRICE_COLUMNS = ("open", "high", "low", "close")
VALUE_COLUMNS = (*PRICE_COLUMNS, "volume")

OUTLIER_NEIGHBOURS = 24
# Bars needed on a side for it to count: three before; one after is enough to tell a bad print
# (the next bar is back at the old level) from a real move (the next bar stays at the new one).
OUTLIER_MIN_BEFORE = 3
OUTLIER_MIN_AFTER = 1
# Two-sided (bars before and after): distance in typical bar ranges, and in log price.
OUTLIER_BODY_RANGES = 20.0
OUTLIER_WICK_RANGES = 60.0
OUTLIER_TWO_SIDED_FLOOR = 0.25  # ln: about +28% / -22%
# One-sided, a real move and a bad print look alike, so only gross errors count. Judged by later
# bars only (a file's first rows): body x1.82 or /1.82 from their median close, wicks x2.72.
OUTLIER_AFTER_ONLY_FLOORS = (0.6, 1.0)
# Judged by earlier bars only (the newest bar of a live cycle) a false alarm is costlier: it would
# keep a symbol's stop-loss and daily-loss halt from acting in a real crash, and one cycle later the
# bar is judged with the bar after it. So only x3.3 (or /3.3) bodies and x5 wicks count there.
OUTLIER_BEFORE_ONLY_FLOORS = (1.2, 1.6)
# The last row of a dump taken from a live exchange is the candle still forming: its volume is
# a fraction of a finished bar's (about half in binance_2018_octobot). Below this share of the
# previous bars' median volume it is reported as possibly unfinished.
UNFINISHED_VOLUME_SHARE = 0.6
UNFINISHED_VOLUME_BARS = 24
# Prices must be finite: the suite bounds them by this (GE has no "finite" expectation).
MAX_FINITE = 1e300
# 1970-01-01 is a Thursday; exchanges open weekly bars on Mondays (1970-01-05).
_WEEK_ORIGIN_MS = 4 * 86_400_000


@dataclass(frozen=True)
class BarRule:
    """One rule: bar ``i`` fails when ``column`` is outside [``min_value``, ``max_value``] (NaN
    never fails: a missing input is the ``null_value`` rule's business), or, for ``null_value``
    and ``duplicate_timestamp``, as described."""

    name: str
    severity: Severity
    column: str
    description: str
    min_value: float | None = None
    max_value: float | None = None
    blocks_in_cycle: bool = True
    strict_min: bool = False


BAR_RULES: tuple[BarRule, ...] = (
    BarRule("null_value", ERROR, "null_count", "timestamp, open, high, low, close and volume are all present (no null/NaN)", max_value=0),
    BarRule("non_positive_price", ERROR, "price_min", "open, high, low and close are positive and finite", min_value=0, max_value=MAX_FINITE, strict_min=True),
    BarRule("negative_volume", ERROR, "volume", "volume is zero or more, and finite", min_value=0, max_value=MAX_FINITE),
    BarRule("high_low_inconsistent", ERROR, "bracket_excess", "high >= max(open, close) and low <= min(open, close)", max_value=0),
    BarRule("duplicate_timestamp", ERROR, "duplicate_count", "each bar open time appears once", max_value=0),
    BarRule("timestamp_not_increasing", ERROR, "step_ms", "each bar opens after the one before it in the data", min_value=0),
    BarRule("misaligned_timestamp", ERROR, "alignment_offset_ms", "bar open times are multiples of the timeframe (UTC)", min_value=0, max_value=0),
    BarRule("future_timestamp", ERROR, "timestamp", "no bar opens after the time the data is checked at", max_value=None),
    BarRule("unfinished_bar", ERROR, "close_ms", "no bar closes after the time the data is checked at (it is still forming)", max_value=None),
    BarRule("outlier", ERROR, "outlier_ratio", "no bar far outside the range of its neighbours (see module notes)", max_value=1.0),
    BarRule("gap", WARN, "missing_bars_before", "no bars missing between consecutive bars", max_value=0, blocks_in_cycle=False),
    BarRule("zero_volume", WARN, "volume_is_zero", "volume is not zero (no trades: usually an exchange outage)", max_value=0, blocks_in_cycle=False),
    BarRule(
        "maybe_unfinished_last_bar", WARN, "last_volume_share",
        f"the last bar of a file has at least {UNFINISHED_VOLUME_SHARE:.0%} of the median volume of the "
        f"{UNFINISHED_VOLUME_BARS} bars before it (a dump ends with the candle still forming)",
        min_value=UNFINISHED_VOLUME_SHARE, blocks_in_cycle=False,
    ),
)
RULES_BY_NAME = {rule.name: rule for rule in BAR_RULES}


@dataclass(frozen=True)
class BarDefect:
    """One defect: ``timestamp`` is the open time (ms) of the bar concerned (for a gap: the first
    missing bar)."""

    symbol: str
    timestamp: int | None  # None only for a row without a readable timestamp
    rule: str
    severity: Severity
    detail: str

    def as_dict(self) -> dict[str, object]:
        return {"symbol": self.symbol, "timestamp": self.timestamp, "rule": self.rule, "severity": self.severity, "detail": self.detail}


Columns = dict[str, np.ndarray]


def _alignment_origin(step_ms: int) -> int:
    return _WEEK_ORIGIN_MS if step_ms % 604_800_000 == 0 else 0


def _side_medians(values: np.ndarray, reverse: bool) -> np.ndarray:
    """For each row of ``values`` (series x bars): the median of the up to ``OUTLIER_NEIGHBOURS`` values
    before (or after) each position, itself and NaNs excluded; NaN where fewer than
    ``OUTLIER_MIN_BEFORE`` (``_AFTER``) values are there. All series in one sort."""
    minimum = OUTLIER_MIN_AFTER if reverse else OUTLIER_MIN_BEFORE
    series = values[:, ::-1] if reverse else values
    count, n = series.shape
    if n == 0:
        return series.copy()
    padded = np.concatenate([np.full((count, OUTLIER_NEIGHBOURS), np.nan), series[:, :-1]], axis=1)
    windows = np.sort(np.lib.stride_tricks.sliding_window_view(padded, OUTLIER_NEIGHBOURS, axis=1), axis=2)  # NaNs sort last
    valid = np.count_nonzero(~np.isnan(windows), axis=2)
    low = np.take_along_axis(windows, (np.maximum(valid - 1, 0) // 2)[..., None], axis=2)[..., 0]
    high = np.take_along_axis(windows, (np.maximum(valid, 1) // 2 - (valid == 0))[..., None], axis=2)[..., 0]
    medians = np.where(valid >= minimum, (low + high) / 2, np.nan)
    return medians[:, ::-1] if reverse else medians


def outlier_scores(prices: Columns, *, use_later_bars: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Per bar (``prices`` in time order): the largest distance / bound over body and wicks (above 1
    is an outlier), and the median close the body was measured against.

    ``prices`` may also hold 2-D arrays (series x bars, e.g. many windows of one file): each row is
    judged on its own, with the same arithmetic as a 1-D call on that row.
    ``use_later_bars=False`` judges every bar as the newest bar of a live cycle would be judged,
    from the bars before it only (used to prove the rule raises no false alarm in a live loop).
    """
    one_series = np.ndim(prices["close"]) == 1
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        logs = {name: np.log(np.where(prices[name] > 0, prices[name], np.nan)).reshape(-1, np.shape(prices[name])[-1]) for name in PRICE_COLUMNS}
        bar_range = logs["high"] - logs["low"]
        bar_range = np.where(bar_range > 0, bar_range, np.nan)  # flat (zero-volume) bars say nothing of the scale
        count = bar_range.shape[0]
        stacked = np.concatenate([logs["close"], bar_range])
        sides = [(medians[:count], medians[count:]) for medians in (_side_medians(stacked, reverse) for reverse in ((False, True) if use_later_bars else (False,)))]
        has_before = ~np.isnan(sides[0][0])
        has_after = ~np.isnan(sides[1][0]) if len(sides) == 2 else np.zeros(has_before.shape, dtype=bool)
        scale = np.fmax.reduce([side_scale for _, side_scale in sides])
        ratios = []
        reference = np.full(logs["close"].shape, np.nan)
        for which, parts, ranges in ((0, ("open", "close"), OUTLIER_BODY_RANGES), (1, ("high", "low"), OUTLIER_WICK_RANGES)):
            # Each price's distance to the nearer side's median (a real move starts at one side's level
            # and ends at the other's); the part's distance is its farthest price's. NaN if missing.
            per_price = np.array([np.fmin.reduce([np.abs(logs[name] - side) for side, _ in sides]) for name in parts])
            distance = np.maximum.reduce(per_price)
            floor = np.where(
                has_before & has_after,
                OUTLIER_TWO_SIDED_FLOOR,
                np.where(has_before, OUTLIER_BEFORE_ONLY_FLOORS[which], OUTLIER_AFTER_ONLY_FLOORS[which]),
            )
            ratios.append(distance / np.maximum(ranges * np.nan_to_num(scale), floor))
            if which == 0:  # the median the body's farthest price was measured against, for the report
                farthest = np.argmax(np.where(np.isnan(per_price), -np.inf, per_price), axis=0)
                price = np.take_along_axis(np.array([logs[name] for name in parts]), farthest[None], axis=0)[0]
                side_medians = np.array([side for side, _ in sides])
                nearer = np.argmin(np.where(np.isnan(side_medians), np.inf, np.abs(side_medians - price)), axis=0)
                reference = np.exp(np.take_along_axis(side_medians, nearer[None], axis=0)[0])
        # Judged by earlier bars only, the close cannot be told from a real crash, but the open can: on a
        # market that trades around the clock a bar opens where the one before closed.
        previous_close = np.concatenate([np.full((count, 1), np.nan), logs["close"][:, :-1]], axis=1)
        gap = np.abs(logs["open"] - previous_close)
        bound = np.maximum(OUTLIER_BODY_RANGES * np.nan_to_num(scale), OUTLIER_TWO_SIDED_FLOOR)
        ratios.append(np.where(has_before & ~has_after, gap / bound, np.nan))
        ratio = np.fmax.reduce(ratios)
    if one_series:
        return ratio[0], reference[0]
    return ratio, reference


def bar_columns(
    timestamps: np.ndarray,
    values: Mapping[str, np.ndarray],
    symbol: str,
    timeframe: str,
    *,
    file_end: bool = False,
) -> Columns:
    """One entry per input bar (input order kept) for each column :data:`BAR_RULES` read.

    ``timestamps`` (ms, float or int; NaN for an unreadable one) and the OHLCV ``values`` are in
    the order the bars arrived (a file's row order). ``file_end=True`` says the last bar is the end
    of a recorded file, where the "possibly unfinished" volume rule applies. The "not after the
    check time" rules compare with a time given at evaluation (:func:`rule_failures`), so these
    columns do not depend on the clock.
    """
    step = timeframe_ms(timeframe)
    n = len(timestamps)
    ts = np.asarray(timestamps, dtype=np.float64)
    v = {name: np.asarray(values[name], dtype=np.float64) for name in VALUE_COLUMNS}
    out: Columns = {"symbol": np.full(n, symbol, dtype=object), "timestamp": ts, **v}
    prices = np.vstack([v[name] for name in PRICE_COLUMNS]) if n else np.empty((4, 0))
    out["null_count"] = np.isnan(ts) + np.isnan(np.vstack([prices, v["volume"][None, :]])).sum(axis=0).astype(np.float64)
    with np.errstate(invalid="ignore"):
        price_min = np.nanmin(np.where(np.isnan(prices), np.inf, prices), axis=0) if n else np.empty(0)
        price_min = np.where(np.isinf(prices).any(axis=0) & (price_min > 0), np.inf, price_min)
        out["price_min"] = np.where(np.isnan(prices).all(axis=0), np.nan, price_min) if n else price_min
        # Positive when high is under the body or low above it (NaN when a price is missing: not this rule's case).
        o, h, low, c = (v[name] for name in PRICE_COLUMNS)
        out["bracket_excess"] = np.maximum(np.maximum(o, c) - h, low - np.minimum(o, c))
    finite_ts = ~np.isnan(ts)
    _, inverse, counts = np.unique(np.where(finite_ts, ts, -1.0), return_inverse=True, return_counts=True)
    out["duplicate_count"] = np.where(finite_ts, counts[inverse] - 1, np.nan).astype(np.float64)
    out["step_ms"] = np.concatenate([[np.nan], np.diff(ts)]) if n else ts.copy()
    out["alignment_offset_ms"] = np.mod(ts - _alignment_origin(step), step)
    out["close_ms"] = ts + step
    # Gaps and outliers are judged on the bars in time order (a shuffled file must not fake either).
    order = np.argsort(np.where(finite_ts, ts, np.inf), kind="stable")
    ordered = ts[order]
    first_of_time = np.concatenate([[True], np.diff(ordered) != 0]) if n else np.zeros(0, dtype=bool)
    first_of_time &= ~np.isnan(ordered)
    kept = order[first_of_time]
    missing = np.full(n, np.nan)
    if kept.size:
        missing[kept] = np.concatenate([[0.0], np.maximum(np.round(np.diff(ts[kept]) / step) - 1, 0)])
    out["missing_bars_before"] = missing
    out["volume_is_zero"] = np.where(np.isnan(v["volume"]), np.nan, (v["volume"] == 0).astype(np.float64))
    ratio, reference = outlier_scores({name: v[name][order] for name in PRICE_COLUMNS}) if n else (np.empty(0), np.empty(0))
    out["outlier_ratio"] = np.empty(n)
    out["outlier_ratio"][order] = ratio
    out["outlier_reference"] = np.empty(n)
    out["outlier_reference"][order] = reference
    share = np.full(n, np.nan)
    if file_end and n > OUTLIER_MIN_BEFORE:
        before = v["volume"][order[:-1]][-UNFINISHED_VOLUME_BARS:]
        median = np.nanmedian(before)
        if median > 0:
            share[order[-1]] = v["volume"][order[-1]] / median
    out["last_volume_share"] = share
    return out


def bar_features(frame: pd.DataFrame, symbol: str, timeframe: str, *, file_end: bool = False) -> pd.DataFrame:
    """:func:`bar_columns` of a ``timestamp, open, high, low, close, volume`` frame, as a frame
    (what the Great Expectations suite validates)."""
    values = {name: pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan) for name in VALUE_COLUMNS}
    timestamps = pd.to_numeric(frame["timestamp"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return pd.DataFrame(bar_columns(timestamps, values, symbol, timeframe, file_end=file_end))


def history_columns(history: BarHistory) -> Columns:
    """:func:`bar_columns` of a :class:`BarHistory` (what the cycle's guard reads)."""
    return bar_columns(history.timestamps, {name: getattr(history, name) for name in VALUE_COLUMNS}, history.symbol, history.timeframe)


def _bounds(rule: BarRule, as_of_ms: int | None) -> tuple[float | None, float | None]:
    if rule.name in ("future_timestamp", "unfinished_bar"):
        return None, None if as_of_ms is None else float(as_of_ms)
    return rule.min_value, rule.max_value


def rule_bounds(as_of_ms: int | None) -> dict[str, tuple[float | None, float | None]]:
    """Each rule's (min, max) bounds at check time ``as_of_ms`` (None: the time rules are off)."""
    return {rule.name: _bounds(rule, as_of_ms) for rule in BAR_RULES}


def rule_failures(features: Mapping[str, Any], as_of_ms: int | None) -> dict[str, np.ndarray]:
    """For each rule, a boolean mask of the bars that fail it (``features``: :func:`bar_columns`
    or :func:`bar_features`)."""
    masks: dict[str, np.ndarray] = {}
    timestamps = np.asarray(features["timestamp"], dtype=np.float64)
    for rule in BAR_RULES:
        low, high = _bounds(rule, as_of_ms)
        column = np.asarray(features[rule.column], dtype=np.float64)
        if rule.name == "unfinished_bar" and as_of_ms is not None:
            # A bar opening after the check time is the future rule's case, not this one's.
            column = np.where(timestamps <= as_of_ms, column, np.nan)
        fails = np.zeros(len(column), dtype=bool)
        with np.errstate(invalid="ignore"):
            if low is not None:
                fails |= column <= low if rule.strict_min else column < low
            if high is not None:
                fails |= column > high
        masks[rule.name] = fails
    return masks


def _iso(ms: float) -> str:
    if not np.isfinite(ms):
        return "unknown time"
    return iso_utc(ms, timespec="minutes")


def _detail(rule: str, row: Mapping[str, Any], step: int, as_of_ms: int | None, previous_ms: float) -> str:
    o, h, l, c, v = (row[name] for name in VALUE_COLUMNS)
    prices = f"o={o:g} h={h:g} l={l:g} c={c:g} v={v:g}"
    if rule == "null_value":
        missing = [name for name in ("timestamp", *VALUE_COLUMNS) if np.isnan(row[name])]
        return f"{', '.join(missing)} missing ({prices})"
    if rule == "non_positive_price":
        return f"price not positive and finite ({prices})"
    if rule == "negative_volume":
        return f"volume {v:g} is negative or not finite"
    if rule == "high_low_inconsistent":
        return f"high/low do not bracket open and close ({prices})"
    if rule == "duplicate_timestamp":
        return f"{int(row['duplicate_count']) + 1} bars open at {_iso(row['timestamp'])}"
    if rule == "timestamp_not_increasing":
        return f"bar {_iso(row['timestamp'])} comes after bar {_iso(previous_ms)} in the data"
    if rule == "misaligned_timestamp":
        return f"opens {int(row['alignment_offset_ms']) // 1000} s after a {step // 60_000}-minute boundary"
    if rule == "future_timestamp":
        return f"opens at {_iso(row['timestamp'])}, after the check time {_iso(float(as_of_ms or 0))}"
    if rule == "unfinished_bar":
        return f"closes at {_iso(row['close_ms'])}, after the check time {_iso(float(as_of_ms or 0))}: still forming"
    if rule == "outlier":
        return (
            f"{row['outlier_ratio']:.1f}x the outlier bound: prices far from the median close {row['outlier_reference']:.6g} "
            f"of the neighbouring bars ({prices})"
        )
    if rule == "gap":
        n = int(row["missing_bars_before"])
        return f"{n} bar(s) missing from {_iso(row['timestamp'] - n * step)} to {_iso(row['timestamp'] - step)}"
    if rule == "zero_volume":
        return f"zero volume ({prices})"
    return f"volume {v:g} is {row['last_volume_share']:.0%} of the previous bars' median: possibly unfinished"


def defects_from_mask(
    features: Mapping[str, Any], rule_name: str, mask: np.ndarray, timeframe: str, as_of_ms: int | None
) -> list[BarDefect]:
    """The defects of one rule for the bars in ``mask`` (one per bar; a duplicated time once)."""
    rule = RULES_BY_NAME[rule_name]
    step = timeframe_ms(timeframe)
    columns = {name: np.asarray(features[name]) for name in features}
    timestamps = columns["timestamp"].astype(np.float64)
    defects: list[BarDefect] = []
    seen: set[int | None] = set()
    for index in np.flatnonzero(mask):
        row = {name: values[index] for name, values in columns.items()}
        stamp = float(row["timestamp"])
        if rule_name == "gap":
            stamp = stamp - row["missing_bars_before"] * step
        stamp_ms = int(stamp) if np.isfinite(stamp) else None
        if stamp_ms is not None and stamp_ms in seen:
            continue
        seen.add(stamp_ms)
        detail = _detail(rule_name, row, step, as_of_ms, timestamps[index - 1] if index else np.nan)
        defects.append(BarDefect(str(row["symbol"]), stamp_ms, rule.name, rule.severity, detail))
    return defects


def find_defects(features: Mapping[str, Any], timeframe: str, as_of_ms: int | None) -> list[BarDefect]:
    """Every defect of one symbol's bars, in rule order then bar order."""
    masks = rule_failures(features, as_of_ms)
    defects: list[BarDefect] = []
    for rule in BAR_RULES:
        defects.extend(defects_from_mask(features, rule.name, masks[rule.name], timeframe, as_of_ms))
    return defects


def blocking_defects(history: BarHistory, as_of_ms: int | None) -> list[BarDefect]:
    """The defects among the bars a cycle's agents would read that must keep the symbol out of the cycle."""
    features = history_columns(history)
    masks = rule_failures(features, as_of_ms)
    defects: list[BarDefect] = []
    for rule in BAR_RULES:
        if rule.blocks_in_cycle and masks[rule.name].any():
            defects.extend(defects_from_mask(features, rule.name, masks[rule.name], history.timeframe, as_of_ms))
    return defects


def blocking_reason(history: BarHistory, as_of_ms: int | None) -> str | None:
    """Why the cycle must not trade ``history``'s symbol (``None``: every ERROR rule passes).

    ``as_of_ms`` is the decision time (the close of the bar being traded, or the wall clock if
    earlier): a bar not closed by then is unfinished, one opening after it is from the future
    (``None``: those two rules are not applied).
    """
    if len(history) == 0:
        return "no bars"
    defects = blocking_defects(history, as_of_ms)
    if not defects:
        return None
    first = defects[0]
    more = f" (+{len(defects) - 1} more)" if len(defects) > 1 else ""
    when = _iso(float(first.timestamp)) if first.timestamp is not None else "without a timestamp"
    return f"bar {when}: {first.rule} ({first.severity}): {first.detail}{more}"


def bar_features_from_history(history: BarHistory) -> pd.DataFrame:
    """:func:`history_columns` as a frame (what the Great Expectations suite validates)."""
    return pd.DataFrame(history_columns(history))
