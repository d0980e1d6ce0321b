"""SQLAlchemy 2 models: the trading ledger and the analytics tables the old system had.

Money and quantities are exact (``Money``); analytics are floats. No column holds a secret:
SMTP and exchange credentials come from the environment only.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, Date, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tradepipe.adapters.db.types import Money, UtcDateTime


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {Decimal: Money(), datetime: UtcDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


# --- ledger -------------------------------------------------------------------------------


class BookRow(Base):
    """A separate set of accounts: ``main`` for the live loop, one per backtest."""

    __tablename__ = "books"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    starting_cash: Mapped[Decimal]
    quote_currency: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    halted_day: Mapped[date | None] = mapped_column(Date)
    halt_reason: Mapped[str | None] = mapped_column(Text)
    # `tradepipe risk reset`: the day's loss is measured from this equity for the rest of that day.
    risk_reset_day: Mapped[date | None] = mapped_column(Date)
    risk_reset_equity: Mapped[Decimal | None]


class MarketBarRow(Base):
    __tablename__ = "market_bars"
    __table_args__ = (
        UniqueConstraint("source", "symbol", "timeframe", "ts", name="uq_market_bars_key"),
        Index("ix_market_bars_symbol_ts", "symbol", "ts"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    symbol: Mapped[str] = mapped_column(String(32))
    timeframe: Mapped[str] = mapped_column(String(8))
    ts: Mapped[datetime]
    open: Mapped[float] = mapped_column(Float)
    high: Mapped[float] = mapped_column(Float)
    low: Mapped[float] = mapped_column(Float)
    close: Mapped[float] = mapped_column(Float)
    volume: Mapped[float] = mapped_column(Float)


class TradingCycleRow(Base):
    """One cycle per closed bar and book; the unique key is what stops a bar being traded twice."""

    __tablename__ = "trading_cycles"
    __table_args__ = (
        UniqueConstraint("book", "bar_ts", name="uq_trading_cycles_book_bar"),
        Index("ix_trading_cycles_started_at", "started_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    book: Mapped[str] = mapped_column(ForeignKey("books.name"))
    bar_ts: Mapped[datetime]
    timeframe: Mapped[str] = mapped_column(String(8))
    market_source: Mapped[str] = mapped_column(String(32))
    run_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    weights: Mapped[dict[str, Any]] = mapped_column(default=dict)
    weights_source: Mapped[str | None] = mapped_column(String(32))
    skipped: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    # which recorded weight set the cycle traded with (None: the static defaults)
    weight_history_id: Mapped[int | None] = mapped_column(Integer)
    weights_published_at: Mapped[datetime | None]


class ControlCommandRow(Base):
    """A trader's command to a book (pause/resume entries, force-exit, reload weights): who asked and why.

    Written ``pending`` by the CLI, the Dagster job or the HTTP endpoint; only the trading cycle applies
    it, inside its book-locked transaction (one writer), and records the outcome and the cycle.
    """

    __tablename__ = "control_commands"
    __table_args__ = (Index("ix_control_commands_book_status", "book", "status"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    book: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    symbol: Mapped[str | None] = mapped_column(String(32))
    requested_by: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    outcome: Mapped[str] = mapped_column(Text, default="")
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    applied_at: Mapped[datetime | None]
    cycle_id: Mapped[int | None] = mapped_column(ForeignKey("trading_cycles.id"))


class SignalRow(Base):
    __tablename__ = "signals"
    __table_args__ = (
        UniqueConstraint("book", "bar_ts", "symbol", "agent_name", name="uq_signals_key"),
        Index("ix_signals_agent_ts", "agent_name", "bar_ts"),
        Index("ix_signals_symbol_ts", "symbol", "bar_ts"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("trading_cycles.id"))
    book: Mapped[str] = mapped_column(String(64))
    bar_ts: Mapped[datetime]
    symbol: Mapped[str] = mapped_column(String(32))
    agent_name: Mapped[str] = mapped_column(String(64))
    value: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)
    abstained: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str] = mapped_column(Text, default="")
    close: Mapped[float | None] = mapped_column(Float)


class OrderRow(Base):
    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_book_status", "book", "status"),
        Index("ix_orders_symbol_ts", "symbol", "bar_ts"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_order_id: Mapped[str] = mapped_column(String(64), unique=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("trading_cycles.id"))
    book: Mapped[str] = mapped_column(String(64))
    bar_ts: Mapped[datetime]
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(4))
    quantity: Mapped[Decimal]
    requested_quantity: Mapped[Decimal]
    reference_price: Mapped[Decimal | None]
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    reject_kind: Mapped[str | None] = mapped_column(String(32))
    broker: Mapped[str] = mapped_column(String(16))
    exchange_order_id: Mapped[str | None] = mapped_column(String(64))
    contributions: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class FillRow(Base):
    __tablename__ = "fills"
    __table_args__ = (
        UniqueConstraint("client_order_id", "trade_id", name="uq_fills_order_trade"),
        Index("ix_fills_book_ts", "book", "ts"),
        Index("ix_fills_symbol_ts", "symbol", "ts"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    client_order_id: Mapped[str] = mapped_column(String(64))
    trade_id: Mapped[str] = mapped_column(String(64))
    book: Mapped[str] = mapped_column(String(64))
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(4))
    quantity: Mapped[Decimal]
    price: Mapped[Decimal]
    fee: Mapped[Decimal]
    notional: Mapped[Decimal]
    ts: Mapped[datetime]
    realized_pnl: Mapped[Decimal] = mapped_column(default=Decimal(0))
    closed_quantity: Mapped[Decimal] = mapped_column(default=Decimal(0))
    opening_contributions: Mapped[dict[str, Any]] = mapped_column(default=dict)


class PositionRow(Base):
    __tablename__ = "positions"
    book: Mapped[str] = mapped_column(String(64), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    quantity: Mapped[Decimal]
    average_price: Mapped[Decimal]
    opening_contributions: Mapped[dict[str, Any]] = mapped_column(default=dict)
    opened_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PortfolioSnapshotRow(Base):
    __tablename__ = "portfolio_snapshots"
    __table_args__ = (UniqueConstraint("book", "bar_ts", name="uq_portfolio_snapshots_book_bar"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    book: Mapped[str] = mapped_column(String(64))
    bar_ts: Mapped[datetime]
    cycle_id: Mapped[int | None] = mapped_column(ForeignKey("trading_cycles.id"))
    cash: Mapped[Decimal]
    positions_value: Mapped[Decimal]
    equity: Mapped[Decimal]
    realized_pnl: Mapped[Decimal]
    unrealized_pnl: Mapped[Decimal]
    fees_paid: Mapped[Decimal]
    day_start_equity: Mapped[Decimal]
    positions: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- analytics tables of the old system (names and monitored columns kept) -------------------


class AgentPerformanceRow(Base):
    __tablename__ = "agent_performance"
    __table_args__ = (
        UniqueConstraint("book", "date", "agent_name", name="uq_agent_performance_key"),
        Index("ix_agent_performance_agent_date", "agent_name", "date"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    book: Mapped[str] = mapped_column(String(64), default="main")
    date: Mapped[date] = mapped_column(Date)
    agent_name: Mapped[str] = mapped_column(String(64))
    window_days: Mapped[int] = mapped_column(Integer)
    sharpe_ratio: Mapped[float | None] = mapped_column(Float)
    sortino_ratio: Mapped[float | None] = mapped_column(Float)
    volatility: Mapped[float | None] = mapped_column(Float)
    total_return: Mapped[float | None] = mapped_column(Float)
    max_drawdown: Mapped[float | None] = mapped_column(Float)
    calmar_ratio: Mapped[float | None] = mapped_column(Float)
    win_rate: Mapped[float | None] = mapped_column(Float)
    profit_factor: Mapped[float | None] = mapped_column(Float)
    avg_win: Mapped[float | None] = mapped_column(Float)
    avg_loss: Mapped[float | None] = mapped_column(Float)
    max_consecutive_wins: Mapped[int | None] = mapped_column(Integer)
    max_consecutive_losses: Mapped[int | None] = mapped_column(Integer)
    total_signals: Mapped[int] = mapped_column(Integer, default=0)
    total_trades: Mapped[int] = mapped_column(Integer, default=0)
    attributed_pnl: Mapped[Decimal] = mapped_column(default=Decimal(0))
    trade_win_rate: Mapped[float | None] = mapped_column(Float)
    trade_profit_factor: Mapped[float | None] = mapped_column(Float)
    rank: Mapped[int | None] = mapped_column(Integer)
    is_top_performer: Mapped[bool] = mapped_column(Boolean, default=False)
    is_underperformer: Mapped[bool] = mapped_column(Boolean, default=False)
    null_reasons: Mapped[dict[str, Any]] = mapped_column(default=dict)
    run_id: Mapped[str | None] = mapped_column(String(64))
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)


class WeightHistoryRow(Base):
    __tablename__ = "weight_history"
    __table_args__ = (
        Index("ix_weight_history_timestamp", "timestamp"),
        Index("ix_weight_history_partition", "book", "partition_date"),
        # One live weight set per book, whatever races: the database refuses a second.
        Index("uq_weight_history_one_live", "book", unique=True, sqlite_where=text("is_live"), postgresql_where=text("is_live")),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    timestamp: Mapped[datetime] = mapped_column(default=utcnow)
    book: Mapped[str] = mapped_column(String(64), default="main")
    partition_date: Mapped[date | None] = mapped_column(Date)
    agent_weights: Mapped[dict[str, Any]] = mapped_column(default=dict)
    old_weights: Mapped[dict[str, Any]] = mapped_column(default=dict)
    new_weights: Mapped[dict[str, Any]] = mapped_column(default=dict)
    method: Mapped[str] = mapped_column(String(32))
    window_days: Mapped[int | None] = mapped_column(Integer)
    window_start: Mapped[datetime | None]
    window_end: Mapped[datetime | None]
    expected_sharpe: Mapped[float | None] = mapped_column(Float)
    sharpe_improvement: Mapped[float | None] = mapped_column(Float)
    return_improvement: Mapped[float | None] = mapped_column(Float)
    weights_updated: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str] = mapped_column(Text, default="")
    is_replay: Mapped[bool] = mapped_column(Boolean, default=False)
    is_live: Mapped[bool] = mapped_column(Boolean, default=False)
    promoted_at: Mapped[datetime | None]
    run_id: Mapped[str | None] = mapped_column(String(64))


class StrategyVariantRow(Base):
    __tablename__ = "strategy_variants"
    __table_args__ = (UniqueConstraint("name", name="uq_strategy_variants_name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(Text, default="")
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(32), default="proposed")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The research loop's columns: a variant is a family plus ``parameters``, judged by rule.
    family: Mapped[str | None] = mapped_column(String(64))
    origin: Mapped[str | None] = mapped_column(String(16))  # grid | random | mutation | manual
    generation: Mapped[int | None] = mapped_column(Integer)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    deflated_sharpe: Mapped[float | None] = mapped_column(Float)
    pbo: Mapped[float | None] = mapped_column(Float)
    trials: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime | None] = mapped_column(default=utcnow, onupdate=utcnow)


class StrategyVariantEventRow(Base):
    """Every change of a variant's status, with its reason and who made it (the loop or a person)."""

    __tablename__ = "strategy_variant_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    variant_id: Mapped[int] = mapped_column(ForeignKey("strategy_variants.id"), index=True)
    action: Mapped[str] = mapped_column(String(16))  # evaluate | promote | retire | reject
    status: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(64), default="loop")
    at: Mapped[datetime] = mapped_column(default=utcnow)


