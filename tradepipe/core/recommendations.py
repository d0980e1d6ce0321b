"""Rule-based recommendations, each with the numbers that triggered it.

A recommendation's ``key`` (rule and subject) identifies it across reports: the same key seen again
updates one ``improvement_suggestions`` row, and a key seen in ``persist_reports`` consecutive reports
becomes a ``project_tasks`` row (``adapters/db/tasks.record_suggestions``). Pure functions: records in, recommendations out.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Sequence

from tradepipe.core.report_inputs import AgentDay, ReportInputs, RuleThresholds


@dataclass(frozen=True)
class Recommendation:
    rule: str
    subject: str | None
    title: str
    detail: str
    priority: int
    """1 (most urgent) .. 5."""
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.rule}:{self.subject}" if self.subject else self.rule


def low_sharpe_agents(performance: Sequence[AgentDay], threshold: float, days: int) -> list[Recommendation]:
    """An agent whose Sharpe was under ``threshold`` on each of the last ``days`` consecutive UTC days."""
    by_agent: dict[str, dict[date, float | None]] = defaultdict(dict)
    for row in performance:
        by_agent[row.agent][row.day] = row.sharpe
    result = []
    for agent, series in sorted(by_agent.items()):
        last = sorted(series)[-days:]
        consecutive = len(last) == days and all(b - a == timedelta(days=1) for a, b in zip(last, last[1:]))
        values = [series[d] for d in last]
        if consecutive and all(v is not None and math.isfinite(v) and v < threshold for v in values):
            shown = ", ".join(f"{d.isoformat()} {series[d]:.2f}" for d in last)
            result.append(
                Recommendation(
                    rule="agent_low_sharpe",
                    subject=agent,
                    title=f"Agent {agent}: Sharpe under {threshold:g} for {days} days running",
                    detail=f"Sharpe by day: {shown}. Consider lowering its minimum weight or disabling it.",
                    priority=2,
                    evidence={"sharpe_by_day": {d.isoformat(): series[d] for d in last}, "threshold": threshold, "days": days},
                )
            )
    return result


def risk_limit_hits(inputs: ReportInputs, per_day: int) -> list[Recommendation]:
    since = inputs.window_end - timedelta(hours=24)
    hits = Counter(o.reject_kind or "unspecified" for o in inputs.orders if o.status == "rejected" and since <= o.ts < inputs.window_end)
    return [
        Recommendation(
            rule="risk_limit_hit",
            subject=kind,
            title=f"Risk limit {kind} hit {n} times in 24 hours",
            detail=f"{n} orders were rejected by {kind} in the 24 hours to {inputs.window_end:%Y-%m-%d %H:%M} UTC "
            f"(threshold {per_day}). The limit or the agents' targets may need tuning.",
            priority=3,
            evidence={"kind": kind, "hits_24h": n, "threshold": per_day},
        )
        for kind, n in sorted(hits.items())
        if n >= per_day
    ]


def data_gaps(inputs: ReportInputs, document: dict[str, Any], min_cycles: int) -> list[Recommendation]:
    activity, health = document["activity"], document["health"]
    cycles = max(activity["cycles_run"] + activity["cycles_failed"], 1)
    reasons: dict[str, str] = {}
    for cycle in inputs.cycles:
        for symbol, reason in cycle.skipped_symbols.items():
            reasons.setdefault(symbol, reason)
    symbols = set(activity["skipped_symbols"]) | set(health["data_errors"])
    result = []
    for symbol in sorted(symbols):
        skipped = activity["skipped_symbols"].get(symbol, 0)
        errors = health["data_errors"].get(symbol, 0)
        if skipped < min_cycles and errors < min_cycles:
            continue
        result.append(
            Recommendation(
                rule="data_gaps",
                subject=symbol,
                title=f"Data gaps in {symbol}: skipped in {skipped} of {cycles} cycles",
                detail=f"{symbol} was skipped in {skipped} of {cycles} cycles ({skipped / cycles:.0%}) with {errors} "
                f"data fetch errors; first reason: {reasons.get(symbol, 'n/a')}",
                priority=2,
                evidence={"cycles_skipped": skipped, "cycles": cycles, "share": skipped / cycles, "data_errors": errors,
                          "reason": reasons.get(symbol)},
            )
        )
    return result


def stale_weights(inputs: ReportInputs, days: int) -> list[Recommendation]:
    """Weights not re-optimised for ``days``; a book younger than that is not flagged."""
    since = inputs.last_weights_update or (inputs.equity[0].ts if inputs.equity else None)
    if since is None:
        return []
    age = (inputs.window_end - since).total_seconds() / 86400
    if age <= days:
        return []
    last = inputs.last_weights_update.isoformat() if inputs.last_weights_update else "never"
    return [
        Recommendation(
            rule="weights_stale",
            subject=None,
            title=f"Weights not updated for {age:.1f} days",
            detail=f"The last weight update was {last}; the optimiser keeps the previous weights when no agent is "
            f"eligible. Check the weights_daily schedule and the agent_weights metadata.",
            priority=3,
            evidence={"last_update": None if inputs.last_weights_update is None else inputs.last_weights_update.isoformat(),
                      "days_since": age, "threshold_days": days},
        )
    ]


def slow_cycles(document: dict[str, Any], share: float) -> list[Recommendation]:
    health = document["health"]
    total = health["latency_seconds"].get("total")
    bar = health["bar_seconds"]
    if not total or total["p95"] is None or bar <= 0 or total["p95"] <= bar * share:
        return []
    stages = {s: v["p95"] for s, v in health["latency_seconds"].items() if s != "total" and v["p95"] is not None}
    slowest = max(stages, key=lambda s: stages[s]) if stages else "n/a"
    return [
        Recommendation(
            rule="slow_cycle",
            subject=None,
            title=f"Trading cycle slower than a third of its bar (p95 {total['p95']:.1f} s of {bar:.0f} s)",
            detail=f"Cycle latency p95 {total['p95']:.2f} s, max {total['max']:.2f} s, over {total['count']} cycles; "
            f"limit {bar * share:.1f} s. Slowest stage: {slowest}.",
            priority=2,
            evidence={"p95_seconds": total["p95"], "max_seconds": total["max"], "bar_seconds": bar,
                      "limit_seconds": bar * share, "p95_by_stage": stages},
        )
    ]


def high_fees(inputs: ReportInputs, share: float, min_fills: int) -> list[Recommendation]:
    """Fees of the week as a share of gross (before-fee) realised P&L."""
    since = inputs.window_end - timedelta(days=7)
    fills = [f for f in inputs.fills if since <= f.ts < inputs.window_end]
    if len(fills) < min_fills:
        return []
    fees = sum(f.fee for f in fills)
    gross = sum(f.realized_pnl + f.fee for f in fills)
    if fees <= 0 or (gross > 0 and fees / gross <= share):
        return []
    ratio = fees / gross if gross > 0 else None
    shown = f"{ratio:.0%} of" if ratio is not None else "more than all of (gross is not positive)"
    return [
        Recommendation(
            rule="fees_high",
            subject=None,
            title=f"Fees are {shown} gross P&L this week",
            detail=f"Fees {fees:,.2f} against gross realised P&L {gross:,.2f} over {len(fills)} fills in 7 days "
            f"(threshold {share:.0%}). A wider rebalance band or fewer position changes would trade less.",
            priority=3,
            evidence={"fees": fees, "gross_pnl": gross, "share": ratio, "threshold": share, "fills": len(fills)},
        )
    ]


def failed_deliveries(inputs: ReportInputs) -> list[Recommendation]:
    failures = sorted(inputs.delivery_failures, key=lambda f: f.at)
    if not failures:
        return []
    return [
        Recommendation(
            rule="email_failed",
            subject=None,
            title=f"{len(failures)} report emails not delivered",
            detail=f"Last error: {failures[-1].error}. They are retried with the next report; "
            "check the SMTP settings with `tradepipe email test`.",
            priority=1,
            evidence={"unsent_reports": [f.report_id for f in failures], "last_error": failures[-1].error,
                      "first_failure": failures[0].at.isoformat()},
        )
    ]


def recommend(inputs: ReportInputs, document: dict[str, Any], thresholds: RuleThresholds) -> list[Recommendation]:
    """Every rule's recommendations, most urgent first."""
    found = [
        *failed_deliveries(inputs),
        *low_sharpe_agents(inputs.performance, thresholds.low_sharpe, thresholds.low_sharpe_days),
        *data_gaps(inputs, document, thresholds.data_gap_cycles),
        *slow_cycles(document, thresholds.slow_cycle_bar_share),
        *risk_limit_hits(inputs, thresholds.risk_hits_per_day),
        *stale_weights(inputs, thresholds.weights_stale_days),
        *high_fees(inputs, thresholds.fee_share_of_gross, thresholds.fee_rule_min_fills),
    ]
    return sorted(found, key=lambda r: (r.priority, r.key))
