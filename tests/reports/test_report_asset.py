"""The project_report asset in real Dagster runs on SQLite and PostgreSQL, emailing a real SMTP server."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import select

from tests.reports.conftest import PASSWORD, USER, SmtpServer, free_port
from tradepipe.adapters.db.engine import session_factory
from tradepipe.adapters.db.models import (
    AgentPerformanceRow,
    BookRow,
    ImprovementSuggestionRow,
    PortfolioSnapshotRow,
    ProjectReportRow,
    ProjectTaskRow,
    SystemMetricRow,
    TradingCycleRow,
)
from tradepipe.assets.reports import project_report
from tradepipe.schedules import project_report_schedule
from tradepipe.reports.render import validate
from tradepipe.resources import MailResource, build_resources
from tradepipe.config.settings import load_settings

FIRST_WINDOW = datetime(2026, 3, 4, 10, 0, tzinfo=timezone.utc)


def _seed_ledger(url: str) -> None:
    """Six hours of 1-minute cycles from 10:00 and three days of performance with momentum under Sharpe 0.5."""
    with session_factory(url).begin() as session:
        session.add(BookRow(name="main", starting_cash=Decimal("10000"), quote_currency="USDT"))
        session.flush()
        for minute in range(6 * 60):
            bar = FIRST_WINDOW + timedelta(minutes=minute)
            cycle = TradingCycleRow(book="main", bar_ts=bar, timeframe="1m", market_source="synthetic", status="succeeded",
                                 weights={"momentum": 0.5, "trend": 0.5}, weights_source="default", skipped={})
            session.add(cycle)
            session.flush()
            equity = Decimal("10000") + minute
            session.add(PortfolioSnapshotRow(
                book="main", bar_ts=bar, cycle_id=cycle.id, cash=Decimal("10000"), positions_value=equity - 10000, equity=equity,
                realized_pnl=Decimal(0), unrealized_pnl=Decimal(0), fees_paid=Decimal(0), day_start_equity=Decimal("10000"),
                positions={},
            ))
        for day in (date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4)):
            for rank, (agent, sharpe) in enumerate((("trend", 1.4), ("momentum", 0.2)), start=1):
                session.add(AgentPerformanceRow(book="main", date=day, agent_name=agent, window_days=30, sharpe_ratio=sharpe,
                                             total_signals=100, rank=rank, is_top_performer=rank == 1, is_underperformer=rank == 2))


def _resources(url: str, home: Path, mail: MailResource) -> dict:
    settings = load_settings(database_url=url, home=str(home), agents="momentum,trend", partitions_start="2026-03-01")
    return {**build_resources(settings, "test"), "mail": mail}


def _mail(server: SmtpServer | None, password: str = PASSWORD, port: int | None = None) -> MailResource:
    return MailResource(
        host="127.0.0.1", port=port or (server.port if server else free_port()), user=USER, password=password,
        sender="tradepipe@example.com", ca_file=server.ca_file if server else None, timeout_s=10,
        recipients=["trader@example.com"],
    )


def _materialize(url: str, home: Path, key: str, mail: MailResource, instance: dg.DagsterInstance) -> dg.ExecuteInJobResult:
    result = dg.materialize([project_report], partition_key=key, resources=_resources(url, home, mail), instance=instance)
    assert result.success
    return result


def test_schedule_tick_materialises_the_window_that_just_closed() -> None:
    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(instance=instance, scheduled_execution_time=datetime(2026, 3, 4, 12, 15, tzinfo=timezone.utc))
        request = project_report_schedule(context)
        assert isinstance(request, dg.RunRequest)
        assert request.partition_key == "2026-03-04-10:00"
        odd = dg.build_schedule_context(instance=instance, scheduled_execution_time=datetime(2026, 3, 4, 13, 15, tzinfo=timezone.utc))
        assert project_report_schedule(odd).partition_key == "2026-03-04-10:00"  # type: ignore[union-attr]


def test_reports_are_stored_failed_emails_recorded_and_retried_and_suggestions_become_one_task(
    migrated_url: str, tmp_path: Path, starttls_server: SmtpServer
) -> None:
    _seed_ledger(migrated_url)
    home = tmp_path / "home"
    sessions = session_factory(migrated_url)
    with dg.instance_for_test() as instance:
        # 1. Wrong password: the report is stored (row and files), the failure recorded, nothing delivered.
        tick = dg.build_schedule_context(instance=instance, scheduled_execution_time=datetime(2026, 3, 4, 12, 15, tzinfo=timezone.utc))
        key = project_report_schedule(tick).partition_key  # type: ignore[union-attr]
        result = _materialize(migrated_url, home, key, _mail(starttls_server, password="wrong"), instance)
        metadata = result.asset_materializations_for_node("project_report")[0].metadata
        assert metadata["email"].value.startswith("failed: authentication failed")
        assert "**main** 2026-03-04T10:00:00Z .. 2026-03-04T12:00:00Z" in metadata["summary"].value
        assert Path(metadata["html_path"].value).is_file() and Path(metadata["json_path"].value).is_file()
        assert starttls_server.mailbox.messages == []
        with sessions() as session:
            first = session.scalars(select(ProjectReportRow)).one()
            assert first.period_start == FIRST_WINDOW and first.partition_key == "2026-03-04-10:00"
            assert first.delivery["status"] == "failed" and first.delivered_to == []
            document = json.loads(first.content)
            validate(document)
            # 120 cycles from equity 10,000 to 10,119; the reference before 10:00 is the starting cash.
            assert document["portfolio"]["equity"] == 10_119 and document["portfolio"]["pnl"]["window"] == 119
            assert document["activity"]["cycles_run"] == 120
            assert "<h2>Portfolio</h2>" in first.html
            failures = session.scalars(select(SystemMetricRow).where(SystemMetricRow.metric_name == "email_delivery_failed")).all()
            assert [(m.tags["report_id"], m.tags["kind"]) for m in failures] == [(first.id, "auth")]
            stored = first.content + first.html + json.dumps(first.delivery) + json.dumps([m.tags for m in failures])
            assert "wrong" not in stored, "the password tried is in no table"

        # 2. Good credentials: this report goes out, and the unsent one with it; the report tells about the failure.
        result = _materialize(migrated_url, home, "2026-03-04-12:00", _mail(starttls_server), instance)
        metadata = result.asset_materializations_for_node("project_report")[0].metadata
        assert metadata["email"].value == "sent"
        with sessions() as session:
            second = session.scalars(select(ProjectReportRow).where(ProjectReportRow.partition_key == "2026-03-04-12:00")).one()
            assert metadata["retried_sent"].value == [first.id]
            document = json.loads(second.content)
            assert [f["report_id"] for f in document["health"]["email_failures"]] == [first.id]
            assert "email_failed" in [r["key"] for r in document["recommendations"]]
            assert session.get(ProjectReportRow, first.id).delivery["status"] == "sent"
            assert session.get(ProjectReportRow, first.id).delivered_to == ["trader@example.com"]
        subjects = sorted(m["Subject"] for _, m in starttls_server.mailbox.messages)
        assert subjects == ["tradepipe report main 2026-03-04 10:00..12:00 UTC", "tradepipe report main 2026-03-04 12:00..14:00 UTC"]

        # 3. Refused connection: stored and recorded again.
        result = _materialize(migrated_url, home, "2026-03-04-14:00", _mail(None), instance)
        assert result.asset_materializations_for_node("project_report")[0].metadata["email"].value.startswith("failed: connection")

        # The same suggestion in three consecutive reports: one row, updated, and one task.
        with sessions() as session:
            rows = session.scalars(select(ImprovementSuggestionRow).where(ImprovementSuggestionRow.rule_key == "agent_low_sharpe:momentum")).all()
            assert len(rows) == 1
            row = rows[0]
            assert (row.times_seen, row.streak, row.status) == (3, 3, "open")
            assert row.last_seen_at == FIRST_WINDOW + timedelta(hours=6)
            assert row.evidence["sharpe_by_day"] == {"2026-03-02": 0.2, "2026-03-03": 0.2, "2026-03-04": 0.2}
            tasks = session.scalars(select(ProjectTaskRow)).all()
            assert len(tasks) == 1 and tasks[0].id == row.task_id and tasks[0].status == "open" and tasks[0].priority == 2
            third = session.scalars(select(ProjectReportRow).where(ProjectReportRow.partition_key == "2026-03-04-14:00")).one()
            assert [t["id"] for t in json.loads(third.content)["tasks"]] == [row.task_id]

        # Re-running a window replaces its report and counts the suggestion once.
        _materialize(migrated_url, home, "2026-03-04-14:00", _mail(None), instance)
        with sessions() as session:
            assert len(session.scalars(select(ProjectReportRow).where(ProjectReportRow.partition_key == "2026-03-04-14:00")).all()) == 1
            row = session.scalars(select(ImprovementSuggestionRow).where(ImprovementSuggestionRow.rule_key == "agent_low_sharpe:momentum")).one()
            assert (row.times_seen, row.streak) == (3, 3)
            assert len(session.scalars(select(ProjectTaskRow)).all()) == 1


def test_no_recipients_sends_nothing_and_the_report_says_so(migrated_url: str, tmp_path: Path) -> None:
    _seed_ledger(migrated_url)
    mail = MailResource(host="127.0.0.1", port=free_port())
    with dg.instance_for_test() as instance:
        result = _materialize(migrated_url, tmp_path / "home", "2026-03-04-10:00", mail, instance)
    assert result.asset_materializations_for_node("project_report")[0].metadata["email"].value.startswith("not_configured")
    with session_factory(migrated_url)() as session:
        report = session.scalars(select(ProjectReportRow)).one()
        assert report.delivery["status"] == "not_configured"
        assert "no recipients configured" in report.summary


@pytest.fixture(autouse=True)
def _no_stray_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRADEPIPE_SMTP_PASSWORD", raising=False)
