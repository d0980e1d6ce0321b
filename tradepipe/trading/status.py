"""The read side of ``tradepipe status``: portfolio, last trading cycle, current weights.

The rows come from ``adapters.db.status_reader`` (a plain DB-API reader, so the command answers at once);
the ORM's rows of the same queries have the same attributes and give the same report (tested)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from tradepipe.adapters.db.status_reader import StatusRows
from tradepipe.core.formatting import money
from tradepipe.core.timeframes import iso_utc


def _money(value: Decimal | None) -> str | None:
    return None if value is None else money(value, grouping=False)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else iso_utc(moment, timespec="auto", suffix="+00:00")


def portfolio_status(rows: StatusRows, book: str) -> dict[str, Any]:
    """The report ``status --json`` prints (``render_status`` lays it out for a terminal)."""
    snapshot, cycle, positions, live_weights, counts = rows.snapshot, rows.cycle, rows.positions, rows.live_weights, rows.counts
    marks = (snapshot.positions if snapshot else {}) or {}
    return {
        "book": book,
        "portfolio": None
        if snapshot is None
        else {
            "as_of_bar": _iso(snapshot.bar_ts),
            "equity": _money(snapshot.equity),
            "cash": _money(snapshot.cash),
            "positions_value": _money(snapshot.positions_value),
            "realized_pnl": _money(snapshot.realized_pnl),
            "unrealized_pnl": _money(snapshot.unrealized_pnl),
            "day_pnl": _money(snapshot.equity - snapshot.day_start_equity),
            "fees_paid": _money(snapshot.fees_paid),
        },
        "positions": [
            {
                "symbol": p.symbol,
                "quantity": format(p.quantity.normalize(), "f"),
                "average_price": _money(p.average_price),
                "mark": marks.get(p.symbol, {}).get("mark"),
            }
            for p in positions
        ],
        "last_cycle": None
        if cycle is None
        else {
            "bar": _iso(cycle.bar_ts),
            "status": cycle.status,
            "market_source": cycle.market_source,
            "timeframe": cycle.timeframe,
            "finished_at": _iso(cycle.finished_at),
            "weights_source": cycle.weights_source,
            "skipped": cycle.skipped,
            "error": cycle.error,
        },
        "weights": {
            "values": cycle.weights if cycle else (live_weights.new_weights if live_weights else {}),
            "source": cycle.weights_source if cycle else None,
            "published": None
            if live_weights is None
            else {"id": live_weights.id, "method": live_weights.method, "promoted_at": _iso(live_weights.promoted_at)},
        },
        "counts": counts,
    }


def render_status(status: dict[str, Any]) -> str:
    lines = [f"tradepipe status — book {status['book']!r}"]
    portfolio = status["portfolio"]
    if portfolio is None:
        lines.append("  no trading cycle has run yet (start `make run`; the sensor trades each closed bar)")
    else:
        lines.append(
            f"  equity {portfolio['equity']}  cash {portfolio['cash']}  day P&L {portfolio['day_pnl']}  "
            f"realised {portfolio['realized_pnl']}  unrealised {portfolio['unrealized_pnl']}  (bar {portfolio['as_of_bar']})"
        )
    lines.append("  positions:" if status["positions"] else "  positions: none")
    for position in status["positions"]:
        lines.append(
            f"    {position['symbol']:<10} qty {position['quantity']:<14} avg {position['average_price']:<12} "
            f"mark {_money(Decimal(position['mark'])) if position['mark'] is not None else '-'}"  # as the average: no float tail
        )
    cycle = status["last_cycle"]
    if cycle:
        skipped = f", skipped {cycle['skipped']}" if cycle["skipped"] else ""
        lines.append(
            f"  last cycle: bar {cycle['bar']} {cycle['status']} ({cycle['market_source']} {cycle['timeframe']}){skipped}"
        )
    weights = status["weights"]
    shown = ", ".join(f"{name} {value:.3f}" for name, value in sorted(weights["values"].items()))
    lines.append(f"  weights ({weights['source'] or 'none yet'}): {shown or '-'}")
    counts = status["counts"]
    lines.append(
        f"  totals: {counts['cycles']} cycles, {counts['signals']} signals, {counts['orders']} orders, {counts['fills']} fills"
    )
    return "\n".join(lines)
