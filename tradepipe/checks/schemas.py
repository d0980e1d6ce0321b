"""JSON documents against their JSON Schema, as Dagster asset checks (reports, walk-forward summaries).

The report builder (``tradepipe/reports/report.schema.json``) and the walk-forward engine
(``tradepipe/research/summary.schema.json``) validate their documents before writing them; these
checks validate what was actually *stored*, after the fact, so a document edited or written by an
older version shows as a failed check on its asset. Wire one per document kind with
:func:`json_schema_check`, e.g. in ``definitions.py``::

    report_matches_schema = json_schema_check(
        "project_report", REPORT_SCHEMA_PATH, latest_report_documents, name="report_matches_schema"
    )

where ``latest_report_documents(ledger, trading)`` returns ``{label: document}`` for the newest
document(s). The check fails (ERROR) when any document breaks its schema and lists where.
"""

import json
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import dagster as dg

from tradepipe.resources import LedgerDatabase, TradingConfigResource

_SHOWN = 20

DocumentLoader = Callable[[LedgerDatabase, TradingConfigResource], Mapping[str, Any]]


@lru_cache(maxsize=16)
def load_schema(path: str) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def schema_violations(document: Any, schema: Mapping[str, Any]) -> list[str]:
    """Every place ``document`` breaks ``schema`` as ``"<json path>: <message>"`` (empty: it validates).
    The validator is the one the schema's ``$schema`` names (Draft 2020-12 when it names none)."""
    import jsonschema

    validator_class = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    validator_class.check_schema(schema)
    errors = sorted(validator_class(schema).iter_errors(document), key=lambda error: list(error.absolute_path))
    return [f"{error.json_path}: {error.message}" for error in errors]


def json_schema_check(
    asset: str | dg.AssetKey,
    schema_path: Path,
    load_documents: DocumentLoader,
    *,
    name: str,
    description: str | None = None,
) -> dg.AssetChecksDefinition:
    """An asset check on ``asset``: every document ``load_documents`` returns validates against ``schema_path``."""

    @dg.asset_check(asset=asset, name=name, description=description or f"stored documents validate against {schema_path.name}")
    def _check(ledger: LedgerDatabase, trading: TradingConfigResource) -> dg.AssetCheckResult:
        schema = load_schema(str(schema_path))
        documents = load_documents(ledger, trading)
        violations = {label: found for label, document in documents.items() if (found := schema_violations(document, schema))}
        return dg.AssetCheckResult(
            passed=not violations,
            metadata={
                "schema": schema_path.name,
                "documents": len(documents),
                "violations": dg.MetadataValue.json({label: found[:_SHOWN] for label, found in list(violations.items())[:_SHOWN]}),
            },
        )

    return _check
