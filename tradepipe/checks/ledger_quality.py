"""Data-quality checks on what the trading cycle wrote (``portfolio_state``) and on attribution.

* ``orders_within_risk_limits`` and ``ledger_replays_to_the_book``: cheap SQL plus pure invariants
  (``core.ledger_quality``); they run with every trading cycle.
* ``signals_expectations`` (Great Expectations, on the newest cycle's signals) and
  ``attribution_expectations`` (Great Expectations, one daily partition of ``trade_attribution``):
  frame-shaped suites; ``great_expectations`` is imported inside them, and the trading-cycle job
  leaves ``signals_expectations`` out (the ``data_quality`` job runs it).
"""


from decimal import Decimal
from typing import Any

import dagster as dg
import pandas as pd

from tradepipe.adapters.db.ledger import latest_snapshot
from tradepipe.adapters.db.quality import (
    attribution_with_fills,
    book_fills,
    latest_cycle_orders,
    latest_cycle_signals,
    starting_cash,
    stored_positions,
)
from tradepipe.assets.partitions import daily_with_today
from tradepipe.core.ledger_quality import (
    BookFill,
    PlacedOrder,
    attribution_residuals,
    order_limit_violations,
    replay_differences,
    replay_fills,
)
from tradepipe.resources import LedgerDatabase, TradingConfigResource
from tradepipe.config.rules import risk_limits

_SHOWN = 20


@dg.asset_check(
    asset="portfolio_state",
    description="The newest cycle's orders respect the risk limits in force: position, gross exposure, turnover, long-only, halt.",
)
def orders_within_risk_limits(trading: TradingConfigResource, ledger: LedgerDatabase) -> dg.AssetCheckResult:
    settings = trading.settings()
    with ledger.sessions()() as session:
        cycle, snapshot, orders = latest_cycle_orders(session, settings.book)
    if cycle is None or snapshot is None:
        return dg.AssetCheckResult(passed=True, metadata={"note": "no cycle yet"})
    positions = {s: Decimal(p["quantity"]) for s, p in (snapshot.positions or {}).items()}
    marks = {s: Decimal(p["mark"]) for s, p in (snapshot.positions or {}).items()}
    placed = [PlacedOrder(o.symbol, o.side, o.quantity, o.reference_price or Decimal(0), o.reason or "") for o in orders]
    violations = order_limit_violations(placed, positions, marks, snapshot.equity, risk_limits(settings))
    return dg.AssetCheckResult(
        passed=not violations,
        metadata={"bar": cycle.bar_ts.isoformat(), "orders": len(placed), "violations": dg.MetadataValue.json(violations[:_SHOWN])},
    )


@dg.asset_check(
    asset="portfolio_state",
    description="Replaying every fill from the book's starting cash reproduces the stored cash and positions exactly.",
)
def ledger_replays_to_the_book(trading: TradingConfigResource, ledger: LedgerDatabase) -> dg.AssetCheckResult:
    book = trading.settings().book
    with ledger.sessions()() as session:
        cash0 = starting_cash(session, book)
        fills = [BookFill(f.symbol, f.side, f.quantity, f.notional, f.fee, f.realized_pnl) for f in book_fills(session, book)]
        snapshot = latest_snapshot(session, book)
        positions = stored_positions(session, book)
    if cash0 is None or snapshot is None:
        return dg.AssetCheckResult(passed=True, metadata={"note": "no book yet"})
    replayed = replay_fills(cash0, fills)
    snapshot_positions = {s: Decimal(p["quantity"]) for s, p in (snapshot.positions or {}).items()}
    differences = replay_differences(replayed, snapshot.cash, snapshot_positions, snapshot.realized_pnl)
    differences += [f"positions table: {d}" for d in replay_differences(replayed, replayed.cash, positions) if not d.startswith("cash")]
    return dg.AssetCheckResult(
        passed=not differences,
        metadata={
            "fills_replayed": len(fills),
            "cash": float(snapshot.cash),
            "differences": dg.MetadataValue.json(differences[:_SHOWN]),
        },
    )


