"""The scheduled deployment end to end: deploy/Procfile's three processes on PostgreSQL, restarted one at a time.

What runs is what ``make deploy`` runs: each line of ``deploy/Procfile`` (code server, webserver,
daemon) as its own process group, with ``deploy/dagster.yaml`` as the Dagster instance and
``deploy/workspace.yaml`` as the workspace, against fresh PostgreSQL databases (one for Dagster's
storage, one for the ledger: both keep Alembic revisions in a table named alembic_version) and the
test Redis. Bars are 5 s wide and ``performance_intraday`` ticks every minute
(TRADEPIPE_PERFORMANCE_INTRADAY_CRON), so sensor and schedule runs come within a minute.

1. Everything starts; the sensor launches trading cycles until one traded.
2. The daemon is stopped (SIGTERM to its process group) and started again; the sensor carries on,
   and the schedule launches a run of today's ``performance_job`` partition (its result is tested
   elsewhere; here it must not fail). Every schedule and sensor of the code location is on in the
   daemon's storage; then the test stops the every-minute schedule, as an operator would in the UI:
   more heavy analytics runs would only slow the cycles down.
3. The code server is stopped and started again with new code (one more symbol, so a new job
   snapshot); without a daemon restart the next cycles are created from the new snapshot and trade
   the new symbol, and an order has filled. Runs the stop killed fail and are not retried.

Everything is read from PostgreSQL (Dagster's ``runs``/``run_tags``/``jobs`` tables, the instigator
state, the ledger). At the end: no bar was requested or traded twice, no trading cycle was retried
or overlapped another, and every portfolio snapshot balances (equity = cash + sum(quantity x mark)).
A run that waited so long that its bar went stale succeeds without trading (the runner's stale-bar
guard); the phases wait for cycles that traded.

Timings are printed (``-s``). Per-phase wait: TRADEPIPE_TEST_DEPLOY_PHASE_SECONDS (default 300).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from tradepipe.core.timeframes import parse_utc_ms

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PROCFILE = REPO / "deploy" / "Procfile"
TRADING_JOB = "trading_cycle"
BAR_TAG = "tradepipe/bar_open"  # ISO UTC
# A paper order fills only at the open of the bar right after its decision, so a bar must
# outlast a run on this machine; on a much slower one set TRADEPIPE_TEST_DEPLOY_TIMEFRAME (e.g. 60s).
TIMEFRAME = os.environ.get("TRADEPIPE_TEST_DEPLOY_TIMEFRAME", "15s")
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT", "XRP/USDT")
NEW_SYMBOL = "ADA/USDT"  # what the "new code" of phase 3 trades as well
PHASE_SECONDS = float(os.environ.get("TRADEPIPE_TEST_DEPLOY_PHASE_SECONDS", "300"))
POLL_S = 1.0


# --------------------------------------------------------------------------- databases


@pytest.fixture
def dagster_postgres_url(postgres_url: str) -> Iterator[str]:
    """A second fresh database on the same server, for Dagster's storage; dropped afterwards."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    from tradepipe.adapters.db.engine import driver_url

    ledger = make_url(postgres_url)
    name = f"{ledger.database}_dagster"
    admin = sa.create_engine(driver_url(postgres_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield postgres_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass(frozen=True)
class Run:
    run_id: str
    job: str
    status: str
    partition: str | None
    snapshot_id: str | None
    start_time: float | None
    end_time: float | None
    tags: dict[str, str]

    @property
    def bar(self) -> int:
        return parse_utc_ms(self.tags[BAR_TAG])

    @property
    def finished(self) -> bool:
        return self.status in ("SUCCESS", "FAILURE", "CANCELED")


def dagster_runs(engine: Any) -> list[Run]:
    """Every run in Dagster's PostgreSQL run storage, oldest first."""
    import sqlalchemy as sa

    with engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT run_id, pipeline_name, status, partition, snapshot_id, start_time, end_time "
                "FROM runs ORDER BY create_timestamp, id"
            )
        ).all()
        tags: dict[str, dict[str, str]] = {}
        for run_id, key, value in connection.execute(sa.text("SELECT run_id, key, value FROM run_tags")):
            tags.setdefault(run_id, {})[key] = value
    return [Run(*row, tags=tags.get(row[0], {})) for row in rows]


