"""``tradepipe email configure|test``, ``tradepipe report --preview``, ``tradepipe tasks list|ack|done|dismiss``."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from tradepipe.cli.progress import working

from tradepipe.cli.context import command_settings
from tradepipe.config.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from tradepipe.adapters.mail import SmtpSettings


def _sessions(settings: Settings) -> "sessionmaker[Session]":
    from tradepipe.adapters.db.engine import session_factory

    return session_factory(settings.resolved_database_url)


def _mail_settings(settings: Settings) -> "tuple[SmtpSettings | None, list[str]]":
    """SMTP settings and recipients as the report asset sees them (environment over email_config).

    Outside Dagster there is no EnvVar resolution: the resource set with plain values ("test") is used."""
    from tradepipe.adapters.db.email_settings import load_email_config
    from tradepipe.resources import build_resources

    mail = build_resources(settings, "test")["mail"]
    with _sessions(settings)() as session:
        return mail.effective(load_email_config(session))


# --- email ---------------------------------------------------------------------------------------


@click.group()
def email() -> None:
    """Where reports are emailed: store the SMTP settings, send a test message."""


@email.command("configure")
@click.option("--host", required=True, help="SMTP relay host, e.g. smtp.example.com")
@click.option("--port", type=click.IntRange(1, 65535), default=587, show_default=True, help="465 means implicit TLS; others use STARTTLS.")
@click.option("--user", default=None, help="SMTP login (often the sender address).")
@click.option("--sender", default=None, help="From address (default: the login).")
@click.option("--to", "recipients", required=True, help="Comma-separated report recipients.")
@click.option("--no-starttls", is_flag=True, help="Plain SMTP on a trusted local relay (no TLS, no password sent).")
@click.option("--disable", is_flag=True, help="Keep the row but stop using it.")
def email_configure(host: str, port: int, user: str | None, sender: str | None, recipients: str, no_starttls: bool, disable: bool) -> None:
    """Store the non-secret SMTP settings in email_config. The password is never stored: set TRADEPIPE_SMTP_PASSWORD."""
    from tradepipe.adapters.db.email_settings import store_email_config

    settings = command_settings()
    addresses = [a.strip() for a in recipients.split(",") if a.strip()]
    bad = [a for a in addresses if "@" not in a]
    if bad or not addresses:
        click.echo(f"--to: expected comma-separated email addresses, got {bad or 'none'}", err=True)
        sys.exit(2)
    with _sessions(settings).begin() as session:
        store_email_config(
            session, smtp_host=host, smtp_port=port, smtp_user=user, sender=sender, recipients=addresses,
            use_starttls=not no_starttls, enabled=not disable,
        )
    security = "implicit TLS" if port == 465 else ("no TLS" if no_starttls else "STARTTLS")
    click.echo(f"stored: {host}:{port} ({security}), login {user or 'none'}, reports to {', '.join(addresses)}")
    if user:
        click.echo("set the password in the environment (never stored): export TRADEPIPE_SMTP_PASSWORD=... "
                   "(or put it in .env), then check with `tradepipe email test`")
    if settings.smtp_host or settings.report_recipients:
        click.echo("note: TRADEPIPE_SMTP_* / TRADEPIPE_REPORT_RECIPIENTS are set and take precedence over the stored values")


@email.command("test")
@click.option("--to", "to", default=None, help="Send to this address instead of the report recipients.")
def email_test(to: str | None) -> None:
    """Send one short test message through the configured relay."""
    from email.message import EmailMessage

    from tradepipe.adapters.mail import MailDeliveryError, send_message

    settings = command_settings()
    smtp, recipients = _mail_settings(settings)
    recipients = [to] if to else recipients
    if smtp is None:
        click.echo("no SMTP host configured: run `tradepipe email configure` or set TRADEPIPE_SMTP_HOST", err=True)
        sys.exit(2)
    if not recipients:
        click.echo("no recipients: pass --to or set TRADEPIPE_REPORT_RECIPIENTS", err=True)
        sys.exit(2)
    message = EmailMessage()
    message["Subject"] = "tradepipe test message"
    message["From"] = smtp.from_address
    message["To"] = ", ".join(recipients)
    message.set_content(f"This is a test from tradepipe via {smtp.describe()}. Reports will arrive the same way.")
    try:
        with working(f"sending via {smtp.describe()}"):  # bounded by TRADEPIPE_SMTP_TIMEOUT_SECONDS
            send_message(smtp, message, recipients)
    except MailDeliveryError as exc:
        click.echo(f"test message not sent ({exc.kind}): {exc}", err=True)
        sys.exit(1)
    click.echo(f"test message sent to {', '.join(recipients)} via {smtp.describe()}")


# --- report preview ------------------------------------------------------------------------------


@click.command()
# Previewing is all this command does (the project_report asset stores and sends); the flag is accepted so that
# `tradepipe report --preview` reads as what it does.
@click.option("--preview", is_flag=True, expose_value=False, help="Write the next report and its email to files; send nothing (the default).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the files (default: TRADEPIPE_HOME/reports/preview).")
def report(out: Path | None) -> None:
    """The report of the 2-hour window in progress (data so far), as JSON, HTML and the .eml it would send.

    Nothing is stored in the database and nothing is sent."""
    from tradepipe.core.report import build_report
    from tradepipe.core.timeframes import timeframe_ms
    from tradepipe.reports.render import compose_email, render_json, render_standalone_html
    from tradepipe.reports.service import ReportRequest, gather_inputs, report_stem, write_files

    settings = command_settings()
    smtp, recipients = _mail_settings(settings)
    now = datetime.now(timezone.utc)
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=now.hour % 2)
    request = ReportRequest(
        book=settings.book, window_start=start, window_end=start + timedelta(hours=2), now=now,
        quote_currency=settings.quote_currency, timeframe=settings.resolved_timeframe,
        bar_seconds=timeframe_ms(settings.resolved_timeframe) / 1000, default_starting_cash=float(settings.starting_cash),
        recipients=recipients if smtp else [], partition_key=start.strftime("%Y-%m-%d-%H:%M"),
    )
    with working("report preview") as step:
        step("reading the ledger")
        with _sessions(settings)() as session:
            inputs = gather_inputs(session, request)
        step("building the report")
        document = build_report(inputs)
        json_text = render_json(document)
        directory = out or settings.home / "reports" / "preview"
        step("drawing the charts")
        files = write_files(directory, report_stem(document), json_text, render_standalone_html(document))
    sender = smtp.from_address if smtp else "tradepipe@localhost"
    message = compose_email(document, sender=sender, recipients=recipients or ["(no recipients configured)"], json_text=json_text)
    eml = directory / f"{report_stem(document)}.eml"
    eml.write_bytes(bytes(message))
    click.echo(f"preview of {start:%Y-%m-%d %H:%M}..{start + timedelta(hours=2):%H:%M} UTC (not stored, not sent):")
    click.echo(f"  html  {files['html']}\n  json  {files['json']}\n  email {eml.resolve()}")
    click.echo(f"  {document['delivery']['note']}")


# --- tasks ---------------------------------------------------------------------------------------


@click.group()
def tasks() -> None:
    """Project tasks opened from persisting recommendations."""


@tasks.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include done and dismissed tasks.")
@click.option("--json", "as_json", is_flag=True)
def tasks_list(show_all: bool, as_json: bool) -> None:
    """Open and acknowledged tasks by priority (1 first)."""
    from tradepipe.adapters.db.tasks import LIVE_TASK_STATUSES, TASK_STATUSES, list_tasks

    settings = command_settings()
    with _sessions(settings)() as session:
        rows = list_tasks(session, TASK_STATUSES if show_all else LIVE_TASK_STATUSES)
        records: list[dict[str, Any]] = [
            {"id": t.id, "priority": t.priority, "status": t.status, "title": t.title, "description": t.description,
             "created_at": t.created_at.isoformat(), "updated_at": t.updated_at.isoformat()}
            for t in rows
        ]
    if as_json:
        click.echo(json.dumps(records, indent=2))
        return
    if not records:
        click.echo("no open tasks")
    for r in records:
        click.echo(f"#{r['id']} P{r['priority']} [{r['status']}] {r['title']}  (since {r['created_at'][:16]})")


def _set_status(task_id: int, status: str) -> None:
    from tradepipe.adapters.db.tasks import UnknownTaskError, set_task_status

    settings = command_settings()
    try:
        with _sessions(settings).begin() as session:
            task = set_task_status(session, task_id, status)
            title = task.title
    except UnknownTaskError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    click.echo(f"task #{task_id} {status}: {title}")


@tasks.command("ack")
@click.argument("task_id", type=int)
def tasks_ack(task_id: int) -> None:
    """Mark a task acknowledged (seen, being worked on)."""
    _set_status(task_id, "acknowledged")


@tasks.command("done")
@click.argument("task_id", type=int)
def tasks_done(task_id: int) -> None:
    """Mark a task done; if its recommendation persists for three more reports, a new task opens."""
    _set_status(task_id, "done")


@tasks.command("dismiss")
@click.argument("task_id", type=int)
def tasks_dismiss(task_id: int) -> None:
    """Dismiss a task; it is not reopened while its recommendation persists."""
    _set_status(task_id, "dismissed")


COMMANDS = (email, report, tasks)
