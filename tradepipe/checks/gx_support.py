"""Running a Great Expectations suite on a DataFrame in memory, and reading its failed rows back.

``great_expectations`` costs 4-6 s to import: every function here imports it inside, so importing this
module (as ``tradepipe.definitions`` does for every run, the trading cycle's included) stays free.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuiteValidationResult

ROW_RESULT_FORMAT = {"result_format": "COMPLETE", "include_unexpected_rows": False, "return_unexpected_index_query": False}


@lru_cache(maxsize=1)
def _context() -> Any:
    """One ephemeral, in-memory GX context per process (no files, no analytics, no progress bars)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    return gx.get_context(
        mode="ephemeral",
        project_config=DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(),
            analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        ),
    )


def run_suite(
    name: str,
    frame: pd.DataFrame,
    build_expectations: Callable[[Any], Sequence[Any]],
    result_format: dict[str, Any] | str = "SUMMARY",
) -> ExpectationSuiteValidationResult:
    """Validate ``frame`` with the expectations ``build_expectations(gx)`` returns, as suite ``name``."""
    import great_expectations as gx

    context = _context()
    source_name = f"tradepipe_{name}"
    try:
        source = context.data_sources.get(source_name)
    except (KeyError, ValueError):
        source = context.data_sources.add_pandas(source_name)
    try:
        asset = source.get_asset(name)
    except LookupError:
        asset = source.add_dataframe_asset(name)
    try:
        batch_definition = asset.get_batch_definition("whole")
    except (KeyError, ValueError, LookupError):
        batch_definition = asset.add_batch_definition_whole_dataframe("whole")
    suite = gx.ExpectationSuite(name=name, expectations=list(build_expectations(gx)))
    return batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(suite, result_format=result_format)


def failed_rows(result: ExpectationSuiteValidationResult, length: int) -> dict[str, np.ndarray]:
    """For every ``meta["rule"]`` of the suite, a mask of the frame's rows (RangeIndex) that failed it.

    Needs ``ROW_RESULT_FORMAT`` (every unexpected row's index). A rule with several expectations
    (one per column) gets the union of their rows.
    """
    masks: dict[str, np.ndarray] = {}
    for outcome in result.results:
        config = outcome.expectation_config
        rule = (config.meta or {}).get("rule") if config is not None else None
        if rule is None:
            continue
        mask = masks.setdefault(rule, np.zeros(length, dtype=bool))
        if outcome.exception_info and outcome.exception_info.get("raised_exception"):
            raise RuntimeError(f"expectation for rule {rule} failed to run: {outcome.exception_info.get('exception_message')}")
        if not outcome.success:
            index = (outcome.result or {}).get("unexpected_index_list") or []
            rows = [item if isinstance(item, (int, np.integer)) else item.get("index") for item in index]
            mask[np.asarray(rows, dtype=np.int64)] = True
    return masks
