"""Benchmark the wall time of one ``trading_cycle`` run launched through Dagster.

Run: ``.venv/bin/python benchmarks/bench_dagster_run.py [--cli-runs N]``. Everything lives in a temp
dir (TRADEPIPE_HOME, a migrated SQLite ledger, DAGSTER_HOME with the repo's dagster.yaml); the
synthetic market on 1h bars, each run trading the next bar of 2026-01-01 onwards.

1. ``import tradepipe.definitions`` in a fresh interpreter: the fixed cost every run worker the
   daemon launches pays before the cycle starts.
2. ``dagster.materialize([portfolio_state, checks])`` in-process against ``DagsterInstance.local_temp()``
   (SQLite run and event storage, as the daemon's instance): first run and median of the rest.
3. ``dagster.execute_job(reconstructable(trading_cycle), instance)``: the job as defined in
   ``tradepipe.definitions`` (its executor, its checks), in this process.
4. ``dagster job execute -m tradepipe.definitions -j trading_cycle`` as a subprocess: the closest
   stand-in for the daemon's launch path (a new Python process per run that loads the code
   location, then executes the run). The daemon adds its queue and sensor ticks on top (see
   tests/integration/test_e2e_daemon.py for those end-to-end timings).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
HOUR_MS = 3_600_000
FIRST_BAR_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
IN_PROCESS_RUNS = 10
IMPORT_RUNS = 3


def trading_cycle_job() -> Any:
    """The ``trading_cycle`` job exactly as the code location defines it (module scope: reconstructable)."""
    from tradepipe.definitions import defs

    return defs.resolve_job_def("trading_cycle")


class Bars:
    """Hands out consecutive 1h bars so every run trades a new bar of the same book."""

    def __init__(self) -> None:
        self.next_ms = FIRST_BAR_MS

    def take(self) -> int:
        bar, self.next_ms = self.next_ms, self.next_ms + HOUR_MS
        return bar


def run_config(bar_ms: int) -> dict[str, Any]:
    return {
        "ops": {"portfolio_state": {"config": {"bar_open_ms": bar_ms}}},
        "loggers": {"console": {"config": {"log_level": "WARNING"}}},  # Dagster's per-event log lines off
    }


def summary(name: str, seconds: list[float], note: str = "") -> None:
    first, rest = seconds[0], seconds[1:] or seconds
    print(
        f"  {name}: first {first:.2f} s, median of the next {len(rest)} {statistics.median(rest):.2f} s, "
        f"best {min(rest):.2f} s{note}"
    )


def bench_import(env: dict[str, str], cwd: Path) -> None:
    timings = []
    for _ in range(IMPORT_RUNS):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-W", "ignore", "-c", "import tradepipe.definitions"], cwd=cwd, env=env, check=True)
        timings.append(time.perf_counter() - start)
    print(
        f"  python -c 'import tradepipe.definitions': median {statistics.median(timings):.2f} s, "
        f"best {min(timings):.2f} s ({IMPORT_RUNS} fresh interpreters)"
    )


def bench_materialize(bars: Bars, dagster_tmp: Path) -> None:
    import dagster as dg

    from tradepipe.assets.portfolio import portfolio_state
    from tradepipe.checks.ledger import equity_invariant, no_double_fills
    from tradepipe.definitions import defs

    (dagster_tmp / "materialize").mkdir()
    with dg.DagsterInstance.local_temp(str(dagster_tmp / "materialize")) as instance:
        seconds, statuses = [], []
        for _ in range(IN_PROCESS_RUNS):
            bar = bars.take()
            start = time.perf_counter()
            result = dg.materialize(
                [portfolio_state, equity_invariant, no_double_fills],
                run_config=run_config(bar),
                instance=instance,
                resources=defs.resources,  # the code location's own
            )
            seconds.append(time.perf_counter() - start)
            assert result.success
            metadata = result.asset_materializations_for_node("portfolio_state")[0].metadata
            statuses.append((metadata["cycle_status"].value, metadata["cycle_seconds"].value))
        assert all(status == "traded" for status, _ in statuses), statuses
        cycle = statistics.median(s for _, s in statuses[1:])
        summary("dagster.materialize (asset + 2 checks)", seconds, f"; the cycle itself: median {cycle * 1e3:.0f} ms")


def bench_execute_job(bars: Bars, dagster_tmp: Path) -> None:
    import dagster as dg

    job = dg.reconstructable(trading_cycle_job)
    (dagster_tmp / "execute_job").mkdir()
    with dg.DagsterInstance.local_temp(str(dagster_tmp / "execute_job")) as instance:
        seconds = []
        executor = None
        for _ in range(IN_PROCESS_RUNS // 2):
            bar = bars.take()
            start = time.perf_counter()
            with dg.execute_job(job, instance=instance, run_config=run_config(bar)) as result:
                seconds.append(time.perf_counter() - start)
                assert result.success, [e.message for e in result.all_events if e.is_failure]
                if executor is None:
                    executor = next(
                        (e.message for e in result.all_events if e.event_type_value == "ENGINE_EVENT" and "xecut" in (e.message or "")),
                        "",
                    )
        summary("dagster.execute_job(reconstructable trading_cycle)", seconds, f" [{executor}]")


def bench_cli(bars: Bars, env: dict[str, str], cwd: Path, runs: int) -> None:
    seconds = []
    for _ in range(runs):
        bar = bars.take()
        config = cwd / f"run_{bar}.yaml"
        config.write_text(f"ops:\n  portfolio_state:\n    config:\n      bar_open_ms: {bar}\n")
        start = time.perf_counter()
        done = subprocess.run(
            [str(BIN / "dagster"), "job", "execute", "-m", "tradepipe.definitions", "-j", "trading_cycle", "-c", str(config)],
            cwd=cwd, env=env, capture_output=True, text=True,
        )
        seconds.append(time.perf_counter() - start)
        if done.returncode != 0 or "RUN_SUCCESS" not in done.stderr + done.stdout:
            print((done.stdout + done.stderr)[-3000:])
            raise SystemExit(f"dagster job execute failed (exit {done.returncode})")
    summary("dagster job execute -m tradepipe.definitions -j trading_cycle (subprocess)", seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cli-runs", type=int, default=3, help="subprocess runs of `dagster job execute` (default 3)")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench_dagster_run_"))
    try:
        home, dagster_home = folder / "home", folder / "dagster"
        dagster_home.mkdir(parents=True)
        shutil.copy(REPO / "dagster.yaml", dagster_home / "dagster.yaml")
        url = f"sqlite:///{folder / 'ledger.sqlite'}"
        settings_env = {
            "TRADEPIPE_HOME": str(home),
            "TRADEPIPE_DATABASE_URL": url,
            "TRADEPIPE_TIMEFRAME": "1h",
            "TRADEPIPE_SEED": "7",
        }
        for name in [n for n in os.environ if n.startswith(("TRADEPIPE_", "DAGSTER_"))]:
            del os.environ[name]
        os.environ.update(settings_env)  # the asset reads its settings from the environment
        env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "PYTHONWARNINGS": "ignore"}
        os.chdir(folder)  # no stray .env is read

        print(f"trading_cycle through Dagster (synthetic 1h bars, SQLite ledger and instance in {folder})")
        bench_import(env, folder)

        start = time.perf_counter()
        warnings.simplefilter("ignore")
        from tradepipe.adapters.db.engine import upgrade

        import tradepipe.definitions  # noqa: F401  (what a run worker loads)

        print(f"  import tradepipe.definitions in this process: {time.perf_counter() - start:.2f} s")
        upgrade(url)

        bars = Bars()
        bench_materialize(bars, folder)
        bench_execute_job(bars, folder)
        if args.cli_runs > 0:
            bench_cli(bars, env, folder, args.cli_runs)
    finally:
        os.chdir(REPO)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
