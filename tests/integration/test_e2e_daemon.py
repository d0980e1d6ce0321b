"""End to end: the real Dagster daemon trades on its own, and picks up where it left off after a crash.

What runs is what ``make run`` runs, minus the web UI: ``dagster-daemon run -w workspace.yaml``
against a temporary DAGSTER_HOME (the repo's dagster.yaml copied in) and a temporary, migrated
SQLite ledger. The daemon loads the ``tradepipe`` code location in its own gRPC code server; the
``trading_cycle_sensor`` requests one run per closed 15 s bar; the queued-run coordinator launches
each run in a subprocess (the real launch path). Nothing in this test calls the trading code
directly: it only starts, kills and restarts processes and reads Dagster's run storage and the
ledger.

Phase 1: the daemon runs until at least two trading_cycle runs succeeded for distinct bars, every
agent wrote signals and at least one order filled. The synthetic market's seed is picked when the
test starts (bars are wall-clock bars, so no fixed seed is sure to trade now): the first seed whose
bars over the next ten minutes all make a fresh book place an order. The first cycle then places
orders and the second fills them at the next bar's open.

Phase 2: the daemon's whole process group is SIGKILLed (no shutdown hooks) right after a run
succeeded, started again on the same DAGSTER_HOME and ledger, and runs until two more cycles
succeeded. The sensor's cursor must have carried on (newer bars only, no bar twice), no
client_order_id twice, no two runs at once, and the books balance on every snapshot.

Phase 3: with the restarted daemon still trading, the README's backfill commands are run
as printed (a 20-day ``dagster job backfill -w workspace.yaml`` of ``performance_job`` queued for the
daemon, and a one-day ``dagster asset materialize``). Trading keeps its slot: at no moment do runs
other than trading cycles hold every one of the queue's slots (the backfill has its own lane,
tradepipe/config/run_pools.py), so a cycle never waits for a backfill run to end; this is read from the
runs' own dequeue and end events, so it holds on a busy machine too, where queue waits in seconds do
not. Cycles keep trading beside the backfill (none found stale), and the backfill's runs succeed (the
test waits for the first). The queue waits in seconds are printed.

Timings are printed (``-s``). Per-phase wait: TRADEPIPE_TEST_E2E_PHASE_SECONDS (default 300); bar
length: TRADEPIPE_TEST_E2E_TIMEFRAME (default 15s).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from tradepipe.core.timeframes import parse_utc_ms

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
JOB = "trading_cycle"
SENSOR = "trading_cycle_sensor"
BAR_TAG = "tradepipe/bar_open"
RUN_KEY_TAG = "dagster/run_key"
AGENTS = ("momentum", "trend", "mean_reversion", "breakout", "sentiment")
# A run takes ~5 s (4.6 s measured): orders fill only if the next bar's cycle runs, so bars
# must outlast a run. On a much slower machine set TRADEPIPE_TEST_E2E_TIMEFRAME (e.g. 60s).
TIMEFRAME = os.environ.get("TRADEPIPE_TEST_E2E_TIMEFRAME", "15s")
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT", "XRP/USDT")
MAX_POSITION_FRACTION = "0.5"
PHASE_SECONDS = float(os.environ.get("TRADEPIPE_TEST_E2E_PHASE_SECONDS", "300"))
SEED_HORIZON_S = 600  # every bar in this window must make a fresh book trade
POLL_S = 0.5
SENSOR_INTERVAL_S = 2
BACKFILL_DAYS = 20


# --------------------------------------------------------------------------- processes


@dataclass
class Daemon:
    label: str
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path
    started: float = field(default_factory=time.monotonic)


def _default_signals() -> None:
    # A shell or tool may have left SIGINT/SIGTERM ignored; dagster must see them to shut down.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def start_daemon(label: str, env: dict[str, str], workdir: Path) -> Daemon:
    stdout, stderr = workdir / f"daemon-{label}.out", workdir / f"daemon-{label}.err"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "-w", str(REPO / "workspace.yaml")],
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: code server and run workers die with it
            preexec_fn=_default_signals,
        )
    return Daemon(label, process, stdout, stderr)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_daemon(daemon: Daemon, sig: int = signal.SIGTERM, grace_s: float = 20.0) -> None:
    """Signal the daemon's whole process group; SIGKILL whatever is left after ``grace_s``."""
    pgid = daemon.process.pid  # start_new_session: the daemon leads its own group
    for current in (sig, signal.SIGKILL):
        if not _group_alive(pgid):
            break
        try:
            os.killpg(pgid, current)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + (grace_s if current != signal.SIGKILL else 10.0)
        while time.monotonic() < deadline and _group_alive(pgid):
            if daemon.process.poll() is None:
                try:
                    daemon.process.wait(timeout=0.2)
                except subprocess.TimeoutExpired:
                    pass
            else:
                time.sleep(0.2)
    if daemon.process.poll() is None:
        daemon.process.wait(timeout=10)


