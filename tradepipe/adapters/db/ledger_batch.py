"""Many cycles of one book into the ledger in a few statements: how ``tradepipe backtest`` writes its book.

A backtest writes tens of thousands of cycles of about twenty rows each. Through the ORM's unit of work
(an object per row, a flush per cycle to learn its id, the positions read back every cycle) that cost
about 12 CPU ms per cycle, some 30 times the trading itself. ``CycleBatch`` keeps the cycles' rows as
plain values and writes them with SQLAlchemy Core: one ``executemany`` per table per batch, the cycles'
and the orders' ids (which the signals, orders, snapshots, work log rows and fills reference) from one
``INSERT .. RETURNING`` each, in the order the rows were given. The rows are the live unit of work's:
the same builders in ``ledger`` (and ``quality``) make them, so the two write the same ledger.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Mapping, Sequence, cast

from sqlalchemy import Table, bindparam, insert, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from tradepipe.adapters.db.ledger import (
    agent_work_rows,
    cancel_note,
    fill_row,
    order_rows,
    record_positions,
    signal_rows,
    snapshot_row,
)
from tradepipe.adapters.db.models import (
    AgentWorkLogRow,
    Base,
    FillRow,
    MarketBarRow,
    OrderRow,
    PortfolioSnapshotRow,
    SignalRow,
    TradingCycleRow,
)
from tradepipe.adapters.db.order_status import OPEN_STATUSES, OrderStatus, moved
from tradepipe.adapters.db.quality import blocked_work_row
from tradepipe.core.bar_quality import BarDefect

if TYPE_CHECKING:
    from tradepipe.core.cycle import CycleResult


@dataclass(frozen=True)
class _Cycle:
    """One cycle waiting in the batch: its own row's values and what its dependent rows are made of."""

    values: dict[str, Any]
    result: CycleResult
    closes: Mapping[str, float]
    day_start_equity: Decimal
    defects: Mapping[str, Sequence[BarDefect]]


@dataclass
class _OpenOrder:
    """An order written by an earlier batch and not final yet (its fill comes with a later cycle)."""

    id: int
    status: str
    reason: str


class CycleBatch:
    """The cycles of ``book`` (traded in bar order) gathered by ``add`` and written by ``write`` (the caller commits)."""

    def __init__(self, session: Session, book: str, *, broker: str) -> None:
        self.session = session
        self.book = book
        self.broker = broker
        self._cycles: list[_Cycle] = []
        self._bars: list[dict[str, Any]] = []
        self._held: set[str] = set()
        self._open: dict[str, _OpenOrder] = {}

    def __len__(self) -> int:
        return len(self._cycles)

    def add(
        self,
        cycle: dict[str, Any],
        result: CycleResult,
        *,
        bars: list[dict[str, Any]],
        closes: Mapping[str, float],
        day_start_equity: Decimal,
        defects: Mapping[str, Sequence[BarDefect]],
    ) -> None:
        """One traded cycle: ``cycle`` its ``trading_cycles`` values (final), ``bars`` its ``market_bars`` rows."""
        self._cycles.append(_Cycle(cycle, result, closes, day_start_equity, defects))
        self._bars += bars
        self._held.update(result.portfolio.positions)

    def write(self) -> None:
        """Every gathered cycle's rows, table by table; the batch is empty afterwards."""
        if not self._cycles:
            return
        session = self.session
        ids = session.execute(
            insert(_table(TradingCycleRow)).returning(_table(TradingCycleRow).c.id, sort_by_parameter_order=True),
            [c.values for c in self._cycles],
        ).scalars().all()
        orders: dict[str, dict[str, Any]] = {}
        fills: list[tuple[dict[str, Any], dict[str, Any]]] = []  # (fill row, its order's row)
        moves: list[dict[str, Any]] = []  # orders of earlier batches made final
        signals: list[dict[str, Any]] = []
        snapshots: list[dict[str, Any]] = []
        work: list[dict[str, Any]] = []
        for cycle_id, cycle in zip(ids, self._cycles, strict=True):
            result, bar_ts = cycle.result, cycle.values["bar_ts"]
            # Fills and cancellations settle orders of earlier cycles, never the cycle's own.
            for executed in result.fills:
                fills.append((fill_row(None, self.book, executed, self.broker), self._move(orders, moves, executed.fill.client_order_id, OrderStatus.FILLED)))
            for intent, reason in result.cancelled:
                self._move(orders, moves, intent.client_order_id, OrderStatus.CANCELLED, cancel_note(reason))
            signals += signal_rows(cycle_id, self.book, bar_ts, result.signals, cycle.closes)
            for row in order_rows(cycle_id, self.book, bar_ts, result.plan.orders, result.plan.rejections, self.broker):
                orders[row["client_order_id"]] = row
            snapshots.append(snapshot_row(cycle_id, self.book, bar_ts, result, cycle.day_start_equity))
            work += agent_work_rows(cycle_id, bar_ts, result, cycle.values["run_id"])
            blocked = blocked_work_row(cycle_id, bar_ts, result.skipped, cycle.defects, cycle.values["run_id"])
            if blocked is not None:
                work.append(blocked)
        if orders:
            rows = list(orders.values())
            order_ids = session.execute(
                insert(_table(OrderRow)).returning(_table(OrderRow).c.id, sort_by_parameter_order=True), rows
            ).scalars().all()
            for row, order_id in zip(rows, order_ids, strict=True):
                row["id"] = order_id
                if row["status"] in OPEN_STATUSES:
                    self._open[row["client_order_id"]] = _OpenOrder(order_id, row["status"], row["reason"])
        if moves:
            table = _table(OrderRow)
            session.execute(
                update(table).where(table.c.id == bindparam("order_id")).values(status=bindparam("new_status"), reason=bindparam("new_reason")),
                moves,
            )
        for fill, order in fills:
            fill["order_id"] = order["id"]
        for model, rows in ((FillRow, [fill for fill, _ in fills]), (SignalRow, signals), (PortfolioSnapshotRow, snapshots), (AgentWorkLogRow, work)):
            if rows:
                session.execute(insert(_table(model)), rows)
        if self._bars:
            dialect_insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
            session.execute(
                dialect_insert(_table(MarketBarRow)).on_conflict_do_nothing(index_elements=["source", "symbol", "timeframe", "ts"]), self._bars
            )
        last = self._cycles[-1]
        record_positions(session, self.book, last.result.portfolio, cast(datetime, last.values["bar_ts"]), held_since=self._held)
        self._cycles, self._bars, self._held = [], [], set()

    def _move(
        self, orders: dict[str, dict[str, Any]], moves: list[dict[str, Any]], client_order_id: str, to: OrderStatus, note: str | None = None
    ) -> dict[str, Any]:
        """Settle an order of this batch (its row changes before it is written) or of an earlier one (an update)."""
        row = orders.get(client_order_id)
        if row is not None:
            row["status"], row["reason"] = moved(client_order_id, row["status"], row["reason"], to, note)
            return row
        known = self._open.pop(client_order_id)
        status, reason = moved(client_order_id, known.status, known.reason, to, note)
        moves.append({"order_id": known.id, "new_status": status, "new_reason": reason})
        return {"id": known.id}


def _table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)
