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
        "variant_candidates",
        "variant_evaluations",
        "live_pool",
        "ml_model",
    }
    checks = {key.name for key in graph.asset_check_keys}
    assert checks == {
        "equity_invariant", "no_double_fills", "weights_are_sound", "performance_rows_are_valid",
        # data quality
        "market_bars_tradable", "market_bars_expectations", "orders_within_risk_limits", "ledger_replays_to_the_book",
        "signals_expectations", "attribution_expectations", "report_matches_schema", "walk_forward_summaries_match_schema",
        "live_pool_within_rules",
    }
    assert {job.name for job in defs.resolve_all_job_defs()} >= {
        "trading_cycle", "performance_job", "weights_job", "promote_weights", "project_report_job", "data_quality",
        "walk_forward_sweep_job", "variant_generation_job", "variant_evaluation_job", "live_pool_job", "ml_model_job",
    }
    schedules = {s.name: s for s in defs.schedules or []}
    assert set(schedules) == {
        "performance_intraday", "performance_finalize", "weights_daily", "project_report_schedule", "daily_summary",
        "day_charts_every_10_minutes", "data_quality_hourly", "variant_generation_weekly", "ml_model_monthly",
    }
    # The self-improvement loop is off by default (docs/self-improvement.md): its schedules and sensor wait for a user.
    loop = {"variant_generation_weekly", "ml_model_monthly"}
    assert all(s.default_status == dg.DefaultScheduleStatus.RUNNING for name, s in schedules.items() if name not in loop)
    assert all(schedules[name].default_status == dg.DefaultScheduleStatus.STOPPED for name in loop)
    sensors = {s.name: s for s in defs.sensors or []}
    assert sensors["variant_generation_sensor"].default_status == dg.DefaultSensorStatus.STOPPED


def test_lineage_reads_trading_then_attribution_then_performance_then_weights() -> None:
    graph = defs.resolve_asset_graph()

    def parents(name: str) -> set[str]:
        return {key.to_user_string() for key in graph.get(dg.AssetKey(name)).parent_keys}

    assert parents("trade_attribution") == {"portfolio_state"}
    assert parents("agent_performance") == {"trade_attribution"}
    assert parents("agent_weights") == {"agent_performance", "live_pool"}
    # The self-improvement loop: candidates -> evaluations -> live_pool -> agent_weights.
    assert parents("variant_evaluations") == {"variant_candidates"}
    assert parents("live_pool") == {"variant_evaluations"}
    assert isinstance(graph.get(dg.AssetKey("variant_evaluations")).partitions_def, dg.DynamicPartitionsDefinition)
    assert isinstance(graph.get(dg.AssetKey("ml_model")).partitions_def, dg.MonthlyPartitionsDefinition)
    assert parents("live_weights") == {"agent_weights"}
    assert parents("day_charts") == {"portfolio_state"}
    # The loop closes through the ledger (the next cycle loads the live set); Dagster's asset graph has no
    # cycles, so it is shown as links both ways and the trading cycle still selects only its two assets.
    assert "live_weights" in (graph.get(dg.AssetKey("portfolio_state")).description or "")
    trading = defs.resolve_job_def("trading_cycle")
    assert {key.to_user_string() for key in trading.asset_layer.executable_asset_keys} == {"market_bars", "portfolio_state"}
    sensors = {s.name for s in defs.sensors or []}
    assert {"trading_cycle_sensor", "warmup_analytics", "trading_cycle_failure_alert", "stale_weights_alert"} <= sensors


HEAVY_MODULES = (
    "great_expectations", "scipy", "sklearn", "ccxt", "matplotlib", "jinja2", "jsonschema",
    # migrations and news feeds: a cycle needs neither
    "alembic", "mako", "feedparser",
    # the SMTP header parser (email.policy builds it on import): only a send needs it
    "email.policy",
    # the walk-forward engine and the rest of the research package
    "tradepipe.research", "tradepipe.research.engine",
)


def test_loading_the_code_location_does_not_import_heavy_libraries() -> None:
    """Every trading-cycle run imports the code location: Great Expectations (4-6 s), scipy, ccxt, the
    walk-forward engine, Alembic and the rest must only load where they are used (inside asset bodies)."""
    # The control on the second line, in the same process: the probe sees what the code imports (a module the
    # code location does import is reported). One process, not two: each load costs ~3.3 CPU seconds.
    probe = (
        f"import sys, tradepipe.definitions; print(sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules)); "
        "print('sqlalchemy' in sys.modules, 'polars' in sys.modules)"
    )
    heavy, control = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip().splitlines()
    assert heavy == "[]"
    assert control.split() == ["True", "True"]


def test_runs_the_ui_launches_for_assets_are_one_process() -> None:
    """A UI materialisation or backfill of assets runs as Dagster's implicit asset job: in-process, like the
    analytics jobs, so one day's backfill costs one launch, not one process per step."""
    assert defs.resolve_implicit_global_asset_job_def().executor_def.name == "in_process"
    for name in (
        "trading_cycle", "performance_job", "weights_job", "warmup_analytics", "project_report_job", "data_quality",
        "variant_generation_job", "variant_evaluation_job", "live_pool_job", "ml_model_job",
    ):
        assert defs.resolve_job_def(name).executor_def.name == "in_process", name


def test_report_windows_start_two_weeks_back_unless_partitions_start_is_set(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Twelve report windows a day since 2025-01-01 made the UI's partition pages take a minute."""
    import os
    from datetime import date, datetime, timedelta, timezone

    from tradepipe.assets.partitions import REPORT_HISTORY_DAYS, report_windows_start
    from tradepipe.config.settings import load_settings

    today = date(2026, 12, 7)
    assert report_windows_start(load_settings(), today) == datetime(2026, 11, 23, tzinfo=timezone.utc)
    assert report_windows_start(load_settings(), date(2025, 1, 3)) == datetime(2025, 1, 1, tzinfo=timezone.utc)
    explicit = load_settings(partitions_start="2025-06-01")
    assert report_windows_start(explicit, today) == datetime(2025, 6, 1, tzinfo=timezone.utc)

    probe = "from tradepipe.assets.reports import report_windows as w; print(w.get_first_partition_key(), len(w.get_partition_keys()))"
    env = {k: v for k, v in os.environ.items() if k != "TRADEPIPE_PARTITIONS_START"}
    first, count = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True, timeout=300).stdout.split()
    expected_first = datetime.now(timezone.utc).date() - timedelta(days=REPORT_HISTORY_DAYS)
    assert first == f"{expected_first.isoformat()}-00:00"
    assert REPORT_HISTORY_DAYS * 12 <= int(count) <= (REPORT_HISTORY_DAYS + 1) * 12
    env["TRADEPIPE_PARTITIONS_START"] = "2026-01-01"
    first, count = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True, timeout=300).stdout.split()
    assert first == "2026-01-01-00:00" and int(count) > 12 * 300


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
