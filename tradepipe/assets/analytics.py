"""Trade attribution and agent performance: daily-partitioned assets over the ledger."""


from datetime import datetime
from typing import Any

import dagster as dg

from tradepipe.adapters.db.analytics import (
    load_attribution,
    load_realized_fills,
    load_signals,
    replace_attribution,
    replace_performance,
    signal_counts,
)
from tradepipe.adapters.db.trades import days_missing_attribution
from tradepipe.assets.metadata import table
from tradepipe.assets.partitions import ONE_DAY_PER_RUN, daily_with_today, partition_bounds, performance_window
from tradepipe.config.rules import book_rules
from tradepipe.core.metrics import daily_rule
from tradepipe.core.performance import agent_streams, evaluate_agents, split_exact, trade_stats
from tradepipe.core.timeframes import periods_per_year
from tradepipe.resources import LedgerDatabase, TradingConfigResource


@dg.asset(
    partitions_def=daily_with_today,
    # The ledger the trading cycle writes is upstream: the graph reads trading -> attribution -> performance -> weights.
    deps=[dg.AssetKey("portfolio_state")],
    group_name="analytics",
    backfill_policy=ONE_DAY_PER_RUN,
    kinds={"python", "sql"},
    description="Each realised P&L of the UTC day split among the agents whose signals opened the position.",
)
def trade_attribution(
    context: dg.AssetExecutionContext, trading: TradingConfigResource, ledger: LedgerDatabase
) -> dg.MaterializeResult:
    settings = trading.settings()
    start, end = partition_bounds(context)
    with ledger.sessions().begin() as session:
        fills = load_realized_fills(session, settings.book, start, end)
        rows = []
        for fill in fills:
            contributions = fill.opening_contributions or {}
            total = sum(contributions.values())
            for agent, part in split_exact(fill.realized_pnl, contributions).items():
                rows.append(
                    {
                        "fill_id": fill.id,
                        "symbol": fill.symbol,
                        "agent_name": agent,
                        "pnl": part,
                        "share": contributions.get(agent, 0.0) / total if total else 1.0,
                        "trade_pnl": fill.realized_pnl,
                        "realized_at": fill.ts,
                        "run_id": context.run_id,
                    }
                )
        written = replace_attribution(session, settings.book, start.date(), rows)
    totals: dict[str, Any] = {}
    for row in rows:
        totals[row["agent_name"]] = totals.get(row["agent_name"], 0) + row["pnl"]
    realized = sum((f.realized_pnl for f in fills), start=0)
    return dg.MaterializeResult(
        metadata={
            "realized_trades": len(fills),
            "attribution_rows": written,
            "realized_pnl": float(realized),
            "attributed_pnl": float(sum(totals.values(), start=0)),
            "by_agent": table(
                [{"agent": a, "pnl": float(p)} for a, p in sorted(totals.items(), key=lambda kv: -kv[1])],
                ["agent", "pnl"],
            ),
        }
    )


@dg.asset(
    partitions_def=daily_with_today,
    deps=[trade_attribution],
    group_name="analytics",
    backfill_policy=ONE_DAY_PER_RUN,
    kinds={"python", "sql"},
    description="Per-agent metrics over a rolling window ending at the partition's end (docs/architecture.md definitions). " + daily_rule() + " (TRADEPIPE_MIN_METRIC_DAYS).",
)
def agent_performance(
    context: dg.AssetExecutionContext, trading: TradingConfigResource, ledger: LedgerDatabase
) -> dg.MaterializeResult:
    settings = trading.settings()
    day_start, day_end = partition_bounds(context)
    start, end = performance_window(day_end, settings.performance_window_days)
    ppy = periods_per_year(settings.resolved_timeframe)
    with ledger.sessions().begin() as session:
        signals = load_signals(session, settings.book, start, end)
        parts = load_attribution(session, settings.book, start.date(), day_start.date())
        streams = agent_streams(signals, book_rules(settings))
        rows, classification = evaluate_agents(
            list(settings.agents), streams, signal_counts(signals), trade_stats(parts), ppy, settings.risk_free_rate,
            min_returns=settings.min_metric_returns, min_days=settings.min_metric_days,
        )
        replace_performance(session, settings.book, day_start.date(), settings.performance_window_days, rows, context.run_id)
        missing = days_missing_attribution(session, settings.book, start, day_end)
    metadata = performance_metadata(rows, classification, start, end, len(streams))
    metadata["figures"] = daily_rule(settings.min_metric_days)
    metadata["trade_counts"] = attribution_coverage_note(missing)
    if missing:
        context.log.warning(metadata["trade_counts"])
    return dg.MaterializeResult(metadata=metadata)


def attribution_coverage_note(missing_days: list[str]) -> str:
    """Trade counts and attributed P&L come from trade_attribution: say when some of its days are not there yet."""
    if not missing_days:
        return "complete: every day of the window with realised P&L has its trade_attribution partition"
    shown = ", ".join(missing_days[:5]) + (f" and {len(missing_days) - 5} more" if len(missing_days) > 5 else "")
    return (
        f"INCOMPLETE: trade counts and attributed P&L leave out {len(missing_days)} day(s) with realised P&L whose "
        f"trade_attribution partition is not materialised yet ({shown})"
    )


def performance_metadata(
    rows: dict[str, dict[str, Any]], classification: dict[str, Any], start: datetime, end: datetime, bars: int
) -> dict[str, Any]:
    metric_rows = [
        {
            "agent": agent,
            "rank": row["rank"],
            "sharpe": row["sharpe"],
            "sortino": row["sortino"],
            "win_rate": row["win_rate"],
            "profit_factor": row["profit_factor"],
            "max_drawdown": row["max_drawdown"],
            "total_return": row["total_return"],
            "signals": row["signal_count"],
            "trades": row["trade_count"],
            "attributed_pnl": float(row["attributed_pnl"]),
            "why_no_sharpe": row["null_reasons"].get("sharpe", ""),
        }
        for agent, row in sorted(rows.items(), key=lambda kv: kv[1]["rank"])
    ]
    return {
        "agents_analyzed": len(rows),
        "top_performers": dg.MetadataValue.json(classification["top_performers"]),
        "underperformers": dg.MetadataValue.json(classification["underperformers"]),
        "ranking_by_sharpe": dg.MetadataValue.json(classification["ranking"]),
        "window": f"{start.isoformat()} .. {end.isoformat()}",
        "bars_in_window": bars,
        "metrics": table(metric_rows, list(metric_rows[0]) if metric_rows else ["agent"]),
    }