def tail(path: Path, lines: int = 60) -> str:
    if not path.exists():
        return f"({path.name} missing)"
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


# --------------------------------------------------------------------------- seed


def choose_seed(start_ms: int) -> int:
    """The first seed for which every bar in the next SEED_HORIZON_S makes a fresh book order."""
    from tradepipe.adapters.market import SyntheticMarket
    from tradepipe.core.agents import get_agents, max_history_needed
    from tradepipe.core.cycle import CycleInputs, run_cycle
    from tradepipe.core.ledger import Portfolio
    from tradepipe.core.risk import RiskLimits
    from tradepipe.core.timeframes import timeframe_ms
    from tradepipe.core.types import AgentContext, MarketRules
    from tradepipe.core.paper import PAPER_RULES
    from tradepipe.config.settings import load_settings

    settings = load_settings(
        timeframe=TIMEFRAME, symbols=",".join(SYMBOLS), max_position_fraction=float(MAX_POSITION_FRACTION)
    )
    agents = get_agents(settings.agents)
    history = max(settings.history_bars, max_history_needed(agents) + 5)
    step = timeframe_ms(TIMEFRAME)
    limits = RiskLimits(
        max_position_fraction=settings.max_position_fraction,
        max_gross_exposure=settings.max_gross_exposure,
        max_turnover_fraction=settings.max_turnover_fraction,
        stop_loss_fraction=settings.stop_loss_fraction,
        daily_loss_limit_fraction=settings.daily_loss_limit_fraction,
    )
    rules = {s: MarketRules(symbol=s, **PAPER_RULES) for s in SYMBOLS}
    first = (start_ms // step) * step - step

    def places_orders(market: SyntheticMarket, bar: int) -> bool:
        histories = {s: market.closed_bars(s, TIMEFRAME, bar + step, history) for s in SYMBOLS}
        result = run_cycle(
            CycleInputs(
                book=settings.book, bar_open_ms=bar, timeframe_ms=step, histories=histories, unavailable={},
                agents=agents, context=AgentContext(now_ms=bar + step), weights=settings.default_weights,
                portfolio=Portfolio(cash=settings.starting_cash), pending=[], rules=rules, limits=limits,
                fee_bps=settings.fee_bps, slippage_bps=settings.slippage_bps,
                day_start_equity=settings.starting_cash, halted=False, last_marks={},
            )
        )
        return bool(result.plan.orders)

    for seed in range(500):
        market = SyntheticMarket(seed, SYMBOLS)
        if all(places_orders(market, bar) for bar in range(first, first + SEED_HORIZON_S * 1000, step)):
            return seed
    pytest.fail("no synthetic seed in 0..499 trades on every bar of the next ten minutes")


# --------------------------------------------------------------------------- observation


def ledger(db_path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    connection.row_factory = sqlite3.Row
    return connection


def query(db_path: Path, sql: str) -> list[sqlite3.Row]:
    connection = ledger(db_path)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


@dataclass(frozen=True)
class Observation:
    runs: list[Any]  # RunRecords of trading_cycle, oldest first
    agents: set[str]
    fills: int
    orders: int

    def with_status(self, *statuses: Any) -> list[Any]:
        return [r for r in self.runs if r.dagster_run.status in statuses]

    @property
    def succeeded(self) -> list[Any]:
        from dagster import DagsterRunStatus

        return self.with_status(DagsterRunStatus.SUCCESS)

    @property
    def in_flight(self) -> list[Any]:
        return [r for r in self.runs if not r.dagster_run.is_finished]


def observe(instance: Any, db_path: Path) -> Observation:
    from dagster import RunsFilter

    runs = sorted(instance.get_run_records(RunsFilter(job_name=JOB)), key=lambda r: r.create_timestamp)
    try:
        agents = {row[0] for row in query(db_path, "SELECT DISTINCT agent_name FROM signals")}
        fills = query(db_path, "SELECT COUNT(*) FROM fills")[0][0]
        orders = query(db_path, "SELECT COUNT(*) FROM orders")[0][0]
    except sqlite3.OperationalError:  # locked for longer than the timeout: try again next poll
        agents, fills, orders = set(), 0, 0
    return Observation(runs, agents, fills, orders)


def run_failures(instance: Any, runs: list[Any]) -> str:
    """The failure, engine and error events of ``runs``: why each did not succeed."""
    from dagster import DagsterEventType

    shown = (DagsterEventType.STEP_FAILURE, DagsterEventType.RUN_FAILURE, DagsterEventType.ENGINE_EVENT)
    lines = []
    for record in runs:
        run = record.dagster_run
        lines.append(f"run {run.run_id} (bar {run.tags.get(BAR_TAG)}) {run.status.value}:")
        for entry in instance.all_logs(run.run_id):
            event = entry.dagster_event
            if event is None or event.event_type in shown:
                kind = event.event_type_value if event is not None else entry.level
                lines.append(f"  {kind}: {entry.message}")
                error = getattr(getattr(event, "event_specific_data", None), "error", None)
                if error is not None:
                    lines.append("    " + error.to_string().replace("\n", "\n    "))
    return "\n".join(lines)


def wait_for(
    what: str,
    instance: Any,
    db_path: Path,
    daemon: Daemon,
    t0: float,
    done: Any,
    timeline: dict[str, float],
    tolerated: frozenset[str] = frozenset(),
) -> Observation:
    """Poll until ``done(observation)``; fail at once on a failed run (other than ``tolerated``) or a dead daemon."""
    from dagster import DagsterRunStatus

    deadline = time.monotonic() + PHASE_SECONDS
    while True:
        now = time.monotonic()
        observation = observe(instance, db_path)
        for record in observation.runs:
            run = record.dagster_run
            key = f"{run.run_id}:{run.status.value}"
            if key not in timeline:
                timeline[key] = now - t0
                print(f"  [{now - t0:6.1f}s] run {run.run_id[:8]} bar {run.tags.get(BAR_TAG)} {run.status.value}", flush=True)
        failed = [
            r for r in observation.with_status(DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)
            if r.dagster_run.run_id not in tolerated
        ]
        if failed:
            pytest.fail(f"{what}: a trading_cycle run did not succeed\n{run_failures(instance, failed)}", pytrace=False)
        if done(observation):
            return observation
        if daemon.process.poll() is not None:
            pytest.fail(f"{what}: dagster-daemon ({daemon.label}) exited with {daemon.process.returncode}", pytrace=False)
        if now > deadline:
            pytest.fail(
                f"{what}: not reached within {PHASE_SECONDS:.0f} s: {len(observation.succeeded)} runs succeeded, "
                f"{len(observation.in_flight)} in flight, agents {sorted(observation.agents)}, "
                f"{observation.orders} orders, {observation.fills} fills",
                pytrace=False,
            )
        time.sleep(POLL_S)


def sensor_cursor(instance: Any) -> str | None:
    from dagster._core.scheduler.instigation import InstigatorType

    for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
        if state.name == SENSOR and state.instigator_data is not None:
            return state.instigator_data.cursor
    return None


def readme_commands(marker: str, replacements: dict[str, str]) -> list[list[str]]:
    """The README's shell commands (in its code blocks) containing ``marker``, as printed, as argv.

    Continuation lines are joined; the ``DAGSTER_HOME=$PWD/...`` prefix (the test passes its own
    instance in the environment) and the ``.venv/bin/`` path (the test's interpreter) are the only
    things adapted, and the dates are replaced as given."""
    import shlex

    text = (REPO / "README.md").read_text().replace("\\\n", " ")
    commands, in_code = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
            continue
        if not in_code or marker not in line or line.lstrip().startswith("#"):
            continue
        for old, new in replacements.items():
            line = line.replace(old, new)
        argv = shlex.split(line)
        assert argv[0] == "DAGSTER_HOME=$PWD/.tradepipe/dagster" and argv[1] == ".venv/bin/dagster", line
        commands.append([str(BIN / "dagster"), *argv[2:]])
    assert commands, f"no README command with {marker!r}"
    return commands


def queue_wait_s(instance: Any, run_id: str) -> float | None:
    """Seconds a run spent in the run queue: from RUN_ENQUEUED to RUN_STARTING (the coordinator took it)."""
    from dagster import DagsterEventType

    times = {}
    for entry in instance.all_logs(run_id, of_type={DagsterEventType.RUN_ENQUEUED, DagsterEventType.RUN_STARTING}):
        times.setdefault(entry.dagster_event.event_type, entry.timestamp)
    if DagsterEventType.RUN_STARTING not in times or DagsterEventType.RUN_ENQUEUED not in times:
        return None
    return times[DagsterEventType.RUN_STARTING] - times[DagsterEventType.RUN_ENQUEUED]


def slots_held_by_other_runs(instance: Any, job_name: str) -> int:
    """The most runs other than ``job_name`` that held a run-queue slot at one moment: each holds one from
    its dequeue (RUN_STARTING) to its end, or to now if it has not ended."""
    from dagster import DagsterEventType, RunsFilter

    ends = {DagsterEventType.RUN_SUCCESS, DagsterEventType.RUN_FAILURE, DagsterEventType.RUN_CANCELED}
    edges: list[tuple[float, int]] = []
    for record in instance.get_run_records(RunsFilter()):
        if record.dagster_run.job_name == job_name:
            continue
        times: dict[Any, float] = {}
        for entry in instance.all_logs(record.dagster_run.run_id, of_type={DagsterEventType.RUN_STARTING, *ends}):
            kind = entry.dagster_event.event_type
            times.setdefault(DagsterEventType.RUN_SUCCESS if kind in ends else kind, entry.timestamp)
        if DagsterEventType.RUN_STARTING in times:
            # an end sorts before a start at the same instant: the slot was handed over, not shared
            edges += [(times[DagsterEventType.RUN_STARTING], 1), (times.get(DagsterEventType.RUN_SUCCESS, float("inf")), -1)]
    held = most = 0
    for _, step in sorted(edges):
        held += step
        most = max(most, held)
    return most


# --------------------------------------------------------------------------- the test


def test_daemon_trades_by_itself_and_resumes_after_a_crash(tmp_path: Path) -> None:
    from dagster import DagsterInstance, DagsterRunStatus

    from tradepipe.adapters.db.engine import get_engine, upgrade

    t0 = time.monotonic()
    timings: dict[str, float] = {}
    timeline: dict[str, float] = {}
    dagster_home = tmp_path / "dagster"
    trade_home = tmp_path / "home"
    dagster_home.mkdir()
    trade_home.mkdir()
    shutil.copy(REPO / "dagster.yaml", dagster_home / "dagster.yaml")
    db_path = tmp_path / "ledger.sqlite"
    database_url = f"sqlite:///{db_path}"
    upgrade(database_url)
    get_engine(database_url).dispose()
    timings["migrate"] = time.monotonic() - t0

    seed = choose_seed(int(time.time() * 1000))
    timings["choose seed"] = time.monotonic() - t0 - timings["migrate"]
    print(f"\n[e2e] seed {seed} (chosen in {timings['choose seed']:.1f} s), symbols {','.join(SYMBOLS)}, {TIMEFRAME} bars")

    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADEPIPE_", "DAGSTER_")) or k.startswith("TRADEPIPE_TEST_")}
    env.update(
        DAGSTER_HOME=str(dagster_home),
        TRADEPIPE_HOME=str(trade_home),
        TRADEPIPE_DATABASE_URL=database_url,
        TRADEPIPE_TIMEFRAME=TIMEFRAME,
        TRADEPIPE_SENSOR_INTERVAL_SECONDS=str(SENSOR_INTERVAL_S),
        TRADEPIPE_SEED=str(seed),
        TRADEPIPE_SYMBOLS=",".join(SYMBOLS),
        TRADEPIPE_MAX_POSITION_FRACTION=MAX_POSITION_FRACTION,
        PYTHONUNBUFFERED="1",
    )

    instance = DagsterInstance.from_config(str(dagster_home))
    daemons: list[Daemon] = []
    try:
        # ---- phase 1: trade by itself
        daemons.append(start_daemon("first", env, tmp_path))
        phase1 = time.monotonic()
        print("[e2e] phase 1: dagster-daemon started; waiting for 2 successful cycles, all agents' signals and a fill")

        def traded(o: Observation) -> bool:
            bars = {r.dagster_run.tags.get(BAR_TAG) for r in o.succeeded}
            return len(bars) >= 2 and set(AGENTS) <= o.agents and o.fills >= 1

        first = wait_for("phase 1", instance, db_path, daemons[-1], t0, traded, timeline)
        timings["phase 1 (start -> 2 cycles + fill)"] = time.monotonic() - phase1

        # ---- crash: SIGKILL the whole group right after a run succeeded (no shutdown hooks run)
        stop_daemon(daemons[-1], signal.SIGKILL)
        killed_at = time.monotonic()
        after_kill = observe(instance, db_path)
        orphans = [
            r for r in after_kill.in_flight
            if r.dagster_run.status in (DagsterRunStatus.STARTING, DagsterRunStatus.STARTED)
        ]
        orphan_ids = frozenset(r.dagster_run.run_id for r in orphans)
        queued = [r.dagster_run.run_id[:8] for r in after_kill.in_flight if r.dagster_run.run_id not in orphan_ids]
        print(
            f"[e2e] SIGKILLed the daemon's process group after {len(first.succeeded)} successful cycles "
            f"({first.fills} fills); in flight at the kill: queued {queued or 'none'}, "
            f"running {[r.dagster_run.run_id[:8] for r in orphans] or 'none'}"
        )
        for record in orphans:
            # Known limitation (see the report): the DefaultRunLauncher cannot check a run worker's health,
            # so a run whose worker died with the daemon stays STARTED for ever and the sensor, which skips
            # while a cycle is in flight, would never trade again. Do what the operator would do.
            print(f"[e2e] WARNING: run {record.dagster_run.run_id} died with the daemon; marking it failed")
            instance.report_run_failed(record.dagster_run, "its run worker was SIGKILLed with the daemon (e2e test)")
        cursor_before = sensor_cursor(instance)
        ids_before = {r.dagster_run.run_id for r in after_kill.runs}
        bars_before = [parse_utc_ms(r.dagster_run.tags[BAR_TAG]) for r in after_kill.runs]

        # ---- phase 2: restart on the same DAGSTER_HOME and ledger
        daemons.append(start_daemon("restarted", env, tmp_path))
        phase2 = time.monotonic()
        n_before = len(first.succeeded)
        print(f"[e2e] phase 2: restarted {phase2 - killed_at:.1f} s after the kill (cursor {cursor_before}); waiting for 2 more cycles")

        def resumed(o: Observation) -> bool:
            return len(o.succeeded) >= n_before + 2

        wait_for("phase 2", instance, db_path, daemons[-1], t0, resumed, timeline, orphan_ids)
        timings["phase 2 (restart -> 2 more cycles)"] = time.monotonic() - phase2

        # ---- phase 3: the README's backfill commands beside the trading sensor
        from dagster import RunsFilter

        phase3 = time.monotonic()
        today = datetime.now(timezone.utc).date()
        first_day, last_day = (today - timedelta(days=BACKFILL_DAYS + 1)), (today - timedelta(days=2))
        one_day = (today - timedelta(days=1)).isoformat()
        dates = {"2026-11-01": first_day.isoformat(), "2026-11-20": last_day.isoformat()}
        (backfill,) = readme_commands("dagster job backfill", dates)
        (materialize,) = readme_commands("dagster asset materialize", {"2026-11-20": one_day})
        n_phase3 = len(observe(instance, db_path).succeeded)
        print(f"[e2e] phase 3: {' '.join(backfill[1:])}")
        launched = subprocess.run(backfill, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
        assert launched.returncode == 0, launched.stdout + launched.stderr
        backfill_started = time.monotonic()
        print(f"[e2e] phase 3: backfill of {BACKFILL_DAYS} days queued in {backfill_started - phase3:.1f} s; "
              f"{' '.join(materialize[1:])} beside it")
        materialized = subprocess.Popen(materialize, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

        def beside_backfill(o: Observation) -> bool:
            runs = [r for r in instance.get_run_records(RunsFilter(job_name="performance_job")) if "dagster/backfill" in r.dagster_run.tags]
            failed = [r for r in runs if r.dagster_run.status in (DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)]
            if failed:
                pytest.fail(f"phase 3: a backfill run failed\n{run_failures(instance, failed)}", pytrace=False)
            done = [r for r in runs if r.dagster_run.status == DagsterRunStatus.SUCCESS]
            return len(runs) == BACKFILL_DAYS and len(done) >= 1 and len(o.succeeded) >= n_phase3 + 3

        baseline = [w for w in (queue_wait_s(instance, r.dagster_run.run_id) for r in observe(instance, db_path).succeeded) if w is not None]
        wait_for("phase 3", instance, db_path, daemons[-1], t0, beside_backfill, timeline, orphan_ids)
        assert materialized.wait(timeout=240) == 0, materialized.stdout.read() if materialized.stdout else ""
        timings["phase 3 (backfill queued -> 1 backfill run + 3 cycles)"] = time.monotonic() - backfill_started
        during = [r for r in observe(instance, db_path).succeeded[n_phase3:]]
        waits = [w for w in (queue_wait_s(instance, r.dagster_run.run_id) for r in during) if w is not None]
        unfinished = [r for r in instance.get_run_records(RunsFilter(job_name="performance_job")) if not r.dagster_run.is_finished]
        print(f"[e2e] phase 3: trading cycles' run-queue waits without a backfill: {', '.join(f'{w:.1f}' for w in baseline)} s; "
              f"beside it: {', '.join(f'{w:.1f}' for w in waits)} s; {len(unfinished)} backfill runs still queued or running")
        # Before the lanes, a cycle waited ~150 s behind four backfill runs holding every slot. The lanes leave a cycle
        # one slot whatever the load: a count of slots, not a wait in seconds, which a busy host stretches.
        slots = yaml.safe_load((REPO / "dagster.yaml").read_text())["concurrency"]["runs"]["max_concurrent_runs"]
        assert waits, "no trading cycle was dequeued beside the backfill"
        assert slots_held_by_other_runs(instance, JOB) < slots, f"other runs held all {slots} slots of the run queue"
        stop_started = time.monotonic()
        stop_daemon(daemons[-1], signal.SIGTERM)
        timings["graceful stop (SIGTERM)"] = time.monotonic() - stop_started

        # ---- what Dagster recorded
        final = observe(instance, db_path)
        for record in final.in_flight:  # a run queued or launched just before the stop
            instance.report_run_failed(record.dagster_run, "the daemon was stopped at the end of the e2e test")
        final = observe(instance, db_path)
        succeeded = final.succeeded
        assert len(succeeded) >= n_before + 2
        bars = [parse_utc_ms(r.dagster_run.tags[BAR_TAG]) for r in succeeded]
        run_keys = [r.dagster_run.tags.get(RUN_KEY_TAG) for r in succeeded]
        assert len(set(bars)) == len(bars), f"a bar was traded twice: {bars}"
        assert None not in run_keys and len(set(run_keys)) == len(run_keys), run_keys
        assert all(key.endswith(f":{bar}") for key, bar in zip(run_keys, bars)), list(zip(run_keys, bars))
        all_bars = [parse_utc_ms(r.dagster_run.tags[BAR_TAG]) for r in final.runs]
        assert all_bars == sorted(all_bars) and len(set(all_bars)) == len(all_bars), (
            f"the sensor requested bars out of order or twice (cursor did not carry on): {all_bars}"
        )
        restart_bars = [parse_utc_ms(r.dagster_run.tags[BAR_TAG]) for r in final.runs if r.dagster_run.run_id not in ids_before]
        assert restart_bars and min(restart_bars) > max(bars_before), (bars_before, restart_bars)
        cursor_after = sensor_cursor(instance)
        assert cursor_before is not None and cursor_after is not None
        assert parse_utc_ms(cursor_after) == max(all_bars) and parse_utc_ms(cursor_after) > parse_utc_ms(cursor_before)
        spans = sorted((r.start_time, r.end_time, r.dagster_run.run_id) for r in succeeded)
        for (_, end_a, id_a), (start_b, _, id_b) in zip(spans, spans[1:]):
            assert end_a is not None and start_b >= end_a, f"runs {id_a} and {id_b} overlapped"
        durations = [end - start for start, end, _ in spans]

        # ---- what the ledger recorded
        cycles = query(db_path, "SELECT bar_ts, status, run_id FROM trading_cycles ORDER BY bar_ts")
        assert len({c["bar_ts"] for c in cycles}) == len(cycles)
        assert all(c["status"] == "succeeded" for c in cycles), [tuple(c) for c in cycles]
        cycle_runs = {c["run_id"] for c in cycles}
        assert {r.dagster_run.run_id for r in succeeded} <= cycle_runs, "a successful run left no trading_cycles row"
        assert len(cycles) <= len(final.runs)
        signals = {row[0]: row[1] for row in query(db_path, "SELECT agent_name, COUNT(*) FROM signals GROUP BY agent_name")}
        assert set(AGENTS) <= set(signals), signals
        sentiment = query(db_path, "SELECT COUNT(*), SUM(abstained) FROM signals WHERE agent_name = 'sentiment'")[0]
        assert sentiment[0] == sentiment[1], "without a news feed the sentiment agent must abstain"
        duplicated = query(db_path, "SELECT client_order_id, COUNT(*) FROM orders GROUP BY client_order_id HAVING COUNT(*) > 1")
        assert not duplicated, [tuple(d) for d in duplicated]
        double_fills = query(db_path, "SELECT client_order_id FROM fills GROUP BY client_order_id HAVING COUNT(*) > 1")
        assert not double_fills, [tuple(d) for d in double_fills]
        fills = query(db_path, "SELECT f.client_order_id, o.status FROM fills f JOIN orders o ON o.id = f.order_id")
        assert fills and all(f["status"] == "filled" for f in fills)
        orders = query(db_path, "SELECT status, COUNT(*) FROM orders GROUP BY status")
        snapshots = query(db_path, "SELECT bar_ts, cash, positions_value, equity, positions FROM portfolio_snapshots ORDER BY bar_ts")
        assert len(snapshots) == len(cycles)
        for snapshot in snapshots:
            held = json.loads(snapshot["positions"] or "{}")
            value = sum((Decimal(p["quantity"]) * Decimal(p["mark"]) for p in held.values()), Decimal(0))
            assert Decimal(snapshot["positions_value"]) == value, snapshot["bar_ts"]
            assert Decimal(snapshot["equity"]) == Decimal(snapshot["cash"]) + value, (
                f"equity != cash + sum(quantity x mark) at {snapshot['bar_ts']}"
            )
        last = snapshots[-1]
        # the stored cash and positions are a replay of the fills
        cash, replayed = Decimal(10000), {}
        for fill in query(db_path, "SELECT symbol, side, quantity, notional, fee FROM fills ORDER BY id"):
            sign = 1 if fill["side"] == "buy" else -1
            cash += -sign * Decimal(fill["notional"]) - Decimal(fill["fee"])
            replayed[fill["symbol"]] = replayed.get(fill["symbol"], Decimal(0)) + sign * Decimal(fill["quantity"])
        assert Decimal(last["cash"]) == cash, "the last snapshot's cash is not a replay of the fills"
        assert {s: Decimal(p["quantity"]) for s, p in json.loads(last["positions"] or "{}").items()} == {
            s: q for s, q in replayed.items() if q != 0
        }

        # ---- what the trader sees
        status_started = time.monotonic()
        shown = subprocess.run(
            [str(BIN / "tradepipe"), "status", "--json"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        timings["tradepipe status --json"] = time.monotonic() - status_started
        assert shown.returncode == 0, shown.stderr
        report = json.loads(shown.stdout)
        assert report["portfolio"] is not None
        assert Decimal(report["portfolio"]["equity"]) == Decimal(last["equity"]).quantize(Decimal("0.01"))
        assert Decimal(report["portfolio"]["cash"]) == Decimal(last["cash"]).quantize(Decimal("0.01"))
        held_now = {row["symbol"] for row in query(db_path, "SELECT symbol FROM positions WHERE quantity != '0'")}
        assert {p["symbol"] for p in report["positions"]} == held_now
        assert set(json.loads(last["positions"] or "{}")) == held_now
        assert report["last_cycle"]["status"] == "succeeded"
        last_bar = datetime.fromisoformat(cycles[-1]["bar_ts"]).replace(tzinfo=timezone.utc)
        assert datetime.fromisoformat(report["last_cycle"]["bar"]) == last_bar
        assert datetime.fromisoformat(report["portfolio"]["as_of_bar"]) == last_bar
        assert report["last_cycle"]["timeframe"] == TIMEFRAME and report["last_cycle"]["market_source"] == "synthetic"
        assert report["counts"]["cycles"] == len(cycles) and report["counts"]["fills"] == len(fills)

        total = time.monotonic() - t0
        print(
            f"[e2e] {len(succeeded)} cycles succeeded ({n_before} before the kill), bars {bars}; "
            f"{len(cycles)} ledger cycles, signals {signals}, orders {dict((o[0], o[1]) for o in orders)}, {len(fills)} fills"
        )
        print(f"[e2e] last snapshot: equity {report['portfolio']['equity']} cash {report['portfolio']['cash']}, positions {sorted(held_now)}")
        print(f"[e2e] run wall times (start -> end): {', '.join(f'{d:.1f}' for d in durations)} s")
        for name, seconds in timings.items():
            print(f"[e2e] {name}: {seconds:.1f} s")
        print(f"[e2e] total {total:.1f} s")
    except BaseException:
        for daemon in daemons:
            print(f"\n----- dagster-daemon ({daemon.label}) stdout tail -----\n{tail(daemon.stdout)}")
            print(f"----- dagster-daemon ({daemon.label}) stderr tail -----\n{tail(daemon.stderr)}")
        raise
    finally:
        for daemon in daemons:
            if daemon.process.poll() is None or _group_alive(daemon.process.pid):
                stop_daemon(daemon, signal.SIGTERM, grace_s=10)
        instance.dispose()
