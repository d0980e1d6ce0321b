"""`tradepipe email configure|test`, `tradepipe report --preview`, `tradepipe tasks ...` against a real database and SMTP server."""

from __future__ import annotations

import email
from email.policy import default as default_policy
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from tests.reports.conftest import PASSWORD, USER, SmtpServer
from tradepipe.adapters.db.engine import session_factory, upgrade
from tradepipe.adapters.db.models import EmailConfigRow, ProjectReportRow, ProjectTaskRow
from tradepipe.cli.main import main


@pytest.fixture
def database(monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> str:
    upgrade(sqlite_url)
    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", sqlite_url)
    return sqlite_url


def test_configure_stores_no_password_and_test_sends_through_it(
    database: str, starttls_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["email", "configure", "--host", "127.0.0.1", "--port", str(starttls_server.port),
                                  "--user", USER, "--to", "trader@example.com,risk@example.com"])
    assert result.exit_code == 0, result.output
    assert "TRADEPIPE_SMTP_PASSWORD" in result.output
    with session_factory(database)() as session:
        row = session.scalars(select(EmailConfigRow)).one()
        assert (row.smtp_host, row.smtp_port, row.smtp_user, row.recipients) == (
            "127.0.0.1", starttls_server.port, USER, ["trader@example.com", "risk@example.com"])
        assert not hasattr(row, "smtp_password")

    # No password yet: the relay refuses the login, and the command says so with a non-zero exit.
    monkeypatch.setenv("TRADEPIPE_SMTP_CA_FILE", starttls_server.ca_file)
    failed = runner.invoke(main, ["email", "test"])
    assert failed.exit_code == 1 and "auth" in failed.output

    monkeypatch.setenv("TRADEPIPE_SMTP_PASSWORD", PASSWORD)
    sent = runner.invoke(main, ["email", "test"])
    assert sent.exit_code == 0, sent.output
    assert PASSWORD not in sent.output
    recipients, message = starttls_server.mailbox.messages[0]
    assert recipients == ["trader@example.com", "risk@example.com"]
    assert message["Subject"] == "tradepipe test message"


def test_configure_rejects_a_bad_address(database: str) -> None:
    result = CliRunner().invoke(main, ["email", "configure", "--host", "smtp.example.com", "--to", "not-an-address"])
    assert result.exit_code == 2 and "--to" in result.output


def test_preview_writes_report_and_email_without_storing_or_sending(database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEPIPE_REPORT_RECIPIENTS", "trader@example.com")
    monkeypatch.setenv("TRADEPIPE_SMTP_HOST", "127.0.0.1")
    out = tmp_path / "preview"
    result = CliRunner().invoke(main, ["report", "--preview", "--out", str(out)])
    assert result.exit_code == 0, result.output
    files = sorted(p.suffix for p in out.iterdir())
    assert files == [".eml", ".html", ".json"]
    message = email.message_from_bytes(next(out.glob("*.eml")).read_bytes(), policy=default_policy)
    assert message["To"] == "trader@example.com"
    assert message.get_body(preferencelist=("html",)) is not None
    with session_factory(database)() as session:
        assert session.scalars(select(ProjectReportRow)).all() == []


def test_tasks_list_ack_done_dismiss(database: str) -> None:
    with session_factory(database).begin() as session:
        session.add_all([ProjectTaskRow(title="Fix the <feed>", priority=2), ProjectTaskRow(title="Tune limits", priority=1)])
    runner = CliRunner()
    listed = runner.invoke(main, ["tasks", "list"])
    assert listed.exit_code == 0
    lines = listed.output.strip().splitlines()
    assert lines[0].startswith("#2 P1 [open] Tune limits") and lines[1].startswith("#1 P2 [open] Fix the <feed>")

    assert runner.invoke(main, ["tasks", "ack", "1"]).exit_code == 0
    assert runner.invoke(main, ["tasks", "done", "2"]).exit_code == 0
    assert "[acknowledged]" in runner.invoke(main, ["tasks", "list"]).output
    assert "Tune limits" not in runner.invoke(main, ["tasks", "list"]).output
    assert "[done] Tune limits" in runner.invoke(main, ["tasks", "list", "--all"]).output
    assert runner.invoke(main, ["tasks", "dismiss", "1"]).exit_code == 0
    assert runner.invoke(main, ["tasks", "list"]).output.strip() == "no open tasks"

    missing = runner.invoke(main, ["tasks", "done", "99"])
    assert missing.exit_code == 2 and "no project task #99" in missing.output
