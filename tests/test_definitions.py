"""The code location a user loads with `make run`: what the UI will list."""

import subprocess
import sys

import dagster as dg

from tradepipe.definitions import defs


def test_definitions_validate_and_list_the_pipeline() -> None:
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    assert {key.to_user_string() for key in graph.get_all_asset_keys()} == {
        "portfolio_state",
        "trade_attribution",
        "agent_performance",
        "agent_weights",
        "live_weights",
        "walk_forward",  # issue 9
        "walk_forward_sweep",
    }
    checks = {key.name for key in graph.asset_check_keys}
    assert checks == {"equity_invariant", "no_double_fills", "weights_are_sound", "performance_rows_are_valid"}
    assert {job.name for job in defs.resolve_all_job_defs()} >= {"trading_cycle", "performance_job", "weights_job", "promote_weights", "walk_forward_sweep_job"}
    schedules = {s.name: s for s in defs.schedules or []}
    assert set(schedules) == {"performance_intraday", "performance_finalize", "weights_daily"}
    assert all(s.default_status == dg.DefaultScheduleStatus.RUNNING for s in schedules.values())


def test_loading_the_code_location_does_not_import_heavy_libraries() -> None:
    """Every trading-cycle run imports the code location: Great Expectations (4-6 s), scipy and ccxt
    must only load where they are used."""
    probe = (
        "import sys, tradepipe.definitions; "
        "print(sorted(m for m in ('great_expectations', 'scipy.optimize', 'scipy.signal', 'ccxt') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
