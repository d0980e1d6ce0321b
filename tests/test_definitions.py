"""The code location a user loads with `make run`: what the UI will list."""

import subprocess
import sys

import dagster as dg

from tradepipe.definitions import defs


def test_definitions_validate_and_list_the_pipeline() -> None:
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    assert {key.to_user_string() for key in graph.get_all_asset_keys()} == {
        "market_bars",
        "portfolio_state",
        "trade_attribution",
        "agent_performance",
        "agent_weights",
        "live_weights",
        "project_report",
        "day_charts",
        "walk_forward",
        "walk_forward_sweep",
    }
    checks = {key.name for key in graph.asset_check_keys}
    assert checks == {
        "equity_invariant", "no_double_fills", "weights_are_sound", "performance_rows_are_valid",
        # data quality
        "market_bars_tradable", "market_bars_expectations", "orders_within_risk_limits", "ledger_replays_to_the_book",
        "signals_expectations", "attribution_expectations", "report_matches_schema", "walk_forward_summaries_match_schema",
    }
    assert {job.name for job in defs.resolve_all_job_defs()} >= {
        "trading_cycle", "performance_job", "weights_job", "promote_weights", "project_report_job", "data_quality",
        "walk_forward_sweep_job",
    }
    schedules = {s.name: s for s in defs.schedules or []}
    assert set(schedules) == {
        "performance_intraday", "performance_finalize", "weights_daily", "project_report_schedule", "daily_summary",
        "day_charts_every_10_minutes", "data_quality_hourly",
    }
    assert all(s.default_status == dg.DefaultScheduleStatus.RUNNING for s in schedules.values())


def test_lineage_reads_trading_then_attribution_then_performance_then_weights() -> None:
    graph = defs.resolve_asset_graph()

    def parents(name: str) -> set[str]:
        return {key.to_user_string() for key in graph.get(dg.AssetKey(name)).parent_keys}

    assert parents("trade_attribution") == {"portfolio_state"}
    assert parents("agent_performance") == {"trade_attribution"}
    assert parents("agent_weights") == {"agent_performance"}
    assert parents("live_weights") == {"agent_weights"}
    assert parents("day_charts") == {"portfolio_state"}
    sensors = {s.name for s in defs.sensors or []}
    assert {"trading_cycle_sensor", "warmup_analytics", "trading_cycle_failure_alert", "stale_weights_alert"} <= sensors


def test_loading_the_code_location_does_not_import_heavy_libraries() -> None:
    """Every trading-cycle run imports the code location: Great Expectations (4-6 s), scipy and ccxt
    must only load where they are used."""
    probe = (
        "import sys, tradepipe.definitions; "
        "print(sorted(m for m in ('great_expectations', 'scipy.optimize', 'scipy.signal', 'ccxt', 'matplotlib', 'jinja2') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_loading_the_code_location_reads_no_database(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The ledger's URL points at a server that does not exist and a SQLite file that must not appear:
    the code location loads anyway, and creates nothing (resources connect when a run uses them)."""
    import os

    probe = "import tradepipe.definitions as d; print(sorted(d.defs.resources))"
    for url in ("postgresql://nobody@127.0.0.1:9/nowhere", f"sqlite:///{tmp_path / 'never' / 'ledger.sqlite'}"):
        env = {**os.environ, "TRADEPIPE_DATABASE_URL": url, "TRADEPIPE_HOME": str(tmp_path / "home")}
        out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True, timeout=120).stdout
        assert out.strip() == "['alerts', 'broker', 'clock', 'ledger', 'mail', 'market', 'trading', 'weights_cache']"
    assert not (tmp_path / "never").exists() and not (tmp_path / "home").exists()
