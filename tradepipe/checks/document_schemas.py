"""The stored reports and walk-forward summaries, re-validated against their JSON Schemas.

Both writers validate before they write; these checks catch what was stored by an older version or
edited by hand, as a failed check on the asset concerned.
"""

import json
from pathlib import Path
from typing import Any

from tradepipe.adapters.db.reports import latest_reports, report_document
from tradepipe.checks.schemas import json_schema_check
from tradepipe.resources import LedgerDatabase, TradingConfigResource

REPORT_SCHEMA_PATH = Path(__file__).resolve().parents[1] / "reports" / "report.schema.json"
SUMMARY_SCHEMA_PATH = Path(__file__).resolve().parents[1] / "research" / "summary.schema.json"
# The last day of 2-hour reports: enough to catch a bad writer, cheap to validate.
REPORTS_CHECKED = 12


def latest_report_documents(ledger: LedgerDatabase, trading: TradingConfigResource) -> dict[str, Any]:
    with ledger.sessions()() as session:
        return {
            f"report {row.id} ({row.partition_key or row.generated_at.isoformat()})": _parsed(row)
            for row in latest_reports(session, REPORTS_CHECKED)
        }


def _parsed(row: Any) -> Any:
    try:
        return report_document(row)
    except ValueError as exc:  # not JSON at all: the schema check reports it as a violation
        return {"unreadable_json": str(exc)}


def walk_forward_summaries(ledger: LedgerDatabase, trading: TradingConfigResource) -> dict[str, Any]:
    """Every ``TRADEPIPE_HOME/walkforward/<name>/summary.json`` (a run's own folder per name)."""
    folder = trading.settings().home / "walkforward"
    documents: dict[str, Any] = {}
    for path in sorted(folder.glob("*/summary.json")):
        try:
            documents[path.parent.name] = json.loads(path.read_text())
        except ValueError as exc:
            documents[path.parent.name] = {"unreadable_json": str(exc)}
    return documents


report_matches_schema = json_schema_check(
    "project_report", REPORT_SCHEMA_PATH, latest_report_documents, name="report_matches_schema",
    description=f"the last {REPORTS_CHECKED} stored reports validate against report.schema.json (blocking: ERROR)",
)
walk_forward_summaries_match_schema = json_schema_check(
    "walk_forward", SUMMARY_SCHEMA_PATH, walk_forward_summaries, name="walk_forward_summaries_match_schema",
    description="every summary.json under TRADEPIPE_HOME/walkforward validates against summary.schema.json (ERROR)",
)