def signal_expectations(gx: Any, agents: int) -> list[Any]:
    expect = gx.expectations
    return [
        *(expect.ExpectColumnValuesToNotBeNull(column=c) for c in ("agent_name", "symbol", "bar_ts", "value", "confidence")),
        expect.ExpectColumnValuesToBeBetween(column="value", min_value=-1, max_value=1),
        expect.ExpectColumnValuesToBeBetween(column="confidence", min_value=0, max_value=1),
        # One signal per agent, symbol and bar: no pair twice, and every voting symbol heard every agent.
        expect.ExpectCompoundColumnsToBeUnique(column_list=["agent_name", "symbol", "bar_ts"]),
        expect.ExpectColumnValuesToBeBetween(column="signals_per_symbol", min_value=agents, max_value=agents),
    ]


def validate_signals(frame: pd.DataFrame, agents: int) -> Any:
    from tradepipe.checks.gx_support import run_suite

    frame = frame.assign(signals_per_symbol=frame.groupby(["symbol", "bar_ts"])["agent_name"].transform("count"))
    return run_suite("signals", frame, lambda gx: signal_expectations(gx, agents))


@dg.asset_check(
    asset="portfolio_state",
    description="Great Expectations suite on the newest cycle's signals: value in [-1, 1], confidence in [0, 1], one per agent, symbol and bar.",
)
def signals_expectations(trading: TradingConfigResource, ledger: LedgerDatabase) -> dg.AssetCheckResult:
    from tradepipe.checks.quality import describe_failures

    settings = trading.settings()
    with ledger.sessions()() as session:
        frame = latest_cycle_signals(session, settings.book)
    if frame.empty:
        return dg.AssetCheckResult(passed=True, metadata={"note": "no signals in the newest cycle"})
    result = validate_signals(frame, len(settings.agents))
    return dg.AssetCheckResult(
        passed=bool(result.success),
        metadata={"signals": len(frame), "failed_expectations": dg.MetadataValue.json(describe_failures(result))},
    )


def validate_attribution(rows: list[tuple[int, Decimal, Decimal]]) -> Any:
    """The suite on one day's attribution: per trade, parts minus the trade's realised P&L is exactly 0."""
    from tradepipe.checks.gx_support import run_suite

    residuals = attribution_residuals(rows)
    frame = pd.DataFrame(
        {"fill_id": list(residuals), "residual": [float(value) for value in residuals.values()], "exact": [value == 0 for value in residuals.values()]}
    )

    def expectations(gx: Any) -> list[Any]:
        expect = gx.expectations
        return [
            expect.ExpectColumnValuesToBeUnique(column="fill_id"),
            # Exact Decimal comparison done in core; the float residual is shown for the user.
            expect.ExpectColumnValuesToBeInSet(column="exact", value_set=[True]),
            expect.ExpectColumnValuesToBeBetween(column="residual", min_value=0, max_value=0),
        ]

    return run_suite("trade_attribution", frame, expectations, "COMPLETE")


@dg.asset_check(
    asset="trade_attribution",
    partitions_def=daily_with_today,
    description="Great Expectations suite on the day's attribution: the agents' parts sum exactly to each trade's realised P&L.",
)
def attribution_expectations(
    context: dg.AssetCheckExecutionContext, trading: TradingConfigResource, ledger: LedgerDatabase
) -> dg.AssetCheckResult:
    from tradepipe.checks.quality import describe_failures

    day = context.partition_time_window.start.date()
    with ledger.sessions()() as session:
        rows = attribution_with_fills(session, trading.settings().book, day)
    if not rows:
        return dg.AssetCheckResult(passed=True, metadata={"date": day.isoformat(), "note": "no attributed trades"})
    result = validate_attribution(rows)
    return dg.AssetCheckResult(
        passed=bool(result.success),
        metadata={
            "date": day.isoformat(),
            "trades": len({fill_id for fill_id, _, _ in rows}),
            "failed_expectations": dg.MetadataValue.json(describe_failures(result)),
        },
    )
