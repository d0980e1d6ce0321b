"""Invariant checks on the ledger, run with every trading cycle (cheap SQL, no Great Expectations:
that import costs seconds and never belongs on the trading-cycle path)."""


from decimal import Decimal

import dagster as dg

from tradepipe.adapters.db.ledger import fill_quantities_by_order, latest_snapshot
from tradepipe.resources import LedgerDatabase, TradingConfigResource


@dg.asset_check(asset="portfolio_state", description="equity = cash + sum(quantity x mark) on the latest snapshot, exactly")
def equity_invariant(trading: TradingConfigResource, ledger: LedgerDatabase) -> dg.AssetCheckResult:
    with ledger.sessions()() as session:
        snapshot = latest_snapshot(session, trading.settings().book)
    if snapshot is None:
        return dg.AssetCheckResult(passed=True, metadata={"note": "no snapshot yet"})
    positions_value = sum(
        (Decimal(p["quantity"]) * Decimal(p["mark"]) for p in snapshot.positions.values()), Decimal(0)
    )
    difference = snapshot.equity - (snapshot.cash + positions_value)
    return dg.AssetCheckResult(
        passed=difference == 0 and snapshot.positions_value == positions_value,
        metadata={"equity": float(snapshot.equity), "difference": float(difference)},
    )


@dg.asset_check(asset="portfolio_state", description="no order filled twice and no fill larger than its order")
def no_double_fills(trading: TradingConfigResource, ledger: LedgerDatabase) -> dg.AssetCheckResult:
    with ledger.sessions()() as session:
        rows = fill_quantities_by_order(session, trading.settings().book)
    # Summed in Python: money is exact text on SQLite, where SUM() would go through floats.
    filled: dict[str, Decimal] = {}
    ordered: dict[str, Decimal] = {}
    for client_order_id, order_quantity, fill_quantity in rows:
        filled[client_order_id] = filled.get(client_order_id, Decimal(0)) + fill_quantity
        ordered[client_order_id] = order_quantity
    bad = sorted(cid for cid, quantity in filled.items() if quantity > ordered[cid])
    return dg.AssetCheckResult(passed=not bad, metadata={"overfilled_orders": dg.MetadataValue.json(bad[:20])})
