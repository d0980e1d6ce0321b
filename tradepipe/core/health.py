"""System health of one trading cycle as ``system_metrics`` rows: what the 2-hour report aggregates.

Metric names (``tags`` always carry ``book``):

* ``cycle_latency_seconds`` per ``stage``: market_data, agents, risk (ensemble, risk plan and
  simulated fills: the core cycle less the agents' own time), ledger (writes and commit), total;
* ``data_fetch_errors`` per ``symbol`` (value 1, with the ``reason``) and ``data_fetch_retries`` per
  ``symbol`` (the market adapter's retries this cycle);
* ``skipped_symbols`` (value: how many; tags list them);
* ``orders_rejected`` per ``kind`` (the risk rule or exchange refusal);
* ``weights_source`` (value 1; tag ``source``: redis, database, file, default).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable, Mapping

Metric = tuple[str, float, dict[str, Any]]
STAGES = ("market_data", "agents", "risk", "ledger", "total")


def cycle_metrics(
    *,
    book: str,
    bar: str,
    stage_seconds: Mapping[str, float],
    data_errors: Mapping[str, str],
    retries: Mapping[str, int],
    skipped: Mapping[str, str],
    rejected_kinds: Iterable[str],
    weights_source: str,
) -> list[Metric]:
    tags = {"book": book, "bar": bar}
    rows: list[Metric] = [
        ("cycle_latency_seconds", float(stage_seconds[stage]), {**tags, "stage": stage}) for stage in STAGES if stage in stage_seconds
    ]
    rows += [("data_fetch_errors", 1.0, {**tags, "symbol": symbol, "reason": reason}) for symbol, reason in sorted(data_errors.items())]
    rows += [("data_fetch_retries", float(n), {**tags, "symbol": symbol}) for symbol, n in sorted(retries.items()) if n]
    if skipped:
        rows.append(("skipped_symbols", float(len(skipped)), {**tags, "symbols": sorted(skipped)}))
    rows += [("orders_rejected", float(n), {**tags, "kind": kind}) for kind, n in sorted(Counter(rejected_kinds).items())]
    rows.append(("weights_source", 1.0, {**tags, "source": weights_source or "unknown"}))
    return rows
