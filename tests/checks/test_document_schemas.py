"""The stored reports and walk-forward summaries are re-validated against the repository's schemas."""

import json
from pathlib import Path
from typing import Any

from tradepipe.adapters.db.models import ProjectReportRow
from tradepipe.checks.document_schemas import (
    REPORT_SCHEMA_PATH,
    SUMMARY_SCHEMA_PATH,
    latest_report_documents,
    walk_forward_summaries,
)
from tradepipe.checks.schemas import load_schema, schema_violations
from tradepipe.resources import LedgerDatabase, TradingConfigResource
from tradepipe.config.settings import load_settings


def _resources(url: str) -> tuple[LedgerDatabase, TradingConfigResource]:
    settings = load_settings(database_url=url)
    return LedgerDatabase(url=url), TradingConfigResource.from_settings(settings)


def test_a_stored_report_that_breaks_the_schema_is_found(migrated_url: str) -> None:
    ledger, trading = _resources(migrated_url)
    with ledger.sessions().begin() as session:
        session.add(ProjectReportRow(summary="edited by hand", content=json.dumps({"schema_version": "1.0"}), partition_key="2026-12-01-10:00"))
        session.add(ProjectReportRow(summary="not JSON", content="<html>", partition_key="2026-12-01-12:00"))
    documents = latest_report_documents(ledger, trading)
    assert len(documents) == 2
    schema = load_schema(str(REPORT_SCHEMA_PATH))
    problems = {label: schema_violations(document, schema) for label, document in documents.items()}
    assert all(problems.values()), problems  # neither validates: each is reported, none passes silently
    assert any("unreadable_json" in str(found) or "required property" in str(found) for found in problems.values())


def test_walk_forward_summaries_are_read_from_every_run_folder(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home")
    trading = TradingConfigResource.from_settings(settings)
    folder = settings.home / "walkforward"
    (folder / "broken").mkdir(parents=True)
    (folder / "broken" / "summary.json").write_text(json.dumps({"strategies": {"equal_weight": {"sharpe": "high"}}}))
    (folder / "truncated").mkdir()
    (folder / "truncated" / "summary.json").write_text('{"strategies": ')
    documents: dict[str, Any] = walk_forward_summaries(LedgerDatabase(url="sqlite://"), trading)
    assert set(documents) == {"broken", "truncated"}
    schema = load_schema(str(SUMMARY_SCHEMA_PATH))
    assert schema_violations(documents["broken"], schema)
    assert schema_violations(documents["truncated"], schema)
