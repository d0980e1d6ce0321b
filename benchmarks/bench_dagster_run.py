"""Benchmark one ``trading_cycle`` run launched through Dagster: where its seconds go, wall and CPU.

Run: ``.venv/bin/python benchmarks/bench_dagster_run.py [--cli-runs N] [--worker-runs N] [--daemon-runs N]
[--port P]``. Everything lives in a temp
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
5. ``dagster api execute_run`` as a subprocess, the run worker's own command, for a ``trading_cycle``
   run and for a one-op job of an empty code location (the floor of any Dagster OSS run: a fresh
   process that imports Dagster and loads its instance). CPU seconds of the child (getrusage), and
   ``-X importtime`` of the trading run's worker summed by top-level package.
6. ``make run``'s path: ``dagster dev -w workspace.yaml`` with the repo's dagster.yaml (queued run
   coordinator, default run launcher: the code server spawns one process per run) on 15 s bars with a
   2 s sensor, until ``--daemon-runs`` cycles succeeded; each run's event log gives the breakdown
   created -> enqueued -> dequeued (starting) -> run worker up -> code location loaded (run start) ->
   first step -> last step -> success, and the load average is printed beside it.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import resource
import signal
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
HOUR_MS = 3_600_000
DAEMON_TIMEFRAME = "15s"
DAEMON_SENSOR_SECONDS = 2
EMPTY_LOCATION = """import dagster as dg


@dg.op
def nothing() -> None:
    pass


@dg.job(executor_def=dg.in_process_executor)
def empty() -> None:
    nothing()


defs = dg.Definitions(jobs=[empty])
"""
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
    import dagster as dg

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
        # the code location's console logger hides Dagster's DEBUG events: the run storage tells the outcome
        with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
            latest = instance.get_run_records(dg.RunsFilter(job_name="trading_cycle"), limit=1)
        if done.returncode != 0 or not latest or latest[0].dagster_run.status != dg.DagsterRunStatus.SUCCESS:
            print((done.stdout + done.stderr)[-3000:])
            raise SystemExit(f"dagster job execute failed (exit {done.returncode})")
    summary("dagster job execute -m tradepipe.definitions -j trading_cycle (subprocess)", seconds)


def child_cpu_seconds(run: Callable[[], Any]) -> tuple[Any, float]:
    """What ``run`` returns, and the CPU seconds (user + sys) of the child processes it waited for."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = run()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return result, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def importtime_by_package(stderr: str) -> Counter[str]:
    """Self import time (s) summed by top-level package, from ``python -X importtime`` output."""
    totals: Counter[str] = Counter()
    for line in stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+\d+ \| *(\S+)", line)
        if match:
            totals[match.group(2).split(".")[0]] += int(match.group(1)) / 1e6
    return totals


