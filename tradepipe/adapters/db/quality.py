"""Data-quality rows: why a symbol was kept out of a trading cycle, in ``agent_work_log`` and ``system_metrics``.

Users of the old system watch both tables; the reports read ``system_metrics``:

    SELECT timestamp, tags->>'symbol', tags->>'rule', tags->>'reason'
    FROM system_metrics WHERE metric_name = 'market_bars_blocked' ORDER BY timestamp DESC;
"""

from __future__ import annotations

from datetime import datetime
from typing import Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from tradepipe.adapters.db.models import AgentWorkLog, SystemMetric, TradingCycle
from tradepipe.core.bar_quality import BarDefect

BLOCKED_METRIC = "market_bars_blocked"
DATA_QUALITY_AGENT = "data_quality"


def record_blocked_symbols(
    session: Session,
    cycle: TradingCycle,
    skipped: Mapping[str, str],
    defects: Mapping[str, Sequence[BarDefect]],
    run_id: str | None,
) -> None:
    """One ``agent_work_log`` row for the cycle's data check and one ``system_metrics`` row per symbol
    kept out of it (``skipped``: symbol -> reason; ``defects``: the blocking bar defects behind a reason)."""
    bar = cycle.bar_ts.isoformat()
    blocked = dict(skipped)
    session.add(
        AgentWorkLog(
            agent_name=DATA_QUALITY_AGENT,
            task="market_bars",
            status="blocked" if blocked else "passed",
            details={
                "bar": bar,
                "blocked": blocked,
                "defects": {
                    symbol: [defect.as_dict() for defect in found[:20]] for symbol, found in defects.items() if found
                },
            },
            cycle_id=cycle.id,
            run_id=run_id,
        )
    )
    for symbol, reason in sorted(blocked.items()):
        rules = sorted({defect.rule for defect in defects.get(symbol, ())})
        session.add(
            SystemMetric(
                metric_name=BLOCKED_METRIC,
                value=1.0,
                tags={
                    "book": cycle.book,
                    "bar": bar,
                    "symbol": symbol,
                    "rule": ",".join(rules) if rules else "market_data",
                    "reason": reason,
                    "run_id": run_id,
                },
            )
        )


def blocked_symbols_since(session: Session, book: str, since: datetime) -> list[SystemMetric]:
    """The ``market_bars_blocked`` rows of ``book`` recorded at or after ``since``, oldest first."""
    rows = session.scalars(
        select(SystemMetric).where(SystemMetric.metric_name == BLOCKED_METRIC, SystemMetric.timestamp >= since).order_by(SystemMetric.id)
    )
    return [row for row in rows if (row.tags or {}).get("book") == book]
