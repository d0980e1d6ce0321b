"""Builds, stores and emails a report: shared by the ``project_report`` asset and ``tradepipe report --preview``.

Order matters for "lose nothing": the report is committed (row and files) before any email is
attempted; each delivery attempt is committed on its own, so a failed send leaves the report stored,
the failure recorded, and the report queued for the next run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Sequence

from sqlalchemy.orm import Session, sessionmaker

from tradepipe.adapters.db import reports as db
from tradepipe.adapters.db import system_metrics
from tradepipe.adapters.db import tasks
from tradepipe.adapters.mail import MailDeliveryError, SmtpSettings, send_message
from tradepipe.config.names import check_name
from tradepipe.core.report_inputs import RuleThresholds
from tradepipe.core.recommendations import Recommendation
from tradepipe.core.report_inputs import FailedCheck, ReportInputs
from tradepipe.core.report import build_report, iso, summary_markdown
from tradepipe.reports.charts import render_charts
from tradepipe.reports.render import compose_email, render_json, render_standalone_html, validate

log = logging.getLogger(__name__)
WEEK = timedelta(days=7)
DAY = timedelta(days=1)
REPORT_PERIOD = timedelta(hours=2)


@dataclass(frozen=True)
class ReportRequest:
    book: str
    window_start: datetime
    window_end: datetime
    now: datetime
    quote_currency: str
    timeframe: str
    bar_seconds: float
    default_starting_cash: float
    recipients: Sequence[str] = ()
    partition_key: str | None = None
    failed_checks: Sequence[FailedCheck] = ()
    thresholds: RuleThresholds = field(default_factory=RuleThresholds)


def gather_inputs(session: Session, request: ReportRequest, exclude_report_id: int | None = None) -> ReportInputs:
    """Everything the report reads, from the ledger, analytics tables and health metrics (read only)."""
    book, start, end = request.book, request.window_start, request.window_end
    days = request.thresholds.low_sharpe_days
    return ReportInputs(
        book=book,
        quote_currency=request.quote_currency,
        timeframe=request.timeframe,
        bar_seconds=request.bar_seconds,
        window_start=start,
        window_end=end,
        generated_at=request.now,
        starting_cash=db.starting_cash(session, book) or request.default_starting_cash,
        equity=db.load_equity(session, book, end - WEEK, end),
        positions=db.latest_positions(session, book, end),
        cycles=db.load_cycles(session, book, start, end),
        orders=db.load_orders(session, book, end - DAY, end),
        fills=db.load_fills(session, book, end - WEEK, end),
        performance=db.load_performance_days(session, book, (end - timedelta(days=days + 1)).date(), end.date()),
        weight_changes=db.load_weight_changes(session, book, end - WEEK, end),
        last_weights_update=db.last_weights_update(session, book, end),
        current_weights=db.current_weights(session, book, end),
        work=db.load_work(session, book, start, end),
        metrics=system_metrics.load_metrics(session, start, end, book),
        failed_checks=request.failed_checks,
        open_tasks=tasks.open_tasks(session),
        delivery_failures=db.delivery_failures(session, request.now, exclude_report_id),
        recipients=list(request.recipients),
        partition_key=request.partition_key,
        thresholds=request.thresholds,
    )


def _recommendations(document: dict[str, Any]) -> list[Recommendation]:
    return [
        Recommendation(r["rule"], r["subject"], r["title"], r["detail"], r["priority"], r["evidence"])
        for r in document["recommendations"]
    ]


def report_stem(document: dict[str, Any]) -> str:
    meta = document["report"]
    return f"{meta['book']}-{meta['window_start'][:16].replace(':', '')}"


@dataclass(frozen=True)
class StoredReport:
    report_id: int
    document: dict[str, Any]
    files: dict[str, str]
    tasks_opened: list[int]


def store_report(
    sessions: sessionmaker[Session], request: ReportRequest, reports_dir: Path, run_id: str | None
) -> StoredReport:
    """Build the window's report, write its files, store it with its suggestions and tasks; one commit.

    The slow parts (reading the week, drawing the charts) run before the writing transaction, so a
    SQLite ledger is not locked against the trading cycle while matplotlib draws."""
    with sessions() as session:
        existing = db.report_for_partition(session, request.partition_key)
        document = build_report(gather_inputs(session, request, existing.id if existing else None))
    validate(document)  # also loads the validator before the lock is taken
    svgs = render_charts(document, "svg")  # the charts do not show tasks, which the transaction may open
    with sessions.begin() as session:
        opened = tasks.record_suggestions(
            session,
            _recommendations(document),
            seen_at=request.window_end,
            previous_window_end=request.window_end - REPORT_PERIOD,
            persist_reports=request.thresholds.persist_reports,
        )
        # Tasks opened by this very report belong in its task list.
        document["tasks"] = [
            {"id": t.id, "title": t.title, "status": t.status, "priority": t.priority, "created_at": iso(t.created_at)}
            for t in tasks.open_tasks(session)
        ]
        document["summary"] = summary_markdown(document)
        json_text = render_json(document)
        html = render_standalone_html(document, svgs)
        files = write_files(reports_dir, report_stem(document), json_text, html)
        row = db.save_report(
            session,
            document=document,
            json_text=json_text,
            html=html,
            files=files,
            window_start=request.window_start,
            window_end=request.window_end,
            generated_at=request.now,
            run_id=run_id,
        )
        return StoredReport(row.id, document, files, [t.id for t in opened])


def write_files(directory: Path, stem: str, json_text: str, html: str) -> dict[str, str]:
    check_name(stem, "report name")  # <book>-<window start>: a file name in ``directory``, never a path
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"json": directory / f"{stem}.json", "html": directory / f"{stem}.html"}
    paths["json"].write_text(json_text, encoding="utf-8")
    paths["html"].write_text(html, encoding="utf-8")
    return {kind: str(path.resolve()) for kind, path in paths.items()}


@dataclass(frozen=True)
class DeliveryOutcome:
    status: str
    """sent, failed or not_configured (for the report just built)."""
    error: str | None = None
    retried_sent: list[int] = field(default_factory=list)
    retried_failed: list[int] = field(default_factory=list)


Sender = Callable[[SmtpSettings, Any, Sequence[str]], None]


def deliver(
    sessions: sessionmaker[Session],
    report_id: int,
    smtp: SmtpSettings | None,
    recipients: Sequence[str],
    now: datetime,
    send: Sender = send_message,
) -> DeliveryOutcome:
    """Email this report, then every earlier report whose email failed; record each attempt."""
    if smtp is None or not recipients:
        with sessions.begin() as session:
            row = db.report_by_id(session, report_id)
            reason = "no recipients configured" if not recipients else "no SMTP host configured"
            db.record_delivery(session, row, at=now, status="not_configured", recipients=[], error=reason)
        return DeliveryOutcome("not_configured", reason)
    with sessions() as session:
        queued = [r.id for r in db.unsent_reports(session, now, exclude_id=report_id)]
    status, error = _attempt(sessions, report_id, smtp, recipients, now, send)
    sent: list[int] = []
    failed: list[int] = []
    if status == "sent":  # a relay that just failed for this report would fail the queue too
        for queued_id in queued:
            (sent if _attempt(sessions, queued_id, smtp, recipients, now, send)[0] == "sent" else failed).append(queued_id)
    return DeliveryOutcome(status, error, sent, failed)


def _attempt(
    sessions: sessionmaker[Session], report_id: int, smtp: SmtpSettings, recipients: Sequence[str], now: datetime, send: Sender
) -> tuple[str, str | None]:
    with sessions() as session:
        row = db.report_by_id(session, report_id)
        document = db.report_document(row)
        json_text = row.content
    message = compose_email(document, sender=smtp.from_address, recipients=recipients, json_text=json_text)
    try:
        send(smtp, message, recipients)
        status, error, kind = "sent", None, None
    except MailDeliveryError as exc:
        status, error, kind = "failed", str(exc), exc.kind
        log.warning("report %s not emailed (%s): %s; it is retried with the next report", report_id, smtp.describe(), error)
    with sessions.begin() as session:
        row = db.report_by_id(session, report_id)
        db.record_delivery(session, row, at=now, status=status, recipients=recipients, error=error)
        if status == "failed":
            system_metrics.record_metrics(session, now, [("email_delivery_failed", 1, {"report_id": report_id, "kind": kind})])
    return status, error
