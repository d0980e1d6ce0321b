"""Models on a migrated SQLite and PostgreSQL database: round-trips, exact money, UTC time, constraints."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session, sessionmaker

from tradepipe.adapters.db.engine import session_factory
from tradepipe.adapters.db.models import (
    AgentPerformanceRow,
    AgentWorkLogRow,
    Base,
    BookRow,
    ControlCommandRow,
    EmailConfigRow,
    FillRow,
    ImprovementSuggestionRow,
    MarketBarRow,
    MlModelRow,
    OrderRow,
    PortfolioSnapshotRow,
    PositionRow,
    ProjectReportRow,
    ProjectTaskRow,
    SignalRow,
    StrategyVariantEventRow,
    StrategyVariantRow,
    SystemMetricRow,
    TradeAttributionRow,
    TradingCycleRow,
    WeightHistoryRow,
)

BAR = datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc)
PLUS_2 = timezone(timedelta(hours=2))
IST = timezone(timedelta(hours=5, minutes=30))
NESTED_JSON = {
    "momentum": 0.3,
    "trend": {"weight": 0.7, "history": [1, 2.5, None, True, "ünïcødé ✓"]},
    "empty": {},
    "list": [],
}


@pytest.fixture
def sessions(migrated_url: str) -> sessionmaker[Session]:
    return session_factory(migrated_url)


def _book(name: str = "main") -> BookRow:
    return BookRow(name=name, starting_cash=Decimal("10000"), quote_currency="USDT")


def _cycle(book: str = "main", bar_ts: datetime = BAR) -> TradingCycleRow:
    return TradingCycleRow(book=book, bar_ts=bar_ts, timeframe="1m", market_source="synthetic", status="running")


def _order(cycle_id: int, client_order_id: str = "main-20240301T1200-BTCUSDT") -> OrderRow:
    return OrderRow(
        client_order_id=client_order_id,
        cycle_id=cycle_id,
        book="main",
        bar_ts=BAR,
        symbol="BTC/USDT",
        side="buy",
        quantity=Decimal("0.5"),
        requested_quantity=Decimal("0.5"),
        status="filled",
        broker="paper",
    )


def _fill(order: OrderRow, trade_id: str = "t-1") -> FillRow:
    return FillRow(
        order_id=order.id,
        client_order_id=order.client_order_id,
        trade_id=trade_id,
        book="main",
        symbol="BTC/USDT",
        side="buy",
        quantity=Decimal("0.5"),
        price=Decimal("60000"),
        fee=Decimal("30"),
        notional=Decimal("30000"),
        ts=BAR,
    )


def _insert_one_of_every_model(session: Session) -> list[Base]:
    """One instance of each model with every column set (nullable ones too), parents before children."""
    book = BookRow(
        name="main",
        starting_cash=Decimal("10000.000000000001"),
        quote_currency="USDT",
        created_at=datetime(2024, 1, 1, 0, 0, 0, 1, tzinfo=timezone.utc),
        halted_day=date(2024, 3, 1),
        halt_reason="daily loss limit reached",
        risk_reset_day=date(2024, 2, 29),
        risk_reset_equity=Decimal("9700.000000000000000000000001"),
    )
    session.add(book)
    session.flush()

    cycle = TradingCycleRow(
        book="main",
        bar_ts=BAR,
        timeframe="1m",
        market_source="synthetic",
        run_id="run-1",
        status="succeeded",
        started_at=datetime(2024, 3, 1, 14, 0, 1, 123456, tzinfo=PLUS_2),  # stored and returned as 12:00:01 UTC
        finished_at=BAR + timedelta(seconds=2),
        weights={"momentum": 0.3, "trend": 0.7},
        weights_source="optimizer",
        skipped={"SOL/USDT": "stale candle"},
        error="none",
        weight_history_id=7,
        weights_published_at=BAR - timedelta(hours=1),
    )
    session.add(cycle)
    session.flush()

    order = OrderRow(
        client_order_id="main-20240301T1200-BTCUSDT",
        cycle_id=cycle.id,
        book="main",
        bar_ts=BAR,
        symbol="BTC/USDT",
        side="buy",
        quantity=Decimal("0.123456789012"),
        requested_quantity=Decimal("0.2"),
        reference_price=Decimal("61234.56"),
        status="partially_filled",
        reason="momentum and trend agree",
        reject_kind="min_notional",
        broker="paper",
        exchange_order_id="x-42",
        contributions={"momentum": 0.4, "trend": 0.6},
        created_at=BAR,
        updated_at=BAR + timedelta(milliseconds=5),
    )
    session.add(order)
    session.flush()

    fill = FillRow(
        order_id=order.id,
        client_order_id=order.client_order_id,
        trade_id="t-1",
        book="main",
        symbol="BTC/USDT",
        side="buy",
        quantity=Decimal("0.123456789012"),
        price=Decimal("61240.1"),
        fee=Decimal("7.560493827160"),
        notional=Decimal("7560.493827160"),
        ts=BAR + timedelta(seconds=1),
        realized_pnl=Decimal("-12.5"),
        closed_quantity=Decimal("0.01"),
        opening_contributions={"momentum": 0.4, "trend": 0.6},
    )
    session.add(fill)
    session.flush()

    rows: list[Base] = [
        book,
        cycle,
        order,
        fill,
        TradeAttributionRow(
            book="main",
            date=date(2024, 3, 1),
            fill_id=fill.id,
            symbol="BTC/USDT",
            agent_name="momentum",
            pnl=Decimal("-5"),
            share=0.4,
            trade_pnl=Decimal("-12.5"),
            realized_at=BAR,
            run_id="run-1",
        ),
        MarketBarRow(
            source="synthetic",
            symbol="BTC/USDT",
            timeframe="1m",
            ts=BAR,
            open=61000.5,
            high=61500.25,
            low=60900.125,
            close=61234.5625,
            volume=12.3456789,
        ),
        SignalRow(
            cycle_id=cycle.id,
            book="main",
            bar_ts=BAR,
            symbol="BTC/USDT",
            agent_name="momentum",
            value=-0.75,
            confidence=0.9,
            abstained=True,
            reason="RSI 81",
            close=61234.5625,
        ),
        PositionRow(
            book="main",
            symbol="BTC/USDT",
            quantity=Decimal("0.113456789012"),
            average_price=Decimal("61240.1"),
            opening_contributions={"momentum": 0.4, "trend": 0.6},
            opened_at=BAR,
            updated_at=BAR + timedelta(seconds=3),
        ),
        PortfolioSnapshotRow(
            book="main",
            bar_ts=BAR,
            cycle_id=cycle.id,
            cash=Decimal("2439.506172840"),
            positions_value=Decimal("7560.493827160"),
            equity=Decimal("10000"),
            realized_pnl=Decimal("-12.5"),
            unrealized_pnl=Decimal("0.000000000001"),
            fees_paid=Decimal("7.56"),
            day_start_equity=Decimal("10000"),
            positions={"BTC/USDT": {"quantity": "0.113456789012", "mark": 61234.5625}},
            created_at=BAR,
        ),
        AgentPerformanceRow(
            book="backtest-1",
            date=date(2024, 3, 1),
            agent_name="momentum",
            window_days=30,
            sharpe_ratio=1.25,
            sortino_ratio=1.5,
            volatility=0.02,
            total_return=0.1,
            max_drawdown=-0.05,
            calmar_ratio=2.0,
            win_rate=0.55,
            profit_factor=1.3,
            avg_win=12.5,
            avg_loss=-8.25,
            max_consecutive_wins=4,
            max_consecutive_losses=3,
            total_signals=120,
            total_trades=14,
            attributed_pnl=Decimal("123.456789"),
            trade_win_rate=0.5,
            trade_profit_factor=1.1,
            rank=1,
            is_top_performer=True,
            is_underperformer=True,
            null_reasons={"sortino_ratio": None, "calmar_ratio": "no drawdown"},
            run_id="run-1",
            computed_at=BAR,
        ),
        WeightHistoryRow(
            timestamp=BAR,
            book="backtest-1",
            partition_date=date(2024, 3, 1),
            agent_weights={"momentum": 0.3, "trend": 0.7},
            old_weights={"momentum": 0.5, "trend": 0.5},
            new_weights={"momentum": 0.3, "trend": 0.7},
            method="max_sharpe",
            window_days=30,
            window_start=BAR - timedelta(days=30),
            window_end=BAR,
            expected_sharpe=1.1,
            sharpe_improvement=0.2,
            return_improvement=0.01,
            weights_updated=True,
            reason="sharpe improved",
            is_replay=True,
            is_live=True,
            promoted_at=BAR + timedelta(minutes=1),
            run_id="run-1",
        ),
        StrategyVariantRow(
            name="momentum-fast",
            description="shorter lookback",
            parameters={"lookback": 7, "threshold": 0.25},
            status="testing",
            created_at=BAR,
            family="tsmom",
            origin="mutation",
            generation=3,
            metrics={"sharpe": 1.5, "trades": 12},
            deflated_sharpe=0.96,
            pbo=0.25,
            trials=120,
            reason="deflated Sharpe 0.960 over 120 trials",
            updated_at=BAR,
        ),
        MlModelRow(
            name="sentiment",
            version="1.2.0",
            framework="sklearn",
            metrics={"auc": 0.71},
            artifact_path="/models/sentiment-1.2.0.pkl",
            created_at=BAR,
            kind="logistic",
            features=["ret_1", "ret_24"],
            hyperparameters={"C": 0.1},
            train_start=BAR - timedelta(days=365),
            train_end=BAR,
            partition_key="2024-03-01",
            sha256="ab" * 32,
            status="promoted",
            reason="trained on bars closed before 2024-03-01",
        ),
        ProjectTaskRow(
            title="Add Kraken",
            description="replay from Kraken candles",
            status="done",
            priority=1,
            created_at=BAR,
            updated_at=BAR + timedelta(days=1),
        ),
        AgentWorkLogRow(
            timestamp=BAR,
            agent_name="optimizer",
            task="optimise",
            status="ok",
            details=NESTED_JSON,
            duration_ms=12.75,
            cycle_id=cycle.id,
            run_id="run-1",
        ),
        SystemMetricRow(
            timestamp=BAR,
            metric_name="cycle.duration_ms",
            value=812.5,
            tags={"book": "main", "symbols": ["BTC/USDT", "ETH/USDT"]},
        ),
        ProjectReportRow(
            generated_at=BAR,
            period_start=BAR - timedelta(days=7),
            period_end=BAR,
            summary="a good week",
            recommendations=["raise trend weight", {"agent": "sentiment", "action": "retrain"}],
            content="# Weekly report",
            delivered_to=["ops@example.com"],
            run_id="run-1",
            partition_key="2024-03-01-10:00",
            html="<h1>Weekly report</h1>",
            files={"json": "/reports/main.json", "html": "/reports/main.html"},
            delivery={"status": "failed", "attempts": [{"status": "failed", "error": "refused"}]},
        ),
        ImprovementSuggestionRow(
            created_at=BAR,
            source="weekly_report",
            agent_name="sentiment",
            suggestion="retrain on recent headlines",
            priority=1,
            status="accepted",
            rule_key="agent_low_sharpe:sentiment",
            evidence={"sharpe_by_day": {"2024-02-29": 0.1}},
            times_seen=4,
            streak=3,
            last_seen_at=BAR,
            updated_at=BAR,
        ),
        EmailConfigRow(
            smtp_host="smtp.example.com",
            smtp_port=2525,
            smtp_user="reports",
            use_starttls=False,
            sender="tradepipe@example.com",
            recipients=["ops@example.com", "quant@example.org"],
            enabled=False,
            updated_at=BAR,
        ),
    ]
    # The suggestion points at the sample's project task, which needs its id first.
    task = next(row for row in rows if isinstance(row, ProjectTaskRow))
    session.add(task)
    session.flush()
    next(row for row in rows if isinstance(row, ImprovementSuggestionRow)).task_id = task.id
    session.add_all(rows[4:])
    # A variant event points at the sample's variant, which needs its id first.
    session.flush()
    variant = next(row for row in rows if isinstance(row, StrategyVariantRow))
    event = StrategyVariantEventRow(variant_id=variant.id, action="promote", status="promoted", reason="passes", actor="cli", at=BAR)
    # A trader's command points at the cycle that applied it.
    cycle = next(row for row in rows if isinstance(row, TradingCycleRow))
    command = ControlCommandRow(
        book="main", action="forceexit", symbol="BTC/USDT", requested_by="ops", source="cli", reason="exchange outage",
        status="applied", outcome="closed BTC/USDT", requested_at=BAR, applied_at=BAR, cycle_id=cycle.id,
    )
    session.add_all([event, command])
    session.commit()
    return [*rows, event, command]


def _column_values(row: Base) -> dict[str, Any]:
    return {attr.key: getattr(row, attr.key) for attr in sa.inspect(type(row)).column_attrs}


def test_every_model_round_trips_on_both_backends(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        written = _insert_one_of_every_model(session)
        expected = {(type(row), sa.inspect(row).identity): _column_values(row) for row in written}

    # The sample covers every table, and sets every column, so a new column cannot go untested.
    assert {model.__table__.name for model, _ in expected} == set(Base.metadata.tables)
    for (model, _), values in expected.items():
        assert None not in values.values(), f"{model.__name__}: set every column in the sample"

    with sessions() as session:
        for (model, identity), values in expected.items():
            row = session.get(model, identity)
            assert row is not None, model.__name__
            for column, value in values.items():
                read = getattr(row, column)
                assert read == value, f"{model.__name__}.{column}: wrote {value!r}, read {read!r}"
                assert type(read) is type(value) or isinstance(value, datetime), f"{model.__name__}.{column}"
                if isinstance(read, datetime):
                    assert read.utcoffset() == timedelta(0), f"{model.__name__}.{column} is not UTC"


def test_defaults_fill_timestamps_and_json(sessions: sessionmaker[Session]) -> None:
    before = datetime.now(timezone.utc)
    with sessions() as session:
        session.add(_book())
        session.flush()
        session.add(_cycle())
        session.commit()

    with sessions() as session:
        book = session.get(BookRow, "main")
        cycle = session.scalars(sa.select(TradingCycleRow)).one()
    assert book is not None
    assert book.created_at.tzinfo is not None and book.created_at.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= book.created_at <= datetime.now(timezone.utc)
    assert cycle.weights == {} and cycle.skipped == {}
    assert cycle.finished_at is None and cycle.error is None


# --- Money -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "amount",
    [
        Decimal("0.000000000001"),
        Decimal("12345678901234567890.123456789012"),
        Decimal("-98765432109876543210.000000000009"),
        Decimal("0.1"),
        Decimal("0"),
        Decimal("1E+20"),
    ],
    ids=str,
)
def test_money_round_trips_exactly(sessions: sessionmaker[Session], amount: Decimal) -> None:
    with sessions() as session:
        session.add(BookRow(name="main", starting_cash=amount, quote_currency="USDT"))
        session.commit()

    with sessions() as session:
        read = session.get(BookRow, "main").starting_cash  # type: ignore[union-attr]
    assert isinstance(read, Decimal)
    assert read == amount


def test_money_sums_exactly_where_floats_would_not(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        session.add(_book())
        session.flush()
        session.add(_cycle())
        session.flush()
        cycle_id = session.scalars(sa.select(TradingCycleRow.id)).one()
        for i, fee in enumerate(["0.1", "0.2"]):
            order = _order(cycle_id, client_order_id=f"o-{i}")
            session.add(order)
            session.flush()
            fill = _fill(order)
            fill.fee = Decimal(fee)
            session.add(fill)
        session.commit()

    with sessions() as session:
        fees = session.scalars(sa.select(FillRow.fee)).all()
    assert sum(fees) == Decimal("0.3")


def test_money_accepts_int_and_str(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        session.add(BookRow(name="a", starting_cash=10000, quote_currency="USDT"))  # type: ignore[arg-type]
        session.add(BookRow(name="b", starting_cash="0.000000000001", quote_currency="USDT"))  # type: ignore[arg-type]
        session.commit()

    with sessions() as session:
        assert session.get(BookRow, "a").starting_cash == Decimal(10000)  # type: ignore[union-attr]
        assert session.get(BookRow, "b").starting_cash == Decimal("0.000000000001")  # type: ignore[union-attr]


@pytest.mark.parametrize("amount", [Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity"), Decimal("sNaN")], ids=str)
def test_money_refuses_non_finite_decimals(sessions: sessionmaker[Session], amount: Decimal) -> None:
    with sessions() as session:
        session.add(BookRow(name="main", starting_cash=amount, quote_currency="USDT"))
        with pytest.raises(StatementError, match="money must be finite"):
            session.commit()

    with sessions() as session:
        assert session.get(BookRow, "main") is None


def test_a_zero_money_value_compares_equal_to_zero_in_sql(
    sessions: sessionmaker[Session], migrated_url: str
) -> None:
    """``tradepipe status`` lists open positions with ``quantity != 0``; a closed one must not show."""
    with sessions() as session:
        # What a ledger computes when a position is closed: Decimal("0.5") - Decimal("0.5") == Decimal("0.0").
        closed = Decimal("0.5") - Decimal("0.5")
        session.add(PositionRow(book="main", symbol="BTC/USDT", quantity=closed, average_price=Decimal("1")))
        session.commit()

    with sessions() as session:
        open_symbols = session.scalars(sa.select(PositionRow.symbol).where(PositionRow.quantity != 0)).all()
    assert open_symbols == []


# --- UtcDateTime -------------------------------------------------------------------------------


def test_timestamps_come_back_as_utc_for_any_offset_written(sessions: sessionmaker[Session]) -> None:
    written = datetime(2024, 3, 1, 17, 30, 0, 250000, tzinfo=IST)  # 12:00:00.25 UTC
    with sessions() as session:
        session.add(MarketBarRow(source="s", symbol="BTC/USDT", timeframe="1m", ts=written, open=1, high=1, low=1, close=1, volume=1))
        session.commit()

    with sessions() as session:
        read = session.scalars(sa.select(MarketBarRow.ts)).one()
        # Filtering with the same instant in another zone finds the row on both backends.
        found = session.scalars(sa.select(MarketBarRow).where(MarketBarRow.ts == written.astimezone(PLUS_2))).all()
    assert read == written
    assert read.tzinfo == timezone.utc
    assert read == datetime(2024, 3, 1, 12, 0, 0, 250000, tzinfo=timezone.utc)
    assert len(found) == 1


def test_timestamps_order_chronologically_across_offsets(sessions: sessionmaker[Session]) -> None:
    instants = [BAR + timedelta(hours=h) for h in (0, 1, 2)]
    # Written newest first, each in a different zone, so wall-clock order differs from real order.
    zones = [timezone(timedelta(hours=-10)), PLUS_2, IST]
    with sessions() as session:
        for ts, zone in zip(reversed(instants), zones):
            session.add(
                MarketBarRow(source="s", symbol="BTC/USDT", timeframe="1h", ts=ts.astimezone(zone), open=1, high=1, low=1, close=1, volume=1)
            )
        session.commit()

    with sessions() as session:
        assert session.scalars(sa.select(MarketBarRow.ts).order_by(MarketBarRow.ts)).all() == instants


def test_naive_datetimes_are_refused(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        session.add(_book())
        session.flush()
        session.add(_cycle(bar_ts=datetime(2024, 3, 1, 12, 0)))
        with pytest.raises(StatementError, match="naive datetime"):
            session.commit()

    with sessions() as session:
        assert session.scalars(sa.select(TradingCycleRow)).all() == []


# --- JSON --------------------------------------------------------------------------------------


def test_json_columns_round_trip_nested_values(sessions: sessionmaker[Session]) -> None:
    recommendations = [NESTED_JSON, "plain", 3, 2.5, None, [[]]]
    with sessions() as session:
        session.add(SystemMetricRow(metric_name="m", value=1.0, tags=NESTED_JSON))
        session.add(ProjectReportRow(recommendations=recommendations, delivered_to=[]))
        session.commit()

    with sessions() as session:
        assert session.scalars(sa.select(SystemMetricRow.tags)).one() == NESTED_JSON
        report = session.scalars(sa.select(ProjectReportRow)).one()
    assert report.recommendations == recommendations
    assert report.delivered_to == []


# --- constraints -------------------------------------------------------------------------------


def test_one_trading_cycle_per_book_and_bar(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        session.add(_book())
        session.flush()
        session.add(_cycle())
        session.commit()

    with sessions() as session:
        session.add(_cycle())
        with pytest.raises(IntegrityError):
            session.commit()

    # The same instant written in another zone is the same bar.
    with sessions() as session:
        session.add(_cycle(bar_ts=BAR.astimezone(PLUS_2)))
        with pytest.raises(IntegrityError):
            session.commit()

    # Another book or another bar is fine.
    with sessions() as session:
        session.add(_book("backtest-1"))
        session.flush()
        session.add(_cycle(book="backtest-1"))
        session.add(_cycle(bar_ts=BAR + timedelta(minutes=1)))
        session.commit()
        assert session.scalar(sa.select(sa.func.count()).select_from(TradingCycleRow)) == 3


def test_client_order_id_is_unique(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        session.add(_book())
        session.flush()
        session.add(_cycle())
        session.flush()
        cycle_id = session.scalars(sa.select(TradingCycleRow.id)).one()
        session.add(_order(cycle_id, "dup"))
        session.commit()

    with sessions() as session:
        session.add(_order(cycle_id, "dup"))
        with pytest.raises(IntegrityError):
            session.commit()


def test_a_trade_is_recorded_once_per_order(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        session.add(_book())
        session.flush()
        session.add(_cycle())
        session.flush()
        order = _order(session.scalars(sa.select(TradingCycleRow.id)).one())
        session.add(order)
        session.flush()
        session.add(_fill(order, trade_id="t-1"))
        session.commit()

    with sessions() as session:
        session.add(_fill(order, trade_id="t-1"))
        with pytest.raises(IntegrityError):
            session.commit()


def test_foreign_keys_are_enforced_on_both_backends(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        session.add(_cycle(book="no-such-book"))
        with pytest.raises(IntegrityError):
            session.commit()

    with sessions() as session:
        session.add(_book())
        session.flush()
        session.add(_cycle())
        session.flush()
        session.add(_order(cycle_id=10_000))
        with pytest.raises(IntegrityError):
            session.commit()


# --- no secrets in the schema ------------------------------------------------------------------

_SECRET_NAME = re.compile(r"passw|secret|api_?key|token|credential", re.IGNORECASE)


def test_no_column_is_named_like_a_secret() -> None:
    columns = [f"{table.name}.{column.name}" for table in Base.metadata.tables.values() for column in table.columns]

    assert len(columns) > 100  # the introspection really saw the schema
    assert [name for name in columns if _SECRET_NAME.search(name)] == []
