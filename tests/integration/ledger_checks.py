"""What every ledger-safety test checks after its fault: the book is exactly a replay of its fills."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from tradepipe.adapters.db.engine import session_factory
from tradepipe.adapters.db.models import (
    FillRow,
    PortfolioSnapshotRow,
    PositionRow,
    TradingCycleRow,
)

STARTING_CASH = Decimal(10000)


def assert_book_is_a_replay_of_its_fills(url: str, book: str) -> None:
    with session_factory(url)() as session:
        cycles = list(session.scalars(select(TradingCycleRow).where(TradingCycleRow.book == book).order_by(TradingCycleRow.id)))
        snapshots = list(
            session.scalars(select(PortfolioSnapshotRow).where(PortfolioSnapshotRow.book == book).order_by(PortfolioSnapshotRow.bar_ts))
        )
        fills = list(session.scalars(select(FillRow).where(FillRow.book == book).order_by(FillRow.id)))
        positions = {
            r.symbol: r.quantity for r in session.scalars(select(PositionRow).where(PositionRow.book == book)) if r.quantity != 0
        }
    # serialised: a cycle committed after a later bar's cycle would carry a higher id and an older bar
    assert [c.bar_ts for c in cycles] == sorted(c.bar_ts for c in cycles)
    assert len(snapshots) == len(cycles)
    cash, held = STARTING_CASH, {}
    for snapshot in snapshots:
        marks = sum((Decimal(p["quantity"]) * Decimal(p["mark"]) for p in snapshot.positions.values()), Decimal(0))
        assert snapshot.equity == snapshot.cash + marks
        assert snapshot.positions_value == marks
        # each snapshot = the previous one + the fills at its own bar's open (nothing from a parallel cycle)
        for fill in (f for f in fills if f.ts == snapshot.bar_ts):
            sign = 1 if fill.side == "buy" else -1
            cash += -sign * fill.notional - fill.fee
            held[fill.symbol] = held.get(fill.symbol, Decimal(0)) + sign * fill.quantity
        assert snapshot.cash == cash, f"snapshot {snapshot.bar_ts} is not the previous one plus its fills"
        assert {s: Decimal(p["quantity"]) for s, p in snapshot.positions.items()} == {s: q for s, q in held.items() if q != 0}
    assert sum(1 for f in fills if f.ts not in {s.bar_ts for s in snapshots}) == 0
    assert positions == {s: q for s, q in held.items() if q != 0}
