"""The generic JSON-schema check: a stored document that breaks its schema fails its asset's check."""

import json
from pathlib import Path
from typing import Any

import dagster as dg

from tradepipe.checks.schemas import json_schema_check, schema_violations
from tradepipe.resources import build_resources
from tradepipe.config.settings import load_settings

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["generated_at", "sharpe"],
    "properties": {"generated_at": {"type": "string"}, "sharpe": {"type": ["number", "null"]}},
    "additionalProperties": False,
}


def test_schema_violations_say_where() -> None:
    assert schema_violations({"generated_at": "2026-01-01T00:00:00Z", "sharpe": None}, SCHEMA) == []
    assert schema_violations({"generated_at": 3, "sharpe": "high", "extra": 1}, SCHEMA) == [
        "$: Additional properties are not allowed ('extra' was unexpected)",
        "$.generated_at: 3 is not of type 'string'",
        "$.sharpe: 'high' is not of type 'number', 'null'",
    ]


def test_a_stored_document_breaking_its_schema_fails_the_check(tmp_path: Path, sqlite_url: str, monkeypatch: Any) -> None:
    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", sqlite_url)
    schema_path = tmp_path / "summary.schema.json"
    schema_path.write_text(json.dumps(SCHEMA))
    stored: dict[str, Any] = {"good": {"generated_at": "2026-01-01T00:00:00Z", "sharpe": 1.2}}

    @dg.asset
    def summary() -> None:
        return None

    check = json_schema_check("summary", schema_path, lambda ledger, trading: dict(stored), name="summary_matches_schema")
    resources = build_resources(load_settings(), "test")
    (passed,) = dg.materialize([summary, check], resources=resources).get_asset_check_evaluations()
    assert passed.passed and passed.metadata["documents"].value == 1
    stored["bad"] = {"generated_at": "2026-01-01T00:00:00Z"}
    (failed,) = dg.materialize([summary, check], resources=resources).get_asset_check_evaluations()
    assert not failed.passed
    assert failed.metadata["violations"].value == {"bad": ["$: 'sharpe' is a required property"]}
