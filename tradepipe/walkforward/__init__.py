"""Walk-forward evaluation of the whole trading loop (issue 9): the live cycle over history with daily
weight decisions, several weight strategies side by side, summary.json and report.html.

Public API:

* :func:`tradepipe.walkforward.run.run_request` - one request end to end (files written);
* :func:`tradepipe.walkforward.engine.run_walk_forward` - the engine on a loaded
  :class:`~tradepipe.walkforward.data.MarketFrame` (``load_market``), with pluggable
  ``weight_policy`` and ``streams_function``;
* :func:`tradepipe.walkforward.summary.build_summary` / ``validate_summary`` - the summary.json layout.
"""
