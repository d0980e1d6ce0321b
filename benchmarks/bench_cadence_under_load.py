"""The live loop's cadence on a busy machine: `make run` on the synthetic 1m market beside a load generator.

Run: ``nice .venv/bin/python benchmarks/bench_cadence_under_load.py [--minutes 15] [--busy 8] [--warmup-days 1] [--port P]``.

1. ``make run`` itself (migrate, warm-up, ``dagster dev`` with the repo's dagster.yaml) on a free port,
   with a temporary TRADEPIPE_HOME, so the run storage is fresh. TRADEPIPE_PERFORMANCE_INTRADAY_CRON is
   set to every 5 minutes so that scheduled analytics runs compete with the cycles inside the window.
2. Once the UI answers, ``--busy`` processes spin (each stops by itself after the window; all are
   killed at the end whatever happens), for ``--minutes`` minutes.
3. ``make run`` is stopped (its process group), then the run storage is read:
   - bars traded / bars elapsed: 1m bars whose minute after closing lay inside the window, and of them those with a
     successful ``trading_cycle`` run (tag ``tradepipe/bar_open``);
   - launch-to-done of the ``trading_cycle`` runs (run creation to run end) and start-to-done, percentiles;
   - every scheduled run: schedule, partition, status, and whether it was a retry.

Figures are wall times on a machine we load on purpose; the load average and the CPU count are printed with them.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BAR_SECONDS = 60


def spin(until: float) -> None:
    """One busy process; bounded by its own deadline."""
    x = 0
    while time.time() < until:
        x = (x * 31 + 7) % 1_000_003


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_ui(port: int, proc: subprocess.Popen[bytes], limit_s: float) -> bool:
    deadline = time.time() + limit_s
    while time.time() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5):
                return True
        except OSError:
            time.sleep(2)
    return False


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT to the process group of `make run` (as Ctrl-C would), then SIGTERM, then SIGKILL, until no process
    of the group is left: `make` ends at the first signal, and `dagster dev` must not be left behind it."""
    for sig, wait_s in ((signal.SIGINT, 60), (signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            proc.poll()  # reap `make`, so that a finished leader does not keep the group alive
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.5)


def percentiles(values: list[float]) -> str:
    if not values:
        return "none"
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    return (
        f"p50 {statistics.median(ordered):.1f} s, p90 {pick(0.9):.1f} s, p95 {pick(0.95):.1f} s, "
        f"max {ordered[-1]:.1f} s (n={len(ordered)})"
    )


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def report(dagster_home: Path, window_start: float, window_end: float) -> None:
    import dagster as dg

    instance = dg.DagsterInstance.from_config(str(dagster_home))
    try:
        records = instance.get_run_records()
    finally:
        instance.dispose()

    cycles = [r for r in records if r.dagster_run.job_name == "trading_cycle"]
    traded_bars = {
        r.dagster_run.tags.get("tradepipe/bar_open")
        for r in cycles
        if r.dagster_run.status == dg.DagsterRunStatus.SUCCESS
    }
    # A bar counts once the minute after its close lay wholly inside the window: the sensor had its chance.
    first_open = (int(window_start) // BAR_SECONDS) * BAR_SECONDS
    elapsed = [
        iso(open_s)
        for open_s in range(first_open, int(window_end), BAR_SECONDS)
        if open_s + BAR_SECONDS >= window_start and open_s + 2 * BAR_SECONDS <= window_end
    ]
    traded = [bar for bar in elapsed if bar in traded_bars]
    print(f"bars traded / bars elapsed: {len(traded)} / {len(elapsed)} = {100 * len(traded) / max(len(elapsed), 1):.1f} %")
    missed = [bar for bar in elapsed if bar not in traded_bars]
    if missed:
        print(f"  bars not traded: {', '.join(missed)}")

    in_window = [r for r in cycles if window_start <= r.create_timestamp.timestamp() <= window_end]
    by_status: dict[str, int] = defaultdict(int)
    for r in in_window:
        stopped_by_us = r.dagster_run.status == dg.DagsterRunStatus.FAILURE and (r.end_time or 0) >= window_end
        by_status["ended by the stop" if stopped_by_us else r.dagster_run.status.value] += 1
    print(f"trading_cycle runs created in the window: {dict(sorted(by_status.items()))}")
    done = [r for r in in_window if r.dagster_run.status == dg.DagsterRunStatus.SUCCESS and r.end_time]
    print(f"  launch-to-done (run created -> run ended): {percentiles([r.end_time - r.create_timestamp.timestamp() for r in done])}")
    print(f"  start-to-done (run worker started -> ended): {percentiles([r.end_time - r.start_time for r in done if r.start_time])}")

    scheduled = sorted(
        (r for r in records if r.dagster_run.tags.get("dagster/schedule_name") or r.dagster_run.tags.get("dagster/sensor_name") == "warmup_analytics"),
        key=lambda r: r.create_timestamp,
    )
    print("scheduled runs (and the warm-up's analytics run):")
    for r in scheduled:
        tags = r.dagster_run.tags
        source = tags.get("dagster/schedule_name") or tags.get("dagster/sensor_name")
        retry = f", retry {tags['dagster/retry_number']} of {tags.get('dagster/parent_run_id', '')[:8]}" if "dagster/retry_number" in tags else ""
        took = f", {r.end_time - r.create_timestamp.timestamp():.0f} s launch-to-done" if r.end_time else ""
        print(
            f"  {iso(r.create_timestamp.timestamp())} {source}: {r.dagster_run.job_name}"
            f" partition={tags.get('dagster/partition', '-')} {r.dagster_run.status.value}{retry}{took}"
        )
    # A run still in flight when the benchmark stops `make run` is ended by that stop, not by the load.
    failed_roots = {
        r.dagster_run.run_id for r in scheduled
        if r.dagster_run.status == dg.DagsterRunStatus.FAILURE and (r.end_time or 0) < window_end
    }
    stopped = sum(1 for r in scheduled if r.dagster_run.status == dg.DagsterRunStatus.FAILURE and (r.end_time or 0) >= window_end)
    print(f"scheduled runs ended by the benchmark's stop of make run: {stopped}")
    retried = {r.dagster_run.tags.get("dagster/parent_run_id") for r in scheduled}
    succeeded_later = {
        r.dagster_run.tags.get("dagster/root_run_id") for r in scheduled if r.dagster_run.status == dg.DagsterRunStatus.SUCCESS
    }
    lost = [run_id for run_id in failed_roots if run_id not in retried and run_id not in succeeded_later]
    print(f"scheduled runs failed and not retried: {len(lost)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=15.0, help="how long the loaded window lasts")
    parser.add_argument("--busy", type=int, default=8, help="busy processes of the load generator")
    parser.add_argument("--warmup-days", type=float, default=1.0, help="make run's WARMUP_DAYS")
    parser.add_argument("--port", type=int, default=0, help="port of make run's UI (default: a free one)")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="tradepipe-cadence-"))
    port = args.port or free_port()
    env = {
        **os.environ,
        "TRADEPIPE_HOME": str(home),
        "TRADEPIPE_MARKET_SOURCE": "synthetic",
        "TRADEPIPE_PERFORMANCE_INTRADAY_CRON": "*/5 * * * *",
    }
    for name in [key for key in env if key.startswith("TRADEPIPE_DATABASE") or key == "DAGSTER_HOME"]:
        env.pop(name)
    log = (home / "make-run.log").open("wb")
    print(f"make run on port {port}, TRADEPIPE_HOME={home}, {os.cpu_count()} CPUs, load before: {os.getloadavg()}", flush=True)
    proc = subprocess.Popen(
        # a process started in the background inherits SIGINT ignored; `dagster dev` then outlives the stop
        ["env", "--default-signal=INT,TERM", "make", "-s", "run", f"PORT={port}", f"WARMUP_DAYS={args.warmup_days}"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    busy: list[multiprocessing.Process] = []
    try:
        if not wait_for_ui(port, proc, limit_s=1800):
            sys.exit(f"the UI did not answer (see {home / 'make-run.log'})")
        window_start = time.time()
        window_end = window_start + args.minutes * 60
        busy = [multiprocessing.Process(target=spin, args=(window_end,), daemon=True) for _ in range(args.busy)]
        for worker in busy:
            worker.start()
        print(f"window {iso(window_start)} .. {iso(window_end)} with {args.busy} busy processes", flush=True)
        loads = []
        while time.time() < window_end and proc.poll() is None:
            time.sleep(30)
            loads.append(os.getloadavg()[0])
        print(f"load average (1 min) during the window: median {statistics.median(loads or [0]):.1f}, max {max(loads or [0]):.1f}")
    finally:
        for worker in busy:
            worker.kill()
            worker.join(5)
        stop_group(proc)
        log.close()
    report(home / "dagster", window_start, window_end)
    print(f"(logs and storage kept in {home})")


if __name__ == "__main__":
    main()
