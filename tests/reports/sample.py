"""Report inputs with known numbers, for the report tests (small) and as a shape for the benchmark."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tradepipe.core.report_inputs import AgentDay, AgentWork, CycleRecord, EquityPoint, FillRecord, MetricRecord, OrderRecord, ReportInputs, TaskRecord, WeightDecisionRecord

WINDOW_START = datetime(2026, 3, 4, 10, 0, tzinfo=timezone.utc)
WINDOW_END = WINDOW_START + timedelta(hours=2)


def sample_inputs(
    agents: tuple[str, ...] = ("momentum", "trend"),
    symbols: tuple[str, ...] = ("BTC/USDT", "ETH/USDT"),
    minutes: int = 3 * 24 * 60,
    recipients: tuple[str, ...] = ("trader@example.com",),
    **overrides: object,
) -> ReportInputs:
    """``minutes`` of 1-minute snapshots ending at WINDOW_END; equity rises 1 per bar from 10,000."""
    first = WINDOW_END - timedelta(minutes=minutes)
    times = [first + timedelta(minutes=i) for i in range(minutes)]
    equity = [EquityPoint(t, 10_000.0 + i, 5_000.0) for i, t in enumerate(times)]
    window = [t for t in times if t >= WINDOW_START]
    cycles = [
        CycleRecord(t, "succeeded", {symbols[-1]: "market data: timeout"} if i % 10 == 0 else {}, "redis")
        for i, t in enumerate(window)
    ]
    orders = [OrderRecord(t, symbols[0], "buy", "filled") for t in window[::4]]
    orders += [OrderRecord(t, symbols[0], "buy", "rejected", "max_position") for t in window[::20]]
    fills = [FillRecord(t, symbols[0], 0.5, 1.0) for t in window[::4]]
    days = [WINDOW_START.date() - timedelta(days=d) for d in (2, 1, 0)]
    performance = [
        AgentDay(day, agent, 0.2 if agent == agents[0] else 1.5, 0.5, 0.01, 100, 12.5, rank, rank == 1, rank == len(agents))
        for day in days
        for rank, agent in sorted(enumerate(reversed(agents), start=1), key=lambda x: x[0])
    ]
    weight = 1.0 / len(agents)
    changes = [
        WeightDecisionRecord(
            WINDOW_START - timedelta(days=1), "max_sharpe", {a: weight for a in agents}, {a: weight for a in agents},
            "kept: no eligible agent", False, True,
        )
    ]
    work = [AgentWork(t, a, "signal", "voted", 2.0) for t in window for a in agents]
    metrics = [MetricRecord(t, "cycle_latency_seconds", 0.5, {"stage": "total"}) for t in window]
    metrics += [MetricRecord(t, "cycle_latency_seconds", 0.1, {"stage": stage}) for t in window for stage in ("market_data", "agents", "risk", "ledger")]
    metrics += [MetricRecord(WINDOW_START + timedelta(minutes=5), "data_fetch_errors", 1, {"symbol": symbols[-1]})]
    values: dict[str, object] = dict(
        book="main",
        quote_currency="USDT",
        timeframe="1m",
        bar_seconds=60.0,
        window_start=WINDOW_START,
        window_end=WINDOW_END,
        generated_at=WINDOW_END + timedelta(minutes=1),
        starting_cash=10_000.0,
        equity=equity,
        positions=[{"symbol": symbols[0], "quantity": 0.1, "average_price": 50_000.0, "mark": 51_000.0, "value": 5_100.0}],
        cycles=cycles,
        orders=orders,
        fills=fills,
        performance=performance,
        weight_changes=changes,
        last_weights_update=WINDOW_START - timedelta(days=1),
        current_weights={a: weight for a in agents},
        work=work,
        metrics=metrics,
        open_tasks=[TaskRecord(7, "Check the feed", "open", 2, WINDOW_START - timedelta(days=1))],
        delivery_failures=[],
        recipients=list(recipients),
        partition_key="2026-03-04-10:00",
    )
    values.update(overrides)
    return ReportInputs(**values)  # type: ignore[arg-type]


__all__ = ["sample_inputs", "WINDOW_START", "WINDOW_END"]