class MlModelRow(Base):
    __tablename__ = "ml_models"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(String(32))
    framework: Mapped[str] = mapped_column(String(64), default="")
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    artifact_path: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str | None] = mapped_column(String(32))  # logistic | hgb
    features: Mapped[list[Any]] = mapped_column(default=list)
    hyperparameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    train_start: Mapped[datetime | None]
    train_end: Mapped[datetime | None]  # every label bar closed by then
    partition_key: Mapped[str | None] = mapped_column(String(32))
    sha256: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="trained")  # trained | promoted | failed | retired
    reason: Mapped[str] = mapped_column(Text, default="")


class ProjectTaskRow(Base):
    __tablename__ = "project_tasks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(256))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(32), default="open")
    priority: Mapped[int] = mapped_column(Integer, default=3)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AgentWorkLogRow(Base):
    __tablename__ = "agent_work_log"
    __table_args__ = (Index("ix_agent_work_log_agent_ts", "agent_name", "timestamp"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    timestamp: Mapped[datetime] = mapped_column(default=utcnow)
    agent_name: Mapped[str] = mapped_column(String(64))
    task: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    duration_ms: Mapped[float | None] = mapped_column(Float)
    cycle_id: Mapped[int | None] = mapped_column(ForeignKey("trading_cycles.id"))
    run_id: Mapped[str | None] = mapped_column(String(64))


class SystemMetricRow(Base):
    __tablename__ = "system_metrics"
    __table_args__ = (Index("ix_system_metrics_name_ts", "metric_name", "timestamp"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    timestamp: Mapped[datetime] = mapped_column(default=utcnow)
    metric_name: Mapped[str] = mapped_column(String(128))
    value: Mapped[float] = mapped_column(Float)
    tags: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ProjectReportRow(Base):
    __tablename__ = "project_reports"
    __table_args__ = (Index("ix_project_reports_generated_at", "generated_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generated_at: Mapped[datetime] = mapped_column(default=utcnow)
    period_start: Mapped[datetime | None]
    period_end: Mapped[datetime | None]
    summary: Mapped[str] = mapped_column(Text, default="")
    recommendations: Mapped[list[Any]] = mapped_column(default=list)
    content: Mapped[str] = mapped_column(Text, default="")
    delivered_to: Mapped[list[Any]] = mapped_column(default=list)
    run_id: Mapped[str | None] = mapped_column(String(64))
    # the 2-hour partition, the HTML rendering (``content`` is the JSON document), where the
    # files are, and the email's state: {"status": sent|failed|not_configured|preview, "attempts": [...]}.
    partition_key: Mapped[str | None] = mapped_column(String(32), index=True)
    html: Mapped[str] = mapped_column(Text, default="")
    files: Mapped[dict[str, Any]] = mapped_column(default=dict)
    delivery: Mapped[dict[str, Any]] = mapped_column(default=dict)


class TradeAttributionRow(Base):
    __tablename__ = "trade_attribution"
    __table_args__ = (
        UniqueConstraint("fill_id", "agent_name", name="uq_trade_attribution_fill_agent"),
        Index("ix_trade_attribution_book_date", "book", "date"),
        Index("ix_trade_attribution_agent_date", "agent_name", "date"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    book: Mapped[str] = mapped_column(String(64))
    date: Mapped[date] = mapped_column(Date)
    fill_id: Mapped[int] = mapped_column(ForeignKey("fills.id"))
    symbol: Mapped[str] = mapped_column(String(32))
    agent_name: Mapped[str] = mapped_column(String(64))
    pnl: Mapped[Decimal]
    share: Mapped[float] = mapped_column(Float)
    trade_pnl: Mapped[Decimal]
    realized_at: Mapped[datetime]
    run_id: Mapped[str | None] = mapped_column(String(64))


class ImprovementSuggestionRow(Base):
    __tablename__ = "improvement_suggestions"
    __table_args__ = (UniqueConstraint("rule_key", name="uq_improvement_suggestions_rule_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    source: Mapped[str] = mapped_column(String(64))
    agent_name: Mapped[str | None] = mapped_column(String(64))
    suggestion: Mapped[str] = mapped_column(Text)
    priority: Mapped[int] = mapped_column(Integer, default=3)
    status: Mapped[str] = mapped_column(String(32), default="open")
    # one row per recommendation key (rule:subject), updated each time a report sees it;
    # ``streak`` counts consecutive reports, and a long enough streak opens ``task_id``.
    rule_key: Mapped[str | None] = mapped_column(String(200))
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    times_seen: Mapped[int] = mapped_column(Integer, default=1)
    streak: Mapped[int] = mapped_column(Integer, default=1)
    last_seen_at: Mapped[datetime | None]
    updated_at: Mapped[datetime | None]
    task_id: Mapped[int | None] = mapped_column(ForeignKey("project_tasks.id", name="fk_improvement_suggestions_task_id"))


class EmailConfigRow(Base):
    """Where reports go. The SMTP password is deliberately absent: it comes from TRADEPIPE_SMTP_PASSWORD."""

    __tablename__ = "email_config"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    smtp_host: Mapped[str] = mapped_column(String(255))
    smtp_port: Mapped[int] = mapped_column(Integer, default=587)
    smtp_user: Mapped[str | None] = mapped_column(String(255))
    use_starttls: Mapped[bool] = mapped_column(Boolean, default=True)
    sender: Mapped[str | None] = mapped_column(String(255))
    recipients: Mapped[list[Any]] = mapped_column(default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