def ledger_rows(engine: Any, sql: str, **params: Any) -> list[Any]:
    import sqlalchemy as sa

    with engine.connect() as connection:
        return list(connection.execute(sa.text(sql), params).all())


# --------------------------------------------------------------------------- processes


def procfile_commands() -> dict[str, str]:
    lines = [line for line in PROCFILE.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return dict((part.strip() for part in line.split(":", 1)) for line in lines)  # type: ignore[misc]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _default_signals() -> None:
    # Dagster maps SIGTERM onto SIGINT's handler: a SIGINT left ignored by a shell would make
    # every process ignore SIGTERM too (honcho, which handles SIGINT itself, never passes that on).
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Service:
    """One Procfile line, started as honcho starts it: ``sh -c`` in its own process group."""

    name: str
    command: str
    workdir: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    logs: list[Path] = field(default_factory=list)

    def start(self, **env_changes: str) -> None:
        self.env = {**self.env, **env_changes}
        log = self.workdir / f"{self.name}-{len(self.logs) + 1}.log"
        self.logs.append(log)
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                ["/bin/sh", "-c", f"exec {self.command}"],
                cwd=self.workdir, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_default_signals,
            )

    def stop(self, grace_s: float = 60.0) -> float:
        """SIGTERM to the whole group (what honcho and systemd send), SIGKILL after ``grace_s``; seconds taken."""
        started = time.monotonic()
        if self.process is None:
            return 0.0
        pgid = self.process.pid
        for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
            if not _group_alive(pgid):
                break
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline and _group_alive(pgid):
                try:
                    self.process.wait(timeout=0.2)
                except subprocess.TimeoutExpired:
                    pass
                if self.process.poll() is not None:
                    time.sleep(0.2)  # the leader is gone; its children may still be exiting
        if self.process.poll() is None:
            self.process.wait(timeout=10)
        return time.monotonic() - started

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_contains(self, text: str) -> bool:
        return bool(self.logs) and self.logs[-1].exists() and text in self.logs[-1].read_text(errors="replace")

    def tail(self, lines: int = 40) -> str:
        if not self.logs or not self.logs[-1].exists():
            return "(no log)"
        return "\n".join(self.logs[-1].read_text(errors="replace").splitlines()[-lines:])


# --------------------------------------------------------------------------- waiting


