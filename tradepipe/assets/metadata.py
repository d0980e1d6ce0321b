"""Table metadata for the asset pages: one helper, column types read from the values."""

from typing import Any

import dagster as dg


def _column_type(rows: list[dict[str, Any]], column: str) -> str:
    values = [row.get(column) for row in rows if row.get(column) is not None]
    if values and all(isinstance(v, bool) for v in values):
        return "bool"
    if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "int"
    if values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return "float"
    return "string"


def table(rows: list[dict[str, Any]], columns: list[str]) -> dg.TableMetadataValue:
    """``rows`` as a UI table with ``columns`` in that order (missing values shown empty)."""
    schema = dg.TableSchema(columns=[dg.TableColumn(name, type=_column_type(rows, name)) for name in columns])
    return dg.MetadataValue.table([dg.TableRecord({c: row.get(c) for c in columns}) for row in rows], schema=schema)
