"""Per-agent return streams from stored signals, and the per-agent performance rows built on them.

Pure: plain tables in, plain dicts out. The ``agent_performance`` and ``agent_weights`` assets
call these with what they read from the ledger.
"""

from __future__ import annotations

import re
from decimal import ROUND_DOWN, Decimal
from typing import Any, Mapping

import numpy as np
import pandas as pd

from tradepipe.core.attribution import DEFAULT_QUANTUM, split_pnl
from tradepipe.core.metrics import agent_return_stream, classify_agents, summarize_many

SIGNAL_COLUMNS = ("bar_ts", "symbol", "agent_name", "value", "abstained", "close")


def agent_streams(signals: pd.DataFrame, fee_bps: float) -> pd.DataFrame:
    """Bars x agents table of what following each agent alone would have earned per bar.

    ``signals`` has one row per (bar_ts, symbol, agent_name) with the signal ``value``, whether the
    agent ``abstained`` (held flat) and the bar's ``close``. Per symbol the stream is
    ``metrics.agent_return_stream`` (position at bar t times the next bar's return, net of
    ``fee_bps`` on position changes); an agent's stream is the equal-weighted mean over the symbols
    it covers at each bar. Rows are indexed by the bar whose position earned the return.
    """
    missing = set(SIGNAL_COLUMNS) - set(signals.columns)
    if missing:
        raise ValueError(f"signals table lacks columns {sorted(missing)}")
    if signals.empty:
        return pd.DataFrame(dtype=float)
    frames: dict[str, list[pd.Series]] = {}
    ordered = signals.sort_values(["agent_name", "symbol", "bar_ts"])
    for (agent, symbol), group in ordered.groupby(["agent_name", "symbol"], sort=True):
        if len(group) < 2:
            continue
        positions = np.where(group["abstained"].to_numpy(dtype=bool), 0.0, group["value"].to_numpy(dtype=float))
        closes = group["close"].to_numpy(dtype=float)
        try:
            returns = agent_return_stream(positions, closes, fee_bps)
        except ValueError as exc:
            raise ValueError(f"agent {agent!r}, {symbol}: {_name_bar(str(exc), group['bar_ts'])}") from None
        frames.setdefault(str(agent), []).append(pd.Series(returns, index=group["bar_ts"].to_numpy()[:-1]))
    columns = {agent: pd.concat(series, axis=1).mean(axis=1) for agent, series in frames.items()}
    return pd.DataFrame(columns).sort_index().fillna(0.0)


_BAR_INDEX = re.compile(r"\[(\d+)\]|\bat index (\d+)")


def _name_bar(message: str, bars: pd.Series) -> str:
    """Turn metrics' "closes[3] is not positive" / "closes contain nan at index 3" into a message
    that names the bar's timestamp."""
    match = _BAR_INDEX.search(message)
    if match is None:
        return message
    index = int(match.group(1) or match.group(2))
    if not 0 <= index < len(bars):
        return message
    return f"{message} (bar {pd.Timestamp(bars.iloc[index]).isoformat()})"


def trade_stats(parts: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per agent: attributed P&L (exact), trade count, trade win rate and profit factor.

    ``parts`` has ``agent_name`` and ``pnl`` (Decimal), one row per (realised fill, agent), and
    optionally ``closing``: False marks an entry fee, which counts in the attributed P&L but is not
    a trade won or lost.
    """
    stats: dict[str, dict[str, Any]] = {}
    if parts.empty:
        return stats
    for agent, group in parts.groupby("agent_name", sort=True):
        pnl = [Decimal(v) for v in group["pnl"]]
        closing = group["closing"].astype(bool).tolist() if "closing" in group else [True] * len(pnl)
        trades = [p for p, is_trade in zip(pnl, closing) if is_trade]
        wins = [p for p in trades if p > 0]
        losses = [p for p in trades if p < 0]
        decided = len(wins) + len(losses)
        stats[str(agent)] = {
            "attributed_pnl": sum(pnl, Decimal(0)),
            "trade_count": decided,
            "trade_win_rate": len(wins) / decided if decided else None,
            "trade_profit_factor": float(sum(wins) / -sum(losses)) if losses else None,
        }
    return stats


def evaluate_agents(
    agents: list[str],
    streams: pd.DataFrame,
    signal_counts: Mapping[str, int],
    trades: Mapping[str, Mapping[str, Any]],
    periods_per_year: float,
    risk_free: float = 0.0,
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Performance row per agent plus the ranking, top performers and underperformers."""
    frame = streams.reindex(columns=agents).fillna(0.0) if len(streams) else pd.DataFrame(columns=agents, dtype=float)
    summaries = summarize_many(frame.to_numpy(dtype=float).reshape(len(frame), len(agents)), periods_per_year, risk_free, names=agents)
    rows: dict[str, dict[str, Any]] = {}
    for agent in agents:
        trade = trades.get(agent, {})
        rows[agent] = {
            **summaries[agent],
            "returns": len(frame),
            "signal_count": int(signal_counts.get(agent, 0)),
            "trade_count": int(trade.get("trade_count", 0)),
            "attributed_pnl": trade.get("attributed_pnl", Decimal(0)),
            "trade_win_rate": trade.get("trade_win_rate"),
            "trade_profit_factor": trade.get("trade_profit_factor"),
        }
    classification = classify_agents(rows)
    ranking = classification["ranking"]
    for agent in agents:
        rows[agent]["rank"] = ranking.index(agent) + 1
        rows[agent]["is_top_performer"] = agent in classification["top_performers"]
        rows[agent]["is_underperformer"] = agent in classification["underperformers"]
    return rows, dict(classification)


def split_exact(
    pnl: Decimal, contributions: Mapping[str, float], quantum: Decimal = DEFAULT_QUANTUM
) -> dict[str, Decimal]:
    """``attribution.split_pnl`` for a P&L of any precision: the ledger's average-cost P&L can carry
    more decimals than ``quantum``. The whole-quantum part is split as usual and the sub-quantum
    residue goes to the agent with the largest absolute contribution, so the parts sum exactly.
    """
    whole = pnl.quantize(quantum, rounding=ROUND_DOWN)
    parts = split_pnl(whole, contributions, quantum)
    residue = pnl - whole
    if residue:
        biggest = max(parts, key=lambda agent: (abs(contributions.get(agent, 0.0)), agent))
        parts[biggest] += residue
    return parts
