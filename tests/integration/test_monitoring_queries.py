"""Every query of docs/monitoring-queries.md runs on the databases it names (real SQLite and PostgreSQL),
and the 7-day ones keep exactly the rows of the last 7 days."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import text

from tradepipe.adapters.db.engine import session_factory
from tradepipe.adapters.db.models import AgentPerformanceRow, SystemMetricRow

DOC = Path(__file__).resolve().parents[2] / "docs" / "monitoring-queries.md"


def queries(dialect: str) -> list[str]:
    blocks = re.findall(r"```sql\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    found = []
    for block in blocks:
        first, _, body = block.partition("\n")
        assert first.startswith("-- "), f"a block must name its databases on its first line: {block[:60]!r}"
        if dialect in [d.strip() for d in first.removeprefix("-- ").split(",")]:
            found.append(body.strip().rstrip(";"))
    return found


def test_every_query_runs_and_seven_days_means_seven_days(migrated_url: str) -> None:
    dialect = "postgresql" if migrated_url.startswith("postgresql") else "sqlite"
    now = datetime.now(timezone.utc)
    with session_factory(migrated_url).begin() as session:
        for days_ago, agent, sharpe in ((2, "momentum", 1.0), (3, "momentum", 2.0), (10, "momentum", -9.0), (1, "trend", 0.5)):
            session.add(AgentPerformanceRow(date=(now - timedelta(days=days_ago)).date(), agent_name=agent, window_days=30,
                                            sharpe_ratio=sharpe, win_rate=0.5, total_signals=10))
        for days_ago, symbol in ((1, "BTC/USDT"), (9, "ETH/USDT")):
            session.add(SystemMetricRow(timestamp=now - timedelta(days=days_ago), metric_name="market_bars_blocked", value=1.0,
                                        tags={"symbol": symbol, "rule": "gap", "reason": "missing bar"}))

    chosen = queries(dialect)
    assert len(chosen) == 8  # six on both databases, two of this one's own
    with session_factory(migrated_url)() as session:
        results = [session.execute(text(sql)).all() for sql in chosen]
    per_agent = {row[0]: (row[1], row[3]) for row in results[-2]}
    assert per_agent == {"momentum": (1.5, 20), "trend": (0.5, 10)}  # the row 10 days old is left out
    assert [(row[1], row[2]) for row in results[-1]] == [("BTC/USDT", "gap")]
    assert len(results[1]) == 4  # the plain query reads every agent_performance row
