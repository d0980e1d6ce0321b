"""The read side of ``tradepipe status``: portfolio, last trading cycle, current weights."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tradepipe.adapters.db.models import (
    Fill,
    Order,
    PortfolioSnapshot,
    PositionRow,
    SignalRow,
    TradingCycle,
    WeightHistory,
)


def _money(value: Decimal | None) -> str | None:
    return None if value is None else format(value.quantize(Decimal("0.01")), "f")


def portfolio_status(session: Session, book: str) -> dict[str, Any]:
    snapshot = session.scalars(
        select(PortfolioSnapshot).where(PortfolioSnapshot.book == book).order_by(PortfolioSnapshot.bar_ts.desc()).limit(1)
    ).first()
    cycle = session.scalars(
        select(TradingCycle).where(TradingCycle.book == book).order_by(TradingCycle.bar_ts.desc()).limit(1)
    ).first()
    positions = session.scalars(
        select(PositionRow).where(PositionRow.book == book, PositionRow.quantity != 0).order_by(PositionRow.symbol)
    ).all()
    live_weights = session.scalars(
        select(WeightHistory)
        .where(WeightHistory.book == book, WeightHistory.is_live.is_(True))
        .order_by(WeightHistory.promoted_at.desc(), WeightHistory.id.desc())
        .limit(1)
    ).first()
    cycles = session.scalar(select(func.count()).select_from(TradingCycle).where(TradingCycle.book == book)) or 0
    fills = session.scalar(select(func.count()).select_from(Fill).where(Fill.book == book)) or 0
    orders = session.scalar(select(func.count()).select_from(Order).where(Order.book == book)) or 0
    signals = session.scalar(select(func.count()).select_from(SignalRow).where(SignalRow.book == book)) or 0
    marks = (snapshot.positions if snapshot else {}) or {}
    return {
        "book": book,
        "portfolio": None
        if snapshot is None
        else {
            "as_of_bar": snapshot.bar_ts.isoformat(),
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
            "bar": cycle.bar_ts.isoformat(),
            "status": cycle.status,
            "market_source": cycle.market_source,
            "timeframe": cycle.timeframe,
            "finished_at": cycle.finished_at.isoformat() if cycle.finished_at else None,
            "weights_source": cycle.weights_source,
            "skipped": cycle.skipped,
            "error": cycle.error,
        },
        "weights": {
            "values": cycle.weights if cycle else (live_weights.new_weights if live_weights else {}),
            "source": cycle.weights_source if cycle else None,
            "published": None
            if live_weights is None
            else {"id": live_weights.id, "method": live_weights.method, "promoted_at": live_weights.promoted_at.isoformat() if live_weights.promoted_at else None},
        },
        "counts": {"cycles": cycles, "signals": signals, "orders": orders, "fills": fills},
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
            f"    {position['symbol']:<10} qty {position['quantity']:<14} avg {position['average_price']:<12} mark {position['mark']}"
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
