"""A report over a week of 1-minute cycles (10,080 cycles, 5 agents, 3 symbols): build and render both formats.

Target: JSON + HTML (with its SVG charts) in under 5 s on the project machine. The email
(PNG charts, MIME) is timed too, since the asset renders it for every report.

    .venv/bin/python benchmarks/bench_report.py [--with-db]

``--with-db`` also writes the same week into a fresh SQLite ledger (cycles, snapshots, work log,
metrics, orders, fills) and times what the asset does before emailing: read the inputs, build,
render and store the report with its suggestions.
"""

from __future__ import annotations

import math
import random
import sys
import time
from datetime import datetime, timedelta, timezone

from tradepipe.core.report_inputs import AgentDay, AgentWork, CycleRecord, EquityPoint, FillRecord, MetricRecord, OrderRecord, ReportInputs, TaskRecord, WeightDecisionRecord
from tradepipe.core.report import build_report
from tradepipe.reports.render import compose_email, render_json, render_standalone_html

AGENTS = ("momentum", "trend", "mean_reversion", "breakout", "sentiment")
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")
END = datetime(2026, 3, 8, 0, 0, tzinfo=timezone.utc)
MINUTES = 7 * 24 * 60


def week_of_cycles(seed: int = 11) -> ReportInputs:
    rng = random.Random(seed)
    start = END - timedelta(minutes=MINUTES)
    times = [start + timedelta(minutes=i) for i in range(MINUTES)]
    equity, value = [], 10_000.0
    for t in times:
        value *= 1 + rng.gauss(0.00001, 0.0008)
        equity.append(EquityPoint(t, value, value * 0.4))
    window_start = END - timedelta(hours=2)
    window = [t for t in times if t >= window_start]
    day = [t for t in times if t >= END - timedelta(days=1)]
    orders = [OrderRecord(t, rng.choice(SYMBOLS), rng.choice(("buy", "sell")), "filled") for t in day if rng.random() < 0.6]
    orders += [OrderRecord(t, rng.choice(SYMBOLS), "buy", "rejected", rng.choice(("max_position", "min_cost", "turnover")))
               for t in day if rng.random() < 0.1]
    fills = [FillRecord(t, rng.choice(SYMBOLS), 0.3, rng.gauss(0.2, 3.0)) for t in times if rng.random() < 0.5]
    performance = [
        AgentDay(END.date() - timedelta(days=d), agent, rng.gauss(0.8, 0.7), 0.5, 0.01, 400, rng.gauss(5, 20), rank)
        for d in range(5) for rank, agent in enumerate(AGENTS, start=1)
    ]
    weights = [
        WeightDecisionRecord(END - timedelta(days=d), "max_sharpe", {a: 0.2 for a in AGENTS},
                     {a: w / sum(ws) for a, w in zip(AGENTS, ws)}, "optimised", True, d == 1)
        for d in range(1, 8) for ws in [[rng.uniform(0.05, 0.4) for _ in AGENTS]]
    ]
    cycles = [CycleRecord(t, "succeeded", {"SOL/USDT": "stale"} if rng.random() < 0.02 else {}, "redis") for t in window]
    work = [AgentWork(t, a, "signal", "voted", rng.uniform(0.5, 5)) for t in window for a in AGENTS]
    metrics = [MetricRecord(t, "cycle_latency_seconds", rng.uniform(0.05, 0.5), {"stage": s})
               for t in window for s in ("market_data", "agents", "risk", "ledger", "total")]
    return ReportInputs(
        book="main", quote_currency="USDT", timeframe="1m", bar_seconds=60, window_start=window_start, window_end=END,
        generated_at=END, starting_cash=10_000, equity=equity,
        positions=[{"symbol": s, "quantity": 0.1, "average_price": 100.0, "mark": 101.0, "value": 10.1} for s in SYMBOLS],
        cycles=cycles, orders=orders, fills=fills, performance=performance, weight_changes=weights,
        last_weights_update=END - timedelta(days=1), current_weights={a: 0.2 for a in AGENTS}, work=work, metrics=metrics,
        open_tasks=[TaskRecord(1, "Agent sentiment: Sharpe under 0.5", "open", 2, END - timedelta(days=2))],
        recipients=["trader@example.com"], partition_key="2026-03-07-22:00",
    )


