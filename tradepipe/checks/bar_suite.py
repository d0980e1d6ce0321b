"""The market-bar Great Expectations suite: the rules of ``tradepipe.core.bar_quality``, as expectations.

The suite runs on the frame :func:`~tradepipe.core.bar_quality.bar_features` builds (several symbols
and timeframes stacked, a RangeIndex): raw columns are checked with the natural expectation (not
null, (symbol, timeframe, timestamp) unique, timestamps within the check time), every other rule as
``ExpectColumnValuesToBeBetween`` on the rule's derived column with the rule's own bounds. Every
expectation carries its rule name in ``meta``, so a failure is turned back into one defect per bar
with the core's own wording. ``great_expectations`` is imported lazily (see ``gx_support``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from tradepipe.checks.gx_support import ROW_RESULT_FORMAT, failed_rows, run_suite
from tradepipe.core.bar_quality import (
    BAR_RULES,
    VALUE_COLUMNS,
    BarDefect,
    defects_from_mask,
    rule_bounds,
)

SUITE_NAME = "market_bars"
# Rules checked on the raw columns with their natural expectation, not on a derived column.
_NATIVE = {"null_value", "duplicate_timestamp", "future_timestamp"}


def bar_expectations(gx: Any, as_of_ms: int | None) -> list[Any]:
    expect = gx.expectations
    bounds = rule_bounds(as_of_ms)
    expectations: list[Any] = [
        expect.ExpectColumnValuesToNotBeNull(column=name, meta={"rule": "null_value"}) for name in ("timestamp", *VALUE_COLUMNS)
    ]
    expectations.append(
        expect.ExpectCompoundColumnsToBeUnique(
            column_list=["symbol", "timeframe", "timestamp"], ignore_row_if="any_value_is_missing", meta={"rule": "duplicate_timestamp"}
        )
    )
    if as_of_ms is not None:
        expectations.append(expect.ExpectColumnValuesToBeBetween(column="timestamp", max_value=as_of_ms, meta={"rule": "future_timestamp"}))
    for rule in BAR_RULES:
        if rule.name in _NATIVE:
            continue
        low, high = bounds[rule.name]
        if low is None and high is None:
            continue
        column = "unfinished_close_ms" if rule.name == "unfinished_bar" else rule.column
        expectations.append(
            expect.ExpectColumnValuesToBeBetween(
                column=column, min_value=low, max_value=high, strict_min=rule.strict_min, meta={"rule": rule.name}
            )
        )
    return expectations


def suite_frame(features: Sequence[tuple[pd.DataFrame, str]], as_of_ms: int | None) -> pd.DataFrame:
    """The per-symbol feature frames stacked into the one frame the suite validates."""
    frames = [frame.assign(timeframe=timeframe) for frame, timeframe in features]
    stacked = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["symbol", "timeframe", "timestamp", *VALUE_COLUMNS])
    # The unfinished rule skips bars from the future (the future rule reports those).
    limit = np.inf if as_of_ms is None else as_of_ms
    stacked["unfinished_close_ms"] = stacked.get("close_ms", pd.Series(dtype=float)).where(stacked["timestamp"] <= limit)
    return stacked


def validate_bars(features: Sequence[tuple[pd.DataFrame, str]], as_of_ms: int | None) -> tuple[Any, pd.DataFrame]:
    """Run the suite over ``(features, timeframe)`` pairs; returns the GX result and the frame it read."""
    frame = suite_frame(features, as_of_ms)
    result = run_suite(SUITE_NAME, frame, lambda gx: bar_expectations(gx, as_of_ms), ROW_RESULT_FORMAT)
    return result, frame


def suite_defects(result: Any, frame: pd.DataFrame, as_of_ms: int | None) -> list[BarDefect]:
    """The suite's failed rows as defects, per symbol and timeframe, in rule order then bar order."""
    masks = failed_rows(result, len(frame))
    defects: list[BarDefect] = []
    for (_, timeframe), group in frame.groupby(["symbol", "timeframe"], sort=False):
        positions = group.index.to_numpy()
        local = group.reset_index(drop=True)
        for rule in BAR_RULES:
            if rule.name not in masks:
                continue
            mask = masks[rule.name][positions]
            if mask.any():
                defects.extend(defects_from_mask(local, rule.name, mask, str(timeframe), as_of_ms))
    return defects
