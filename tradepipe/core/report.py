"""The project report: one model (a JSON document, versioned by ``SCHEMA_VERSION``) built from plain records.

``build_report`` is pure: the asset reads the ledger, analytics tables and health metrics into the
records below and hands them here; the renderers (``tradepipe.reports``) turn the document into JSON,
HTML and an email. The document's layout is ``tradepipe/reports/report.schema.json``.

Windows are UTC and half-open ``[start, end)``; a bar belongs to the window its open time falls in.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any, Iterable, Sequence

import numpy as np

from tradepipe.core.formatting import money
from tradepipe.core.metrics import DAILY_RULE
from tradepipe.core.recommendations import Recommendation, recommend
from tradepipe.core.report_inputs import AgentWork, EquityPoint, ReportInputs
from tradepipe.core.timeframes import iso_utc

SCHEMA_VERSION = "1.0"
# Charts are drawn from at most this many points: a week of 1-minute bars is 10,080 points, more
# than a chart's width in pixels; the figures (drawdown, P&L) are computed on every point.
MAX_CHART_POINTS = 720
LATENCY_STAGES = ("market_data", "agents", "risk", "ledger", "total")


def iso(moment: datetime) -> str:
    return iso_utc(moment, timespec="auto")


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _reference_equity(points: Sequence[EquityPoint], times: np.ndarray, start: datetime, starting_cash: float) -> float:
    """Equity just before ``start``: the last snapshot before it, else the starting cash (a book born later)."""
    index = int(np.searchsorted(times, start.timestamp(), side="left")) - 1
    return points[index].equity if index >= 0 else starting_cash


def portfolio_section(inputs: ReportInputs) -> dict[str, Any]:
    points = [p for p in inputs.equity if p.ts < inputs.window_end]
    times = np.array([p.ts.timestamp() for p in points], dtype=float)
    last = points[-1] if points else None
    equity = last.equity if last else inputs.starting_cash
    day_start = inputs.window_start.replace(hour=0, minute=0, second=0, microsecond=0)
    week_start = inputs.window_end - timedelta(days=7)

    def pnl(since: datetime) -> float:
        return equity - _reference_equity(points, times, since, inputs.starting_cash)

    week = [p.equity for p in points if p.ts >= week_start]
    return {
        "equity": equity,
        "cash": last.cash if last else inputs.starting_cash,
        "as_of": iso(last.ts) if last else None,
        "pnl": {"window": pnl(inputs.window_start), "day": pnl(day_start), "week": pnl(week_start)},
        "max_drawdown_week": _max_drawdown(np.array(week, dtype=float)) if week else None,
        "positions": [
            {k: position.get(k) for k in ("symbol", "quantity", "average_price", "mark", "value")}
            for position in sorted(inputs.positions, key=lambda p: str(p.get("symbol")))
        ],
    }


def _drawdown(equity: np.ndarray) -> np.ndarray:
    return equity / np.maximum.accumulate(equity) - 1.0 if len(equity) else equity


def _max_drawdown(equity: np.ndarray) -> float | None:
    return _finite(float(_drawdown(equity).min())) if len(equity) else None


def activity_section(inputs: ReportInputs) -> dict[str, Any]:
    start, end = inputs.window_start, inputs.window_end
    cycles = [c for c in inputs.cycles if start <= c.bar_ts < end]
    # Only bars that have closed by the time of the report can have been traded: a preview in the
    # middle of its window does not count the rest of the window as missed.
    closed_by = min(end, max(inputs.generated_at, start))
    expected = int((closed_by - start).total_seconds() // inputs.bar_seconds) if inputs.bar_seconds > 0 else 0
    stale_runs = sum(int(m.value) for m in inputs.metrics if m.name == "cycle_skipped" and start <= m.ts < end)
    orders = [o for o in inputs.orders if start <= o.ts < end]
    rejections = Counter(o.reject_kind or "unspecified" for o in orders if o.status == "rejected")
    fills = [f for f in inputs.fills if start <= f.ts < end]
    skipped_symbols: Counter[str] = Counter()
    for cycle in cycles:
        skipped_symbols.update(s for s in cycle.skipped_symbols if not s.startswith("weights:"))
    return {
        "bars_expected": expected,
        "cycles_run": sum(1 for c in cycles if c.status == "succeeded"),
        "cycles_failed": sum(1 for c in cycles if c.status not in ("succeeded", "running")),
        "cycles_missed": max(expected - len(cycles), 0),
        "runs_skipped": stale_runs,
        "cycles_with_skipped_symbols": sum(1 for c in cycles if any(not s.startswith("weights:") for s in c.skipped_symbols)),
        "skipped_symbols": dict(sorted(skipped_symbols.items())),
        "orders": sum(1 for o in orders if o.status != "rejected"),
        "fills": len(fills),
        "fees": sum(f.fee for f in fills),
        "rejections": dict(sorted(rejections.items())),
        "weights_sources": dict(sorted(Counter(c.weights_source or "unknown" for c in cycles).items())),
    }


def agents_section(inputs: ReportInputs) -> dict[str, Any]:
    if not inputs.performance:
        return {"as_of": None, "ranking": [], "top_performers": [], "underperformers": []}
    latest = max(row.day for row in inputs.performance)
    rows = [row for row in inputs.performance if row.day == latest]
    ranked = sorted(rows, key=lambda r: (r.rank is None, r.rank or 0, -(r.sharpe or -math.inf), r.agent))
    return {
        "as_of": latest.isoformat(),
        "ranking": [
            {
                "agent": r.agent,
                "rank": r.rank,
                "sharpe": _finite(r.sharpe),
                "win_rate": _finite(r.win_rate),
                "total_return": _finite(r.total_return),
                "signals": r.signals,
                "attributed_pnl": r.attributed_pnl,
            }
            for r in ranked
        ],
        "top_performers": [r.agent for r in ranked if r.top],
        "underperformers": [r.agent for r in ranked if r.under],
    }


def weights_section(inputs: ReportInputs) -> dict[str, Any]:
    changes = sorted(inputs.weight_changes, key=lambda c: c.ts)
    return {
        "current": dict(sorted(inputs.current_weights.items())),
        "last_update": iso(inputs.last_weights_update) if inputs.last_weights_update else None,
        "changes": [
            {
                "at": iso(c.ts),
                "method": c.method,
                "updated": c.updated,
                "live": c.live,
                "old": dict(sorted(c.old.items())),
                "new": dict(sorted(c.new.items())),
                "reason": c.reason,
            }
            for c in changes
        ],
    }


def _percentiles(values: Iterable[float]) -> dict[str, float | int | None]:
    array = np.array([v for v in values if math.isfinite(v)], dtype=float)
    if not len(array):
        return {"count": 0, "p50": None, "p95": None, "max": None}
    p50, p95 = np.percentile(array, [50, 95])
    return {"count": int(len(array)), "p50": float(p50), "p95": float(p95), "max": float(array.max())}


def work_section(inputs: ReportInputs) -> list[dict[str, Any]]:
    by_agent: dict[str, list[AgentWork]] = defaultdict(list)
    for row in inputs.work:
        if inputs.window_start <= row.ts < inputs.window_end:
            by_agent[row.agent].append(row)
    result = []
    for agent, rows in sorted(by_agent.items()):
        rows.sort(key=lambda r: r.ts)
        durations = _percentiles(r.duration_ms for r in rows if r.duration_ms is not None)
        statuses = Counter(r.status for r in rows)
        result.append(
            {
                "agent": agent,
                "tasks": len(rows),
                "by_status": dict(sorted(statuses.items())),
                "duration_ms": {"p50": durations["p50"], "p95": durations["p95"], "max": durations["max"]},
                "last_status": rows[-1].status,
                "last_task": rows[-1].task,
            }
        )
    return result


def health_section(inputs: ReportInputs) -> dict[str, Any]:
    metrics = [m for m in inputs.metrics if inputs.window_start <= m.ts < inputs.window_end]
    latency: dict[str, list[float]] = defaultdict(list)
    data_errors: Counter[str] = Counter()
    retries: Counter[str] = Counter()
    failed_runs = []
    for metric in metrics:
        if metric.name == "cycle_latency_seconds":
            latency[str(metric.tags.get("stage", "total"))].append(metric.value)
        elif metric.name == "data_fetch_errors":
            data_errors[str(metric.tags.get("symbol", "unknown"))] += int(metric.value)
        elif metric.name == "data_fetch_retries":
            retries[str(metric.tags.get("symbol", "unknown"))] += int(metric.value)
        elif metric.name == "run_failed":
            failed_runs.append(
                {
                    "at": iso(metric.ts),
                    "job": str(metric.tags.get("job", "")),
                    "run_id": str(metric.tags.get("run_id", "")),
                    "error": str(metric.tags.get("error", "")),
                }
            )
    stages = [s for s in LATENCY_STAGES if s in latency] + sorted(set(latency) - set(LATENCY_STAGES))
    return {
        "failed_runs": failed_runs,
        "failed_checks": [
            {"at": iso(c.at), "asset": c.asset, "check": c.check, "description": c.description}
            for c in sorted(inputs.failed_checks, key=lambda c: c.at)
        ],
        "latency_seconds": {stage: _percentiles(latency[stage]) for stage in stages},
        "bar_seconds": inputs.bar_seconds,
        "data_errors": dict(sorted(data_errors.items())),
        "data_retries": dict(sorted(retries.items())),
        "email_failures": [
            {"report_id": f.report_id, "at": iso(f.at), "error": f.error}
            for f in sorted(inputs.delivery_failures, key=lambda f: f.at)
        ],
    }


def _stride(n: int) -> int:
    return max(1, math.ceil(n / MAX_CHART_POINTS))


def charts_section(inputs: ReportInputs) -> dict[str, Any]:
    week_start = inputs.window_end - timedelta(days=7)
    points = [p for p in inputs.equity if week_start <= p.ts < inputs.window_end]
    equity = np.array([p.equity for p in points], dtype=float)
    drawdown = _drawdown(equity)
    step = _stride(len(points))
    # Each kept point carries its bucket's deepest drawdown, so the chart never hides the worst moment.
    equity_series = [
        {
            "t": iso(points[i].ts),
            "equity": float(equity[min(i + step, len(points)) - 1]),
            "drawdown": float(drawdown[i : i + step].min()),
        }
        for i in range(0, len(points), step)
    ]
    weights_series = [
        {"t": iso(c.ts), "weights": dict(sorted(c.new.items()))}
        for c in sorted(inputs.weight_changes, key=lambda c: c.ts)
        if c.live or c.updated
    ]
    hours: dict[datetime, Counter[str]] = {}
    first_hour = (inputs.window_end - timedelta(hours=24)).replace(minute=0, second=0, microsecond=0)
    hour = first_hour
    while hour < inputs.window_end:
        hours[hour] = Counter()
        hour += timedelta(hours=1)
    for order in inputs.orders:
        bucket = order.ts.replace(minute=0, second=0, microsecond=0)
        if bucket in hours:
            hours[bucket]["rejections" if order.status == "rejected" else "orders"] += 1
    for fill in inputs.fills:
        bucket = fill.ts.replace(minute=0, second=0, microsecond=0)
        if bucket in hours:
            hours[bucket]["fills"] += 1
    activity = [
        {"t": iso(h), "orders": c["orders"], "fills": c["fills"], "rejections": c["rejections"]} for h, c in hours.items()
    ]
    return {"equity": equity_series, "weights": weights_series, "activity": activity}


def _money(value: float, currency: str) -> str:
    return f"{money(value)} {currency}"


def summary_markdown(document: dict[str, Any]) -> str:
    """A few lines a trader reads first (also the asset's Markdown metadata and the email's preview)."""
    meta, portfolio, activity = document["report"], document["portfolio"], document["activity"]
    currency = meta["quote_currency"]
    pnl = portfolio["pnl"]
    ranking = document["agents"]["ranking"]
    lines = [
        f"**{meta['book']}** {meta['window_start']} .. {meta['window_end']}",
        f"- Equity {_money(portfolio['equity'], currency)}; P&L window {pnl['window']:+,.2f}, "
        f"day {pnl['day']:+,.2f}, week {pnl['week']:+,.2f}",
        f"- Cycles {activity['cycles_run']} run of {activity['bars_expected']} bars "
        f"({activity['cycles_missed']} missed, {activity['runs_skipped']} skipped); "
        f"{activity['orders']} orders, {activity['fills']} fills, {sum(activity['rejections'].values())} rejected",
    ]
    if ranking:
        best = ranking[0]
        sharpe = "n/a" if best["sharpe"] is None else f"{best['sharpe']:.2f}"
        lines.append(f"- Best agent {best['agent']} (Sharpe {sharpe}); underperformers: {', '.join(document['agents']['underperformers']) or 'none'}")
        lines.append(f"- Figures: {DAILY_RULE} (TRADEPIPE_MIN_METRIC_DAYS; 14 by default)")
        lines += _negative_weight_note(document)
    health = document["health"]
    lines.append(
        f"- Health: {len(health['failed_runs'])} failed runs, {len(health['failed_checks'])} failed checks, "
        f"{sum(health['data_errors'].values())} data errors, {len(health['email_failures'])} unsent reports"
    )
    recommendations = document["recommendations"]
    lines.append(f"- {len(recommendations)} recommendations, {len(document['tasks'])} open tasks")
    lines.append(f"- Email: {document['delivery']['note']}")
    return "\n".join(lines)


def _negative_weight_note(document: dict[str, Any]) -> list[str]:
    """Say why, when the live weights give weight to agents whose Sharpe is negative (hedge does, by design)."""
    negative = {r["agent"] for r in document["agents"]["ranking"] if r["sharpe"] is not None and r["sharpe"] < 0}
    weighted = sorted(a for a, w in document["weights"]["current"].items() if a in negative and w > 0)
    if not weighted:
        return []
    changes = document["weights"]["changes"]
    method = changes[-1]["method"] if changes else None
    why = (
        "hedge keeps every voting agent at or above the minimum weight (an exploration share: weights are relative, "
        "moved by exp(eta x z) of each agent's traded returns, so a losing agent is still measured and regains weight "
        "when it earns it); max_sharpe would drop it"
        if method == "hedge"
        else f"set by {method}" if method else "set before this week: the agent_weights page says why"
    )
    return [f"- Weighted despite a negative Sharpe: {', '.join(weighted)}: {why}"]


def delivery_section(recipients: Sequence[str]) -> dict[str, Any]:
    if not recipients:
        return {
            "recipients": [],
            "status": "not_configured",
            "note": "not sent: no recipients configured (set TRADEPIPE_REPORT_RECIPIENTS or run `tradepipe email configure`)",
        }
    return {"recipients": list(recipients), "status": "pending", "note": f"emailed to {', '.join(recipients)}"}


def recommendation_dict(rec: Recommendation) -> dict[str, Any]:
    return {
        "key": rec.key,
        "rule": rec.rule,
        "subject": rec.subject,
        "title": rec.title,
        "detail": rec.detail,
        "priority": rec.priority,
        "evidence": rec.evidence,
    }


def build_report(inputs: ReportInputs) -> dict[str, Any]:
    """The report document (see ``report.schema.json``)."""
    document: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "report": {
            "book": inputs.book,
            "partition_key": inputs.partition_key,
            "window_start": iso(inputs.window_start),
            "window_end": iso(inputs.window_end),
            "generated_at": iso(inputs.generated_at),
            "timeframe": inputs.timeframe,
            "quote_currency": inputs.quote_currency,
        },
        "portfolio": portfolio_section(inputs),
        "activity": activity_section(inputs),
        "agents": agents_section(inputs),
        "weights": weights_section(inputs),
        "agent_work": work_section(inputs),
        "health": health_section(inputs),
        "tasks": [
            {"id": t.id, "title": t.title, "status": t.status, "priority": t.priority, "created_at": iso(t.created_at)}
            for t in sorted(inputs.open_tasks, key=lambda t: (t.priority, t.created_at, t.id))
        ],
        "delivery": delivery_section(inputs.recipients),
        "charts": charts_section(inputs),
    }
    document["recommendations"] = [recommendation_dict(r) for r in recommend(inputs, document, inputs.thresholds)]
    document["summary"] = summary_markdown(document)
    return document