@dataclass
class Deployment:
    services: dict[str, Service]
    dagster_db: Any
    ledger_db: Any
    t0: float = field(default_factory=time.monotonic)
    tolerated_failures: set[str] = field(default_factory=set)
    seen: set[str] = field(default_factory=set)

    def runs(self) -> list[Run]:
        runs = dagster_runs(self.dagster_db)
        for run in runs:
            key = f"{run.run_id}:{run.status}"
            if key not in self.seen:
                self.seen.add(key)
                bar = f" bar {run.tags.get(BAR_TAG)}" if run.job == TRADING_JOB else f" partition {run.partition}"
                print(f"  [{time.monotonic() - self.t0:6.1f}s] {run.job} {run.run_id[:8]}{bar} {run.status}", flush=True)
        return runs

    def fills(self) -> int:
        return int(ledger_rows(self.ledger_db, "SELECT COUNT(*) FROM fills")[0][0])

    def traded(self, runs: list[Run]) -> list[Run]:
        """Successful cycles that traded their bar (a bar that went stale while its run waited is skipped)."""
        cycle_runs = {row.run_id for row in ledger_rows(self.ledger_db, "SELECT run_id FROM trading_cycles")}
        return [r for r in succeeded(runs) if r.run_id in cycle_runs]

    def wait(self, what: str, done: Callable[[list[Run]], bool]) -> list[Run]:
        """Poll PostgreSQL until ``done(runs)``; fail at once on a failed run or a dead process."""
        deadline = time.monotonic() + PHASE_SECONDS
        while True:
            runs = self.runs()
            failed = [r for r in runs if r.status in ("FAILURE", "CANCELED") and r.run_id not in self.tolerated_failures]
            if failed:
                pytest.fail(f"{what}: runs did not succeed: {[(r.job, r.run_id, r.status) for r in failed]}", pytrace=False)
            if done(runs):
                return runs
            dead = [s.name for s in self.services.values() if not s.running]
            if dead:
                pytest.fail(f"{what}: {dead} exited", pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(
                    f"{what}: not reached within {PHASE_SECONDS:.0f} s: {[(r.job, r.status) for r in runs]}, {self.fills()} fills",
                    pytrace=False,
                )
            time.sleep(POLL_S)


def succeeded(runs: list[Run], job: str = TRADING_JOB) -> list[Run]:
    return [r for r in runs if r.status == "SUCCESS" and r.job == job]


def scheduled(runs: list[Run]) -> list[Run]:
    return [r for r in runs if r.tags.get("dagster/schedule_name") == "performance_intraday"]


@contextmanager
def dagster_instance(dagster_home: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The deployment's own instance (deploy/dagster.yaml on PostgreSQL), opened in the test process."""
    from dagster import DagsterInstance

    for name in ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_DB", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD"):
        monkeypatch.setenv(name, env[name])
    instance = DagsterInstance.from_config(str(dagster_home))
    try:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        yield instance
    finally:
        instance.dispose()


def instigator_states(instance: Any) -> dict[tuple[Any, str], Any]:
    return {(state.instigator_type, state.name): state for state in instance.all_instigator_state()}


def webserver_sees_code_location(port: int) -> bool:
    query = json.dumps({"query": "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=query, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            entries = json.load(response)["data"]["workspaceOrError"]["locationEntries"]
    except (OSError, KeyError, TypeError, ValueError):
        return False
    return any(e["name"] == "tradepipe" and e["loadStatus"] == "LOADED" for e in entries)


# --------------------------------------------------------------------------- the test


def test_deployment_runs_schedules_and_sensors_on_postgres_and_survives_restarts(
    tmp_path: Path, postgres_url: str, dagster_postgres_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dagster as dg
    import sqlalchemy as sa
    from dagster._core.scheduler.instigation import InstigatorStatus, InstigatorType
    from sqlalchemy.engine import make_url

    from tradepipe.adapters.db.engine import driver_url, upgrade
    from tradepipe.definitions import defs

    t0 = time.monotonic()
    timings: dict[str, float] = {}
    upgrade(postgres_url)
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.yaml", dagster_home / "dagster.yaml")
    (tmp_path / "deploy").symlink_to(REPO / "deploy")  # the Procfile's relative paths; no .env from the repo

    dagster_url = make_url(dagster_postgres_url)
    code_port, web_port = free_port(), free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TRADEPIPE_", "DAGSTER_")) or k.startswith("TRADEPIPE_TEST_")}
    env = {
        **base,
        "PATH": f"{BIN}{os.pathsep}{base.get('PATH', '')}",
        "PYTHONUNBUFFERED": "1",
        "DAGSTER_HOME": str(dagster_home),
        "DAGSTER_PG_HOST": dagster_url.host or "127.0.0.1",
        "DAGSTER_PG_PORT": str(dagster_url.port or 5432),
        "DAGSTER_PG_DB": str(dagster_url.database),
        "DAGSTER_PG_USER": dagster_url.username or "postgres",
        "DAGSTER_PG_PASSWORD": dagster_url.password or "",
        "TRADEPIPE_CODE_SERVER_HOST": "127.0.0.1",
        "TRADEPIPE_CODE_SERVER_PORT": str(code_port),
        "TRADEPIPE_WEBSERVER_HOST": "127.0.0.1",
        "TRADEPIPE_WEBSERVER_PORT": str(web_port),
        "TRADEPIPE_HOME": str(tmp_path / "home"),
        "TRADEPIPE_DATABASE_URL": postgres_url,
        "TRADEPIPE_REDIS_URL": redis_url,
        "TRADEPIPE_TIMEFRAME": TIMEFRAME,
        "TRADEPIPE_SYMBOLS": ",".join(SYMBOLS),
        "TRADEPIPE_MAX_POSITION_FRACTION": "0.5",
        "TRADEPIPE_SENSOR_INTERVAL_SECONDS": "2",
        "TRADEPIPE_PERFORMANCE_INTRADAY_CRON": "* * * * *",
    }
    # As make deploy does, Dagster's tables exist before three processes race to create them (opening
    # the instance creates them; `tradepipe deploy check` has its own tests).
    with dagster_instance(dagster_home, env, monkeypatch):
        pass
    timings["migrations"] = time.monotonic() - t0

    commands = procfile_commands()
    assert set(commands) == {"code", "webserver", "daemon"}, commands
    services = {name: Service(name, command, tmp_path, env) for name, command in commands.items()}
    dagster_db = sa.create_engine(driver_url(dagster_postgres_url), pool_pre_ping=True)
    ledger_db = sa.create_engine(driver_url(postgres_url), pool_pre_ping=True)
    deployment = Deployment(services, dagster_db, ledger_db, t0=t0)
    day_at_start = datetime.now(UTC).strftime("%Y-%m-%d")
    try:
        # ---- phase 1: the three processes, the sensor and the schedule
        for service in services.values():
            service.start()
        print(f"\n[deploy] started code server :{code_port}, webserver :{web_port}, daemon; waiting for a cycle")
        first = deployment.wait("phase 1", lambda runs: bool(deployment.traded(runs)))
        timings["phase 1 (start -> a cycle)"] = time.monotonic() - t0
        assert webserver_sees_code_location(web_port), services["webserver"].tail()

        # ---- phase 2: restart the daemon; the schedule's first tick may come before or after
        ids_before_daemon_restart = {r.run_id for r in first}
        stopped = services["daemon"].stop()
        services["daemon"].start()
        restarted_at = time.monotonic()
        print(f"[deploy] daemon restarted (stopped in {stopped:.1f} s); waiting for a cycle it launches and a scheduled run")
        launched = ("STARTED", "SUCCESS")
        deployment.wait(
            "phase 2",
            lambda runs: any(r.run_id not in ids_before_daemon_restart for r in deployment.traded(runs))
            and any(r.status in launched for r in scheduled(runs)),
        )
        timings["phase 2 (daemon restart -> next cycle and a scheduled run launched)"] = time.monotonic() - restarted_at
        daemon_pid = services["daemon"].process.pid  # type: ignore[union-attr]
        with dagster_instance(dagster_home, env, monkeypatch) as instance:
            states = instigator_states(instance)
            # Every schedule and sensor that runs by default (the self-improvement loop's are stopped until a user starts them).
            expected = {(InstigatorType.SCHEDULE, s.name) for s in defs.schedules or [] if s.default_status == dg.DefaultScheduleStatus.RUNNING}
            expected |= {(InstigatorType.SENSOR, s.name) for s in defs.sensors or [] if s.default_status == dg.DefaultSensorStatus.RUNNING}
            assert expected <= set(states), f"not picked up by the daemon: {sorted(expected - set(states))}"
            on = (InstigatorStatus.RUNNING, InstigatorStatus.DECLARED_IN_CODE)
            assert all(states[key].status in on for key in expected), {k: states[k].status for k in expected}
            # One scheduled run is enough: a heavy run every minute would only slow the cycles down.
            schedule = states[(InstigatorType.SCHEDULE, "performance_intraday")]
            instance.stop_schedule(schedule.instigator_origin_id, schedule.selector_id)
        with dagster_db.connect() as connection:
            stored = connection.execute(sa.text("SELECT COUNT(*) FROM jobs WHERE status IN ('RUNNING', 'DECLARED_IN_CODE')")).scalar_one()
        assert stored == len(expected) - 1, "the schedule and sensor states are not in Dagster's PostgreSQL storage"

        # ---- phase 3: restart the code server with new code, the daemon keeps running
        before_code_restart = deployment.runs()
        old_snapshots = {r.snapshot_id for r in before_code_restart if r.job == TRADING_JOB}
        finished_before = {r.run_id for r in before_code_restart if r.finished}
        stopped = services["code"].stop()
        services["code"].start(TRADEPIPE_SYMBOLS=",".join((*SYMBOLS, NEW_SYMBOL)))  # new code: a new job snapshot
        code_restarted_at = time.monotonic()
        while not services["code"].log_contains("Started Dagster code proxy server"):
            assert services["code"].running and time.monotonic() - code_restarted_at < PHASE_SECONDS, services["code"].tail()
            time.sleep(POLL_S)
        # Runs killed with the old code server, or launched while it was down, fail (cycles are never retried).
        ids_until_up = {r.run_id for r in deployment.runs()}
        deployment.tolerated_failures |= ids_until_up - finished_before
        print(f"[deploy] code server restarted with {NEW_SYMBOL} added (stopped in {stopped:.1f} s, up after "
              f"{time.monotonic() - code_restarted_at:.1f} s); waiting for a cycle on the new code")

        def on_new_code(runs: list[Run]) -> list[Run]:
            return [r for r in deployment.traded(runs) if r.run_id not in ids_until_up]

        deployment.wait("phase 3", lambda runs: bool(on_new_code(runs)) and deployment.fills() >= 1)
        timings["phase 3 (code server restart -> cycle on new code)"] = time.monotonic() - code_restarted_at
        assert services["daemon"].process.pid == daemon_pid and services["daemon"].running  # type: ignore[union-attr]
        assert webserver_sees_code_location(web_port), services["webserver"].tail()

        # ---- stop launching; runs still in flight are killed by the final stop
        services["daemon"].stop()
        deployment.tolerated_failures |= {r.run_id for r in deployment.runs() if not r.finished}
        with dagster_instance(dagster_home, env, monkeypatch) as instance:
            states = instigator_states(instance)
            assert all(states[key].status in on for key in expected if key[1] != "performance_intraday")
            cursor = parse_utc_ms(states[(InstigatorType.SENSOR, "trading_cycle_sensor")].instigator_data.cursor)  # type: ignore[union-attr]
    except BaseException:
        for service in services.values():
            for log in service.logs:
                text = log.read_text(errors="replace").splitlines() if log.exists() else []
                print(f"\n----- {log.name} (last 40 lines) -----\n" + "\n".join(text[-40:]))
        raise
    finally:
        for name in ("daemon", "code", "webserver"):
            services[name].stop(grace_s=20)
    timings["total with shutdown"] = time.monotonic() - t0

    # ---- Dagster's run storage in PostgreSQL: each bar requested once, traded at most once, never retried
    runs = dagster_runs(dagster_db)
    trading = [r for r in runs if r.job == TRADING_JOB]
    done = succeeded(trading)
    bars = [r.bar for r in trading]
    assert bars == sorted(bars) and len(set(bars)) == len(bars), f"a bar was requested twice or out of order: {bars}"
    assert cursor == max(bars)
    assert all(r.tags.get("dagster/run_key") == f"main:{r.bar}" for r in trading)
    unexpected = [r.run_id for r in runs if r.status != "SUCCESS" and r.finished and r.run_id not in deployment.tolerated_failures]
    assert not unexpected, f"runs failed outside the code-server restart: {unexpected}"
    for run in trading:
        assert run.tags.get("dagster/max_retries") == "0" and run.tags.get("tradepipe/pool") == "trading"
        assert "dagster/parent_run_id" not in run.tags and "dagster/retry_number" not in run.tags, f"{run.run_id} is a retry"
        if run.status == "FAILURE":
            assert run.tags.get("dagster/will_retry") == "false", run.tags
    spans = sorted((r.start_time, r.end_time, r.run_id) for r in done)
    for (_, end_a, id_a), (start_b, _, id_b) in pairwise(spans):
        assert end_a is not None and start_b is not None and start_b >= end_a, f"cycles {id_a} and {id_b} overlapped"
    new_code = on_new_code(trading)
    assert new_code and all(r.snapshot_id not in old_snapshots for r in new_code), "the daemon did not use the new code's job"
    schedule_runs = scheduled(runs)
    assert all(r.job == "performance_job" and r.tags.get("tradepipe/pool") == "analytics" for r in schedule_runs)
    days = {day_at_start, datetime.now(UTC).strftime("%Y-%m-%d")}
    assert all(r.partition in days and r.tags.get("dagster/partition") == r.partition for r in schedule_runs), schedule_runs

    # ---- the ledger in PostgreSQL
    cycles = ledger_rows(ledger_db, "SELECT book, bar_ts, run_id, status FROM trading_cycles ORDER BY bar_ts")
    assert len({(c.book, c.bar_ts) for c in cycles}) == len(cycles), "a bar was traded twice"
    assert {c.run_id for c in cycles} <= {r.run_id for r in trading}, "a cycle in the ledger was not a run of this deployment"
    assert len(deployment.traded(trading)) >= 3
    assert all(c.status == "succeeded" for c in cycles), cycles
    new_symbols = ledger_rows(
        ledger_db, "SELECT DISTINCT s.symbol FROM signals s JOIN trading_cycles c ON c.id = s.cycle_id WHERE c.run_id = :run_id",
        run_id=new_code[0].run_id,
    )
    assert NEW_SYMBOL in {row.symbol for row in new_symbols}
    assert not ledger_rows(ledger_db, "SELECT client_order_id FROM orders GROUP BY client_order_id HAVING COUNT(*) > 1")
    assert not ledger_rows(ledger_db, "SELECT client_order_id FROM fills GROUP BY client_order_id HAVING COUNT(*) > 1")
    snapshots = ledger_rows(ledger_db, "SELECT bar_ts, cash, positions_value, equity, positions FROM portfolio_snapshots ORDER BY bar_ts")
    assert len(snapshots) == len(cycles)
    held_somewhere = False
    for snapshot in snapshots:
        held = snapshot.positions if isinstance(snapshot.positions, dict) else json.loads(snapshot.positions or "{}")
        value = sum((Decimal(str(p["quantity"])) * Decimal(str(p["mark"])) for p in held.values()), Decimal(0))
        held_somewhere |= bool(held)
        assert Decimal(str(snapshot.positions_value)) == value, snapshot.bar_ts
        assert Decimal(str(snapshot.equity)) == Decimal(str(snapshot.cash)) + value, f"equity != cash + sum(quantity x mark) at {snapshot.bar_ts}"
    assert held_somewhere, "no snapshot held a position: the invariant was only checked on a flat book"
    dagster_db.dispose()
    ledger_db.dispose()

    print(
        f"[deploy] {len(done)} cycles succeeded of {len(trading)} requested (tolerated during the code-server restart: "
        f"{sorted(r[:8] for r in deployment.tolerated_failures)}), {len(cycles)} ledger cycles, {len(snapshots)} snapshots, "
        f"{len(schedule_runs)} performance_intraday runs ({[r.status for r in schedule_runs]})"
    )
    for name, seconds in timings.items():
        print(f"[deploy] {name}: {seconds:.1f} s")
