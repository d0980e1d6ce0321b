"""``tradepipe status`` reads the ledger over a plain DB-API connection; the ORM's rows give the same report.

One real ledger (SQLite and PostgreSQL) with the same rows: two books, a position that is closed (quantity 0),
a live and a retired weight set, a failed last cycle with skipped symbols, and money with more decimals than a
float keeps. Both readers must return equal records and the same ``status --json``; a few figures are checked
against the rows written here.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal as D

import pytest
from click.testing import CliRunner

from tests.integration.test_trader_views import DAY2, HOUR, at, build_hand_ledger, cli
from tradepipe.adapters.db.connection import LedgerUnavailable, read_only_ledger
from tradepipe.adapters.db.engine import session_factory
from tradepipe.adapters.db.ledger import latest_cycle, latest_snapshot, ledger_counts, open_positions
from tradepipe.adapters.db.models import PositionRow, SignalRow, TradingCycleRow, WeightHistoryRow
from tradepipe.adapters.db.status_reader import StatusRows, read_status_rows
from tradepipe.adapters.db.weights import live_weights
from tradepipe.cli.main import main
from tradepipe.trading.status import portfolio_status

PRECISE = D("0.123456789012345678901234")  # 24 decimals: the ledger's money scale, beyond a float


def build_status_ledger(url: str) -> None:
    build_hand_ledger(url)
    build_hand_ledger(url, book="other")  # its rows must not be counted for "main"
    with session_factory(url).begin() as session:
        session.add_all([
            PositionRow(book="main", symbol="ETH/USDT", quantity=D("1.50"), average_price=D("40") + PRECISE, opened_at=at(DAY2)),
            PositionRow(book="main", symbol="BTC/USDT", quantity=D("-0.25"), average_price=D("97.5"), opened_at=at(DAY2)),
            PositionRow(book="main", symbol="SOL/USDT", quantity=D(0), average_price=D("0")),  # closed: not shown
            PositionRow(book="other", symbol="ADA/USDT", quantity=D("7"), average_price=D("1")),
        ])
        cycle = TradingCycleRow(
            book="main", bar_ts=at(DAY2 + 5 * HOUR), timeframe="1h", market_source="replay", status="failed",
            finished_at=datetime(2025, 12, 3, 5, 0, 1, 250000, tzinfo=timezone.utc), weights={"momentum": 0.7, "trend": 0.3},
            weights_source="published", skipped={"SOL/USDT": "no bar"}, error="exchange timed out",
        )
        session.add(cycle)
        session.flush()
        session.add(SignalRow(cycle_id=cycle.id, book="main", bar_ts=cycle.bar_ts, symbol="BTC/USDT", agent_name="momentum", value=0.5, confidence=1.0))
        for n, live in enumerate((False, True)):
            session.add(WeightHistoryRow(
                book="main", method="hedge" if live else "max_sharpe", new_weights={"momentum": 0.7, "trend": 0.3} if live else {"trend": 1.0},
                is_live=live, promoted_at=at(DAY2 + n * HOUR),
            ))


def orm_rows(url: str, book: str) -> StatusRows:
    with session_factory(url)() as session:
        return StatusRows(latest_snapshot(session, book), latest_cycle(session, book), open_positions(session, book),  # type: ignore[arg-type]
                          live_weights(session, book), ledger_counts(session, book))


def test_the_plain_reader_returns_the_orms_rows_and_the_same_report(migrated_url: str) -> None:
    build_status_ledger(migrated_url)
    expected = orm_rows(migrated_url, "main")

    with read_only_ledger(migrated_url) as connection:
        rows = read_status_rows(connection, "main")

    fields = {
        "snapshot": ("bar_ts", "cash", "positions_value", "equity", "realized_pnl", "unrealized_pnl", "fees_paid", "day_start_equity", "positions"),
        "cycle": ("bar_ts", "status", "market_source", "timeframe", "finished_at", "weights", "weights_source", "skipped", "error"),
        "live_weights": ("id", "method", "promoted_at", "new_weights"),
    }
    for part, names in fields.items():
        for name in names:
            mine, theirs = getattr(getattr(rows, part), name), getattr(getattr(expected, part), name)
            assert (mine, type(mine)) == (theirs, type(theirs)), (part, name)
    assert [(p.symbol, p.quantity, p.average_price) for p in rows.positions] == [
        (p.symbol, p.quantity, p.average_price) for p in expected.positions
    ]
    assert rows.counts == expected.counts
    assert portfolio_status(rows, "main") == portfolio_status(expected, "main")

    # against the rows written above, not against the other reader
    assert [(p.symbol, p.quantity, p.average_price) for p in rows.positions] == [
        ("BTC/USDT", D("-0.25"), D("97.5")), ("ETH/USDT", D("1.5"), D("40") + PRECISE),
    ]
    assert rows.counts == {"cycles": 7, "signals": 1, "orders": 6, "fills": 6}
    assert rows.snapshot is not None and rows.snapshot.equity == D("10009.375") and rows.snapshot.bar_ts == at(DAY2 + 3 * HOUR)
    assert rows.cycle is not None and rows.cycle.finished_at == datetime(2025, 12, 3, 5, 0, 1, 250000, tzinfo=timezone.utc)
    assert rows.live_weights is not None and rows.live_weights.method == "hedge"


def test_status_prints_the_report_of_the_orms_rows(migrated_url: str) -> None:
    build_status_ledger(migrated_url)
    expected = portfolio_status(orm_rows(migrated_url, "main"), "main")

    assert json.loads(cli(migrated_url, "status", "--json")) == expected
    # another setting given: the full settings are read (and checked) instead of the light reader; same report
    full = CliRunner().invoke(main, ["status", "--json"], env={"TRADEPIPE_DATABASE_URL": migrated_url, "TRADEPIPE_SEED": "8"})
    assert full.exit_code == 0 and json.loads(full.output) == expected
    other = json.loads(cli(migrated_url, "status", "--json", "--book", "other"))
    assert other == portfolio_status(orm_rows(migrated_url, "other"), "other")
    assert [p["symbol"] for p in other["positions"]] == ["ADA/USDT"]
    shown = cli(migrated_url, "status")
    assert "equity 10009.38" in shown and "last cycle: bar 2025-12-03T05:00:00+00:00 failed (replay 1h), skipped {'SOL/USDT': 'no bar'}" in shown
    assert "weights (published): momentum 0.700, trend 0.300" in shown


def test_an_empty_book_an_unmigrated_and_a_missing_database(migrated_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    report = json.loads(cli(migrated_url, "status", "--json", "--book", "nobody"))
    assert report == portfolio_status(orm_rows(migrated_url, "nobody"), "nobody")
    assert report["portfolio"] is None and report["counts"] == {"cycles": 0, "signals": 0, "orders": 0, "fills": 0}

    empty = tmp_path / "empty.sqlite"
    empty.touch()
    with pytest.raises(LedgerUnavailable, match="is not migrated: run `tradepipe db upgrade`"):
        with read_only_ledger(f"sqlite:///{empty}"):
            pass
    result = CliRunner().invoke(main, ["status"], env={"TRADEPIPE_DATABASE_URL": f"sqlite:///{tmp_path / 'missing.sqlite'}"})
    assert result.exit_code == 3 and result.output.strip() == (
        f"tradepipe: no ledger database at {tmp_path / 'missing.sqlite'}: run `tradepipe db upgrade` to create it (or set TRADEPIPE_DATABASE_URL)"
    )
    assert not (tmp_path / "missing.sqlite").exists()