def bench_execute_run(bars: Bars, env: dict[str, str], cwd: Path, runs: int) -> None:
    """The run worker's command for a trading_cycle run and for the empty job (the floor)."""
    import dagster as dg
    from dagster._core.definitions.reconstruct import ReconstructableRepository
    from dagster._grpc.types import ExecuteRunArgs
    from dagster._serdes import serialize_value

    (cwd / "empty_location.py").write_text(EMPTY_LOCATION)
    repositories = {
        "trading_cycle": (ReconstructableRepository.for_module("tradepipe.definitions", "defs", str(cwd)), "trading_cycle"),
        "empty job (floor)": (ReconstructableRepository.for_file(str(cwd / "empty_location.py"), "defs", str(cwd)), "empty"),
    }
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:

        def execute_run(name: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
            repository, job_name = repositories[name]
            recon_job = repository.get_reconstructable_job(job_name)
            config = run_config(bars.take()) if job_name == "trading_cycle" else None
            run = instance.create_run_for_job(
                job_def=recon_job.get_definition(), run_config=config, job_code_origin=recon_job.get_python_origin()
            )
            args = ExecuteRunArgs(job_origin=recon_job.get_python_origin(), run_id=run.run_id, instance_ref=instance.get_ref())
            done = subprocess.run(
                [str(BIN / "dagster"), "api", "execute_run", serialize_value(args)],
                cwd=cwd, env={**env, **(extra_env or {})}, capture_output=True, text=True,
            )
            status = instance.get_run_by_id(run.run_id)
            if done.returncode != 0 or status is None or status.status != dg.DagsterRunStatus.SUCCESS:
                print((done.stdout + done.stderr)[-3000:])
                raise SystemExit(f"dagster api execute_run of {name} failed (exit {done.returncode})")
            return done

        for name in repositories:
            cpu, wall = [], []
            for _ in range(runs):
                start = time.perf_counter()
                _, seconds = child_cpu_seconds(functools.partial(execute_run, name))
                wall.append(time.perf_counter() - start)
                cpu.append(seconds)
            print(
                f"  dagster api execute_run, {name}: CPU median {statistics.median(cpu):.2f} s "
                f"(best {min(cpu):.2f}), wall median {statistics.median(wall):.2f} s ({runs} runs)"
            )
        for name in repositories:
            totals = importtime_by_package(execute_run(name, {"PYTHONPROFILEIMPORTTIME": "1"}).stderr)
            top = ", ".join(f"{package} {seconds:.2f}" for package, seconds in totals.most_common(8))
            print(f"    imports of the {name} worker (-X importtime, wall s): total {sum(totals.values()):.2f}; {top}")


DAEMON_PHASES = (
    ("created -> enqueued", None, "PIPELINE_ENQUEUED"),
    ("enqueued -> dequeued (starting)", "PIPELINE_ENQUEUED", "PIPELINE_STARTING"),
    ("dequeued -> run worker up", "PIPELINE_STARTING", "worker_up"),
    ("worker up -> code location loaded (run start)", "worker_up", "PIPELINE_START"),
    ("run start -> first step", "PIPELINE_START", "first_step"),
    ("first step -> last step done", "first_step", "last_step"),
    ("last step -> success", "last_step", "PIPELINE_SUCCESS"),
)


def run_milestones(instance: Any, run_id: str, created: float) -> dict[str | None, float]:
    """Seconds after the run's creation of each milestone of its event log."""
    marks: dict[str | None, float] = {None: 0.0}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None:
            continue
        kind, at = event.event_type_value, entry.timestamp - created
        if kind == "ENGINE_EVENT" and (entry.message or "").startswith("Started process for run"):
            marks.setdefault("worker_up", at)
        elif kind == "STEP_START":
            marks.setdefault("first_step", at)
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE"):
            marks["last_step"] = at
        else:
            marks.setdefault(kind, at)
    return marks


def bench_daemon(env: dict[str, str], cwd: Path, runs: int, port: int) -> None:
    import dagster as dg

    from tradepipe.adapters.db.engine import upgrade

    # its own instance and ledger: a book trades one timeframe, and only the sensor's runs are counted
    folder = cwd / "daemon"
    (folder / "dagster").mkdir(parents=True)
    shutil.copy(REPO / "dagster.yaml", folder / "dagster" / "dagster.yaml")
    url = f"sqlite:///{folder / 'ledger.sqlite'}"
    upgrade(url)
    # The instance's storage is created here, once: dagster dev's processes creating a fresh one at the same
    # time can race on its schema version ("more than one head present").
    with dg.DagsterInstance.from_config(str(folder / "dagster")):
        pass
    daemon_env = {
        **env,
        "DAGSTER_HOME": str(folder / "dagster"),
        "TRADEPIPE_HOME": str(folder / "home"),
        "TRADEPIPE_DATABASE_URL": url,
        "TRADEPIPE_TIMEFRAME": DAEMON_TIMEFRAME,
        "TRADEPIPE_SENSOR_INTERVAL_SECONDS": str(DAEMON_SENSOR_SECONDS),
        "DAGSTER_GRPC_TIMEOUT_SECONDS": "180",  # as the Makefile exports it
    }
    with (folder / "dagster-dev.log").open("wb") as log:
        process = subprocess.Popen(
            [str(BIN / "dagster"), "dev", "-w", str(REPO / "workspace.yaml"), "-p", str(port), "--log-level", "warning"],
            cwd=folder, env=daemon_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    loads = []
    try:
        deadline = time.time() + 120 + 60 * runs
        with dg.DagsterInstance.from_config(daemon_env["DAGSTER_HOME"]) as instance:
            done_filter = dg.RunsFilter(job_name="trading_cycle", statuses=[dg.DagsterRunStatus.SUCCESS])
            # the first run after start-up also waits for the code server: it is left out
            while len(instance.get_run_records(done_filter)) < runs + 1:
                if time.time() > deadline or process.poll() is not None:
                    print((folder / "dagster-dev.log").read_text(errors="replace")[-3000:])
                    raise SystemExit("dagster dev did not finish the trading cycles in time")
                time.sleep(2)
                loads.append(os.getloadavg()[0])
            records = sorted(instance.get_run_records(done_filter), key=lambda r: r.create_timestamp)[1 : runs + 1]
            phases: dict[str, list[float]] = {name: [] for name, _, _ in DAEMON_PHASES}
            totals = []
            for record in records:
                created = record.create_timestamp.timestamp()
                marks = run_milestones(instance, record.dagster_run.run_id, created)
                for name, since, until in DAEMON_PHASES:
                    phases[name].append(marks[until] - marks[since])
                totals.append(marks["PIPELINE_SUCCESS"])
    finally:
        for sig, wait_s in ((signal.SIGINT, 60), (signal.SIGKILL, 10)):
            if process.poll() is None:
                os.killpg(process.pid, sig)
                try:
                    process.wait(wait_s)
                except subprocess.TimeoutExpired:
                    continue
    print(
        f"  dagster dev (make run's instance), {len(records)} sensor-requested cycles, load average (1 min) "
        f"median {statistics.median(loads):.1f}: created -> success median {statistics.median(totals):.2f} s "
        f"(best {min(totals):.2f})"
    )
    for name, seconds in phases.items():
        print(f"    {name}: median {statistics.median(seconds):.2f} s (best {min(seconds):.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cli-runs", type=int, default=3, help="subprocess runs of `dagster job execute` (default 3)")
    parser.add_argument("--worker-runs", type=int, default=3, help="runs of `dagster api execute_run` per job (default 3)")
    parser.add_argument("--daemon-runs", type=int, default=5, help="cycles timed under `dagster dev` (default 5; 0 skips)")
    parser.add_argument("--port", type=int, default=3000, help="port of the `dagster dev` UI (default 3000)")
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

        print(
            f"trading_cycle through Dagster (synthetic 1h bars, SQLite ledger and instance in {folder}); "
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
        )
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
        if args.worker_runs > 0:
            bench_execute_run(bars, env, folder, args.worker_runs)
        if args.daemon_runs > 0:
            bench_daemon(env, folder, args.daemon_runs, args.port)
    finally:
        os.chdir(REPO)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
