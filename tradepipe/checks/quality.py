"""Great Expectations data-quality check on one ``agent_performance`` partition.

The check reads the partition's rows back from the ``agent_performance`` table (it does not take
the asset as an input, so it can run on its own for any materialised day) and validates them with a
Great Expectations suite. ``great_expectations`` is imported inside the check function only: the
import costs seconds and must never sit on the trading-cycle path (``tradepipe.definitions`` imports
this module for every run, including the trading cycle's).
"""

import math
import time
from datetime import date
from typing import TYPE_CHECKING, Any, Sequence

import dagster as dg
import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from tradepipe.adapters.db.analytics import load_performance_columns
from tradepipe.assets.partitions import daily_with_today
from tradepipe.resources import LedgerDatabase, TradingConfigResource

if TYPE_CHECKING:  # type names only; the module itself is imported lazily
    from great_expectations.core import ExpectationSuiteValidationResult

CHECKED_COLUMNS = (
    "date",
    "agent_name",
    "win_rate",
    "max_drawdown",
    "volatility",
    "total_signals",
    "sharpe_ratio",
    "sortino_ratio",
    "calmar_ratio",
    "profit_factor",
)
_RATIO_COLUMNS = ("sharpe_ratio", "sortino_ratio", "calmar_ratio", "profit_factor", "volatility")
_EXAMPLES = 5


def load_performance_frame(sessions: sessionmaker[Session], book: str, day: date) -> pd.DataFrame:
    """The partition's ``agent_performance`` rows as a DataFrame (nulls as NaN/None)."""
    with sessions() as session:
        rows = load_performance_columns(session, book, day, CHECKED_COLUMNS)
    frame = pd.DataFrame(rows, columns=list(CHECKED_COLUMNS))
    for name in CHECKED_COLUMNS[2:]:
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(float)
    return frame


def _expectations(gx: Any, agents: Sequence[str]) -> list[Any]:
    expect = gx.expectations
    expectations = [
        expect.ExpectColumnValuesToNotBeNull(column="agent_name"),
        expect.ExpectCompoundColumnsToBeUnique(column_list=["date", "agent_name"]),
        expect.ExpectTableRowCountToEqual(value=len(agents)),
        expect.ExpectColumnDistinctValuesToEqualSet(column="agent_name", value_set=sorted(agents)),
        # Column-map expectations skip nulls: an undefined metric (None) passes, as it should.
        expect.ExpectColumnValuesToBeBetween(column="win_rate", min_value=0, max_value=1),
        expect.ExpectColumnValuesToBeBetween(column="max_drawdown", min_value=-1, max_value=0),
        expect.ExpectColumnValuesToBeBetween(column="volatility", min_value=0),
        expect.ExpectColumnValuesToNotBeNull(column="total_signals"),
        expect.ExpectColumnValuesToBeBetween(column="total_signals", min_value=0),
    ]
    # Undefined ratios are stored as null, never as +-inf or NaN (see core.metrics).
    for column in _RATIO_COLUMNS:
        expectations.append(
            expect.ExpectColumnValuesToBeBetween(column=column, min_value=-1e300, max_value=1e300, meta={"rule": "finite or null"})
        )
    return expectations


def validate_performance(frame: pd.DataFrame, agents: Sequence[str]) -> "ExpectationSuiteValidationResult":
    """Run the suite on ``frame`` in an ephemeral, in-memory GX context (no files, no analytics,
    no progress bars)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    context = gx.get_context(
        mode="ephemeral",
        project_config=DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(),
            analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        ),
    )
    source = context.data_sources.add_pandas("tradepipe")
    batch_definition = source.add_dataframe_asset("agent_performance").add_batch_definition_whole_dataframe("partition")
    suite = gx.ExpectationSuite(name="agent_performance", expectations=_expectations(gx, agents))
    return batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(suite)


def describe_failures(result: "ExpectationSuiteValidationResult") -> list[dict[str, Any]]:
    """One plain-JSON entry per failed expectation: its type, column(s) and what GX observed
    (observed value, unexpected count and examples, missing values), empty details left out."""
    failed = []
    for outcome in result.results:
        if outcome.success:
            continue
        config = outcome.expectation_config
        assert config is not None  # every result of a suite run names its expectation
        details = outcome.result or {}
        entry = {
            "expectation": config.type,
            "column": config.kwargs.get("column") or config.kwargs.get("column_list"),
            "observed_value": details.get("observed_value"),
            "unexpected_count": details.get("unexpected_count") or None,
            "examples": (details.get("partial_unexpected_list") or [])[:_EXAMPLES],
            "missing": (details.get("partial_missing_list") or [])[:_EXAMPLES],
        }
        if outcome.exception_info and outcome.exception_info.get("raised_exception"):
            entry["exception"] = outcome.exception_info.get("exception_message")
        failed.append({key: _plain(value) for key, value in entry.items() if value not in (None, [])})
    return failed


def _plain(value: Any) -> Any:
    """JSON-safe: NaN/inf as text (JSON has no such numbers), numpy scalars as Python, dates as ISO."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_plain(v) for v in value]
        return sorted(items, key=str) if isinstance(value, (set, frozenset)) else items
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


@dg.asset_check(
    asset="agent_performance",
    partitions_def=daily_with_today,
    name="performance_rows_are_valid",
    description=(
        "Great Expectations suite on the partition's agent_performance rows: one row per configured agent, "
        "agent_name set and unique per date, win_rate in [0, 1], max_drawdown in [-1, 0], volatility >= 0, "
        "total_signals >= 0, ratios finite (undefined ones null)."
    ),
)
def performance_rows_are_valid(
    context: dg.AssetCheckExecutionContext, trading: TradingConfigResource, ledger: LedgerDatabase
) -> dg.AssetCheckResult:
    started = time.perf_counter()
    settings = trading.settings()
    day = context.partition_time_window.start.date()
    agents = list(settings.agents)
    frame = load_performance_frame(ledger.sessions(), settings.book, day)
    result = validate_performance(frame, agents)
    failed = describe_failures(result)
    statistics = result.statistics or {}
    return dg.AssetCheckResult(
        passed=bool(result.success),
        metadata={
            "date": day.isoformat(),
            "rows": len(frame),
            "expected_agents": dg.MetadataValue.json(sorted(agents)),
            "evaluated_expectations": int(statistics.get("evaluated_expectations", len(result.results))),
            "failed_expectations": dg.MetadataValue.json(failed),
            "failed": ", ".join(f"{f['expectation']}({f.get('column', 'table')})" for f in failed) or "none",
            "seconds": round(time.perf_counter() - started, 3),
        },
    )