def seed_database(url: str, inputs: ReportInputs) -> None:
    from decimal import Decimal

    from sqlalchemy import insert

    from tradepipe.adapters.db.engine import get_engine, upgrade
    from tradepipe.adapters.db.models import AgentWorkLogRow, BookRow, FillRow, OrderRow, PortfolioSnapshotRow, SystemMetricRow, TradingCycleRow

    upgrade(url)
    engine = get_engine(url)
    with engine.begin() as connection:
        connection.execute(insert(BookRow), [{"name": "main", "starting_cash": Decimal(10000), "quote_currency": "USDT"}])
        connection.execute(insert(TradingCycleRow), [
            {"id": i + 1, "book": "main", "bar_ts": p.ts, "timeframe": "1m", "market_source": "synthetic", "status": "succeeded",
             "weights": inputs.current_weights, "weights_source": "redis", "skipped": {}}
            for i, p in enumerate(inputs.equity)
        ])
        connection.execute(insert(PortfolioSnapshotRow), [
            {"book": "main", "bar_ts": p.ts, "cycle_id": i + 1, "cash": Decimal(str(round(p.cash, 2))),
             "positions_value": Decimal(0), "equity": Decimal(str(round(p.equity, 2))), "realized_pnl": Decimal(0),
             "unrealized_pnl": Decimal(0), "fees_paid": Decimal(0), "day_start_equity": Decimal(10000), "positions": {}}
            for i, p in enumerate(inputs.equity)
        ])
        connection.execute(insert(AgentWorkLogRow), [
            {"timestamp": p.ts, "agent_name": a, "task": "signal", "status": "voted", "details": {}, "duration_ms": 2.0, "cycle_id": i + 1}
            for i, p in enumerate(inputs.equity) for a in AGENTS
        ])
        connection.execute(insert(SystemMetricRow), [
            {"timestamp": p.ts, "metric_name": name, "value": 0.1, "tags": {"book": "main", "stage": stage}}
            for p in inputs.equity
            for name, stage in [("cycle_latency_seconds", s) for s in ("market_data", "agents", "risk", "ledger", "total")]
            + [("weights_source", "redis"), ("skipped_symbols", "")]
        ])
        first_cycle = {p.ts: i + 1 for i, p in enumerate(inputs.equity)}
        connection.execute(insert(OrderRow), [
            {"id": i + 1, "client_order_id": f"o{i}", "cycle_id": first_cycle.get(f.ts, 1), "book": "main", "bar_ts": f.ts,
             "symbol": f.symbol, "side": "buy", "quantity": Decimal(1), "requested_quantity": Decimal(1), "status": "filled",
             "reason": "", "broker": "paper", "contributions": {}}
            for i, f in enumerate(inputs.fills)
        ])
        connection.execute(insert(FillRow), [
            {"order_id": i + 1, "client_order_id": f"o{i}", "trade_id": f"t{i}", "book": "main", "symbol": f.symbol, "side": "buy",
             "quantity": Decimal(1), "price": Decimal(100), "fee": Decimal(str(f.fee)), "notional": Decimal(100), "ts": f.ts,
             "realized_pnl": Decimal(str(round(f.realized_pnl, 8))), "closed_quantity": Decimal(0), "opening_contributions": {}}
            for i, f in enumerate(inputs.fills)
        ])


def bench_with_database(inputs: ReportInputs) -> None:
    import tempfile
    from pathlib import Path

    from tradepipe.adapters.db.engine import session_factory
    from tradepipe.reports.service import ReportRequest, store_report

    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.sqlite"
        seeded = time.perf_counter()
        seed_database(url, inputs)
        print(f"seeded SQLite with the week in {time.perf_counter() - seeded:.1f} s")
        request = ReportRequest(
            book="main", window_start=inputs.window_start, window_end=inputs.window_end, now=inputs.window_end,
            quote_currency="USDT", timeframe="1m", bar_seconds=60, default_starting_cash=10_000,
            recipients=["trader@example.com"], partition_key=inputs.partition_key,
        )
        started = time.perf_counter()
        stored = store_report(session_factory(url), request, Path(folder) / "reports", run_id="bench")
        print(f"asset path without email (read week from SQLite, build, JSON, HTML, store): {time.perf_counter() - started:.3f} s "
              f"(report #{stored.report_id}, {stored.document['activity']['cycles_run']} cycles in the window)")


def main() -> None:
    inputs = week_of_cycles()
    print(f"inputs: {len(inputs.equity)} cycles (equity points), {len(AGENTS)} agents, {len(SYMBOLS)} symbols, "
          f"{len(inputs.fills)} fills in the week, {len(inputs.orders)} orders in the last day")
    import matplotlib  # noqa: F401  (import cost is the code location's, paid once per process, not per report)

    started = time.perf_counter()
    document = build_report(inputs)
    built = time.perf_counter()
    json_text = render_json(document)
    json_done = time.perf_counter()
    html = render_standalone_html(document)
    html_done = time.perf_counter()
    message = compose_email(document, sender="tradepipe@example.com", recipients=["trader@example.com"], json_text=json_text)
    size = len(bytes(message))
    email_done = time.perf_counter()
    both = html_done - started
    print(f"build report model        {built - started:6.3f} s")
    print(f"JSON (validated)          {json_done - built:6.3f} s  ({len(json_text) / 1024:.0f} KiB)")
    print(f"HTML (4 SVG charts)       {html_done - json_done:6.3f} s  ({len(html) / 1024:.0f} KiB, self-contained)")
    print(f"email (4 PNG charts, MIME){email_done - html_done:6.3f} s  ({size / 1024:.0f} KiB)")
    print(f"both formats (model+JSON+HTML): {both:.3f} s  target < 5 s: {'PASS' if both < 5 else 'FAIL'}")
    print(f"everything incl. email:         {email_done - started:.3f} s")
    assert math.isfinite(document["portfolio"]["equity"])
    if "--with-db" in sys.argv:
        bench_with_database(inputs)


if __name__ == "__main__":
    main()
