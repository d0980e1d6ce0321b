"""Walk-forward evaluation of the whole trading loop: the live cycle over history with daily
weight decisions, several weight strategies side by side, summary.json and report.html.

Public API:

* :func:`tradepipe.research.run.run_request` - one request end to end (files written);
* :func:`tradepipe.research.engine.run_walk_forward` - the engine on a loaded
  :class:`~tradepipe.research.data.MarketFrame` (``load_market``), with pluggable
  ``weight_policy`` and ``streams_function``;
* :func:`tradepipe.research.summary.build_summary` / ``validate_summary`` - the summary.json layout.
"""
