"""The plain records the project report is built from: what the asset reads from the ledger, the
analytics tables and the health metrics, and the thresholds of the recommendation rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Sequence


@dataclass(frozen=True)
class RuleThresholds:
    low_sharpe: float = 0.5
    low_sharpe_days: int = 3
    risk_hits_per_day: int = 5
    data_gap_cycles: int = 3
    weights_stale_days: int = 3
    slow_cycle_bar_share: float = 1 / 3
    fee_share_of_gross: float = 0.3
    fee_rule_min_fills: int = 10
    persist_reports: int = 3
    """A recommendation in this many consecutive reports becomes a task."""



@dataclass(frozen=True)
class EquityPoint:
    ts: datetime
    equity: float
    cash: float


@dataclass(frozen=True)
class CycleRecord:
    bar_ts: datetime
    status: str
    skipped_symbols: dict[str, str] = field(default_factory=dict)
    weights_source: str | None = None


@dataclass(frozen=True)
class OrderRecord:
    ts: datetime
    symbol: str
    side: str
    status: str
    reject_kind: str | None = None


@dataclass(frozen=True)
class FillRecord:
    ts: datetime
    symbol: str
    fee: float
    realized_pnl: float
    """Net of fees, as the ledger books it (an opening fill realises its fee)."""


@dataclass(frozen=True)
class AgentDay:
    day: date
    agent: str
    sharpe: float | None
    win_rate: float | None = None
    total_return: float | None = None
    signals: int = 0
    attributed_pnl: float = 0.0
    rank: int | None = None
    top: bool = False
    under: bool = False


@dataclass(frozen=True)
class WeightDecisionRecord:
    ts: datetime
    method: str
    old: dict[str, float]
    new: dict[str, float]
    reason: str
    updated: bool
    live: bool


@dataclass(frozen=True)
class AgentWork:
    ts: datetime
    agent: str
    task: str
    status: str
    duration_ms: float | None


@dataclass(frozen=True)
class MetricRecord:
    ts: datetime
    name: str
    value: float
    tags: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskRecord:
    id: int
    title: str
    status: str
    priority: int
    created_at: datetime


@dataclass(frozen=True)
class DeliveryFailure:
    report_id: int
    at: datetime
    error: str


@dataclass(frozen=True)
class FailedCheck:
    at: datetime
    asset: str
    check: str
    description: str = ""


@dataclass(frozen=True)
class ReportInputs:
    book: str
    quote_currency: str
    timeframe: str
    bar_seconds: float
    window_start: datetime
    window_end: datetime
    generated_at: datetime
    starting_cash: float
    equity: Sequence[EquityPoint]
    """Snapshots from a week before ``window_end`` (plus the last one before, if any), oldest first."""
    positions: Sequence[dict[str, Any]] = ()
    cycles: Sequence[CycleRecord] = ()
    """Cycles of the window."""
    orders: Sequence[OrderRecord] = ()
    """Orders (placed and rejected) of the 24 hours before ``window_end``."""
    fills: Sequence[FillRecord] = ()
    """Fills of the week before ``window_end``."""
    performance: Sequence[AgentDay] = ()
    """agent_performance rows of the last days, any order."""
    weight_changes: Sequence[WeightDecisionRecord] = ()
    """weight_history rows of the week, any order."""
    last_weights_update: datetime | None = None
    current_weights: dict[str, float] = field(default_factory=dict)
    work: Sequence[AgentWork] = ()
    """agent_work_log rows of the window."""
    metrics: Sequence[MetricRecord] = ()
    """system_metrics rows of the window."""
    failed_checks: Sequence[FailedCheck] = ()
    open_tasks: Sequence[TaskRecord] = ()
    delivery_failures: Sequence[DeliveryFailure] = ()
    """Reports whose email has not gone out yet, with the last error."""
    recipients: Sequence[str] = ()
    partition_key: str | None = None
    thresholds: RuleThresholds = field(default_factory=RuleThresholds)
