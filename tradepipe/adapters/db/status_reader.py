"""What ``tradepipe status`` shows, read over a plain DB-API connection (``connection.read_only_ledger``).

The same rows as the ORM's ``latest_snapshot``, ``latest_cycle``, ``open_positions``, ``live_weights`` and
``ledger_counts`` (same filters and order; tests compare the two on SQLite and PostgreSQL), as records
with the ORM rows' attribute names and Python types: money as exact ``Decimal``, times as UTC-aware
datetimes, JSON columns decoded. The column types are those of ``models.py``/``types.py``: on SQLite,
money is text and times are naive UTC text; PostgreSQL's driver returns both typed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class SnapshotRecord:
    bar_ts: datetime
    cash: Decimal
    positions_value: Decimal
    equity: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fees_paid: Decimal
    day_start_equity: Decimal
    positions: dict[str, Any]


@dataclass(frozen=True)
class CycleRecord:
    bar_ts: datetime
    status: str
    market_source: str
    timeframe: str
    finished_at: datetime | None
    weights: dict[str, Any]
    weights_source: str | None
    skipped: dict[str, Any]
    error: str | None


@dataclass(frozen=True)
class PositionRecord:
    symbol: str
    quantity: Decimal
    average_price: Decimal


@dataclass(frozen=True)
class LiveWeightsRecord:
    id: int
    method: str
    promoted_at: datetime | None
    new_weights: dict[str, Any]


@dataclass(frozen=True)
class StatusRows:
    snapshot: SnapshotRecord | None
    cycle: CycleRecord | None
    positions: list[PositionRecord]
    live_weights: LiveWeightsRecord | None
    counts: dict[str, int]


def read_status_rows(connection: Any, book: str) -> StatusRows:
    """The book's newest snapshot and cycle, open positions, live weight set and row counts."""
    sqlite = type(connection).__module__.startswith("sqlite3")
    reader = _Reader(connection, sqlite)
    snapshot = reader.one(
        "SELECT bar_ts, cash, positions_value, equity, realized_pnl, unrealized_pnl, fees_paid, day_start_equity, positions "
        "FROM portfolio_snapshots WHERE book = ? ORDER BY bar_ts DESC LIMIT 1", book,
    )
    cycle = reader.one(
        "SELECT bar_ts, status, market_source, timeframe, finished_at, weights, weights_source, skipped, error "
        "FROM trading_cycles WHERE book = ? ORDER BY bar_ts DESC LIMIT 1", book,
    )
    # money is text on SQLite, written as "0" for zero (types.Money): the ORM's "quantity != 0" binds it so
    positions = reader.all("SELECT symbol, quantity, average_price FROM positions WHERE book = ? AND quantity != ? ORDER BY symbol",
                           book, "0" if sqlite else 0)
    live = reader.one(
        f"SELECT id, method, promoted_at, new_weights FROM weight_history WHERE book = ? AND is_live IS {'1' if sqlite else 'true'} "
        "ORDER BY promoted_at DESC, id DESC LIMIT 1", book,
    )
    counts = {
        name: reader.one(f"SELECT count(*) FROM {table} WHERE book = ?", book)[0]  # type: ignore[index]
        for name, table in (("cycles", "trading_cycles"), ("signals", "signals"), ("orders", "orders"), ("fills", "fills"))
    }
    return StatusRows(
        snapshot=None if snapshot is None else SnapshotRecord(
            bar_ts=reader.time(snapshot[0]), cash=reader.money(snapshot[1]), positions_value=reader.money(snapshot[2]),
            equity=reader.money(snapshot[3]), realized_pnl=reader.money(snapshot[4]), unrealized_pnl=reader.money(snapshot[5]),
            fees_paid=reader.money(snapshot[6]), day_start_equity=reader.money(snapshot[7]), positions=reader.json(snapshot[8]),
        ),
        cycle=None if cycle is None else CycleRecord(
            bar_ts=reader.time(cycle[0]), status=cycle[1], market_source=cycle[2], timeframe=cycle[3],
            finished_at=None if cycle[4] is None else reader.time(cycle[4]), weights=reader.json(cycle[5]),
            weights_source=cycle[6], skipped=reader.json(cycle[7]), error=cycle[8],
        ),
        positions=[PositionRecord(symbol, reader.money(quantity), reader.money(average)) for symbol, quantity, average in positions],
        live_weights=None if live is None else LiveWeightsRecord(
            id=live[0], method=live[1], promoted_at=None if live[2] is None else reader.time(live[2]), new_weights=reader.json(live[3]),
        ),
        counts=counts,
    )


class _Reader:
    """Runs a statement with ``?`` placeholders on either driver, and turns column values into the ORM's types."""

    def __init__(self, connection: Any, sqlite: bool) -> None:
        self._cursor = connection.cursor()
        self._sqlite = sqlite

    def _execute(self, sql: str, parameters: tuple[Any, ...]) -> None:
        self._cursor.execute(sql if self._sqlite else sql.replace("?", "%s"), parameters)

    def one(self, sql: str, *parameters: Any) -> tuple[Any, ...] | None:
        self._execute(sql, parameters)
        row = self._cursor.fetchone()
        return None if row is None else tuple(row)

    def all(self, sql: str, *parameters: Any) -> list[tuple[Any, ...]]:
        self._execute(sql, parameters)
        return [tuple(row) for row in self._cursor.fetchall()]

    @staticmethod
    def money(value: Any) -> Decimal:
        return value if isinstance(value, Decimal) else Decimal(str(value))

    def time(self, value: Any) -> datetime:
        moment: datetime = datetime.fromisoformat(value) if self._sqlite else value
        return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)

    def json(self, value: Any) -> Any:
        """SQLite holds JSON as text; psycopg2 decodes PostgreSQL's json columns itself."""
        return json.loads(value) if self._sqlite and value is not None else value
