"""A report over a week of 1-minute cycles (10,080 cycles, 5 agents, 3 symbols): build and render both formats.

Target (issue 11): JSON + HTML (with its SVG charts) in under 5 s on the project machine. The email
(PNG charts, MIME) is timed too, since the asset renders it for every report.

    .venv/bin/python benchmarks/bench_report.py
"""

from __future__ import annotations

import math
import random
import time
from datetime import datetime, timedelta, timezone

from tradepipe.core.report import (
    AgentDay,
    AgentWork,
    CycleRecord,
    EquityPoint,
    FillRecord,
    MetricRecord,
    OrderRecord,
    ReportInputs,
    TaskRecord,
    WeightChange,
    build_report,
)
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
        WeightChange(END - timedelta(days=d), "max_sharpe", {a: 0.2 for a in AGENTS},
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


if __name__ == "__main__":
    main()
