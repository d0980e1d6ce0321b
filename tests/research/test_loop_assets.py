"""The self-improvement loop as real Dagster runs on a migrated ledger: a generation's candidates become
dynamic partitions, each evaluated in its own run, then selected into ``live_pool`` by the documented
rules; ``tradepipe variants`` shows the same rows; an interrupted generation resumes and a selection that
dies leaves the pool as it was; bad rows are one line and promote nothing; ``ml_model`` is monthly."""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pytest
from click.testing import CliRunner
from scipy.stats import norm
from sqlalchemy import select
from sqlalchemy.orm import Session

from tradepipe.adapters.db.engine import get_engine, upgrade
from tradepipe.adapters.db.models import MlModelRow, StrategyVariantEventRow, StrategyVariantRow
from tradepipe.adapters.db.research import pool_members, variant_by_name, variant_events
from tradepipe.assets.variants import live_pool, live_pool_within_rules, ml_model, variant_candidates, variant_evaluations, variant_partitions
from tradepipe.cli.main import main
from tradepipe.config.rules import book_rules
from tradepipe.config.settings import Settings, load_settings
from tradepipe.research.data import load_market
from tradepipe.research.evaluation import window_rows, window_streams
from tradepipe.research.regimes import slow_trend_bars
from tradepipe.research.variants import longest_window, make_variant
from tradepipe.resources import build_resources

SYMBOLS = "AAA/USDT,BBB/USDT"
DAYS = 150


def _write_market(folder: Path, days: int = DAYS) -> Path:
    """A SYNTHETIC slow-trend market (the planted edge of docs/self-improvement.md) as candle files."""
    folder.mkdir(parents=True, exist_ok=True)
    for offset, symbol in enumerate(("AAA_USDT", "BBB_USDT")):
        bars = slow_trend_bars(days * 24, seed=3, drift=0.001, symbol_offset=offset)
        lines = ["timestamp,datetime,open,high,low,close,volume"]
        for i in range(bars["timestamp"].size):
            stamp = int(bars["timestamp"][i])
            when = np.datetime64(stamp, "ms").astype("datetime64[s]").astype(str) + "Z"
            lines.append(f"{stamp},{when},{float(bars['open'][i])!r},{float(bars['high'][i])!r},{float(bars['low'][i])!r},{float(bars['close'][i])!r},1000.0")
        (folder / f"{symbol}-1h.csv").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture(scope="module")
def market_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_market(tmp_path_factory.mktemp("planted") / "slow_trend")


class Loop:
    """One ledger, one Dagster instance and the runs a user (or the sensor) would launch."""

    def __init__(self, settings: Settings, market_dir: Path, instance: dg.DagsterInstance) -> None:
        self.settings, self.market_dir, self.instance = settings, market_dir, instance
        self.resources = build_resources(settings, "test")
        self.engine = get_engine(settings.resolved_database_url)

    def candidates(self, **config: Any) -> dg.ExecuteInProcessResult:
        run_config = {"ops": {"variant_candidates": {"config": {"data_dir": str(self.market_dir), "candidates": 12, "mutations": 1, **config}}}}
        return dg.materialize([variant_candidates], resources=self.resources, run_config=run_config, instance=self.instance)

    def evaluate(self, name: str, raise_on_error: bool = True) -> dg.ExecuteInProcessResult:
        return dg.materialize([variant_evaluations], partition_key=name, resources=self.resources, instance=self.instance, raise_on_error=raise_on_error)

    def select(self, raise_on_error: bool = True) -> dg.ExecuteInProcessResult:
        return dg.materialize([live_pool, live_pool_within_rules], resources=self.resources, instance=self.instance, raise_on_error=raise_on_error)

    def partitions(self) -> list[str]:
        return list(self.instance.get_dynamic_partitions(variant_partitions.name))

    def rows(self) -> list[StrategyVariantRow]:
        with Session(self.engine) as session:
            return list(session.scalars(select(StrategyVariantRow).order_by(StrategyVariantRow.name)))

    def pool(self) -> list[str]:
        with Session(self.engine) as session:
            return sorted(r.name for r in pool_members(session))


def _failure(result: dg.ExecuteInProcessResult, node: str) -> str:
    failure = result.failure_data_for_node(node)
    assert failure is not None and failure.error is not None
    return str(failure.error.message).strip().removeprefix("dagster._core.definitions.events.Failure: ")


def _metadata(result: dg.ExecuteInProcessResult, node: str) -> dict[str, Any]:
    return result.asset_materializations_for_node(node)[0].metadata


@pytest.fixture
def sqlite_loop(tmp_path: Path, market_dir: Path) -> Loop:
    settings = load_settings(home=tmp_path / "home", symbols=SYMBOLS, allow_short=True)
    (tmp_path / "home").mkdir()
    upgrade(settings.resolved_database_url)
    return Loop(settings, market_dir, dg.DagsterInstance.ephemeral())


def _dsr_by_hand(returns: np.ndarray, trials: int) -> float:
    """Bailey and Lopez de Prado's DSR transcribed from the paper (per-period Sharpe, null variance 1/(T-1))."""
    t = returns.size
    sr = returns.mean() / returns.std(ddof=1)
    skew = float(np.mean((returns - returns.mean()) ** 3) / returns.std(ddof=0) ** 3) * math.sqrt(t * (t - 1)) / (t - 2)
    from scipy.stats import kurtosis

    kurt = float(kurtosis(returns, fisher=False, bias=False))
    gamma = 0.5772156649015329
    sr0 = math.sqrt(1.0 / (t - 1)) * ((1 - gamma) * norm.ppf(1 - 1 / trials) + gamma * norm.ppf(1 - 1 / (trials * math.e)))
    return float(norm.cdf((sr - sr0) * math.sqrt(t - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)))


def test_a_generation_fans_out_into_partitions_and_is_selected_by_the_rules(sqlite_loop: Loop, monkeypatch: pytest.MonkeyPatch) -> None:
    loop = sqlite_loop
    proposed = _metadata(loop.candidates(), "variant_candidates")
    names = proposed["partitions"].value
    assert proposed["generation"].value == 1 and len(names) == 12
    assert sorted(loop.partitions()) == sorted(names)  # one dynamic partition per candidate
    assert {r.name: r.status for r in loop.rows()} == {n: "candidate" for n in names}

    # Selecting before every candidate is evaluated changes nothing and says what is missing.
    early = loop.select(raise_on_error=False)
    assert not early.success
    assert _failure(early, "live_pool").startswith("generation 1: 12 of 12 candidates not evaluated yet")

    for name in names:  # what a backfill of variant_evaluation_job does: one run per partition
        evaluated = _metadata(loop.evaluate(name), "variant_evaluations")
        assert evaluated["trials"].value == 12 and 0.0 <= evaluated["deflated_sharpe"].value <= 1.0
    # Before the selection the generation's PBO is unknown: a person cannot promote around the rules.
    monkeypatch.setenv("TRADEPIPE_HOME", str(loop.settings.home))
    early_promotion = CliRunner().invoke(main, ["variants", "promote", names[0]])
    assert early_promotion.exit_code == 2
    assert early_promotion.stderr.strip() == f"{names[0]} not promoted: its generation has not been selected yet (PBO unknown; materialise live_pool)"
    rows = {r.name: r for r in loop.rows()}
    assert all(r.status == "evaluated" and r.trials == 12 and r.pbo is None for r in rows.values())

    # The recorded DSR against a transcription of the paper's formula on the candidate's window stream.
    market = load_market(loop.market_dir, SYMBOLS.split(","), "1h")
    best = max(rows.values(), key=lambda r: r.deflated_sharpe or 0.0)
    window = best.metrics["window"]
    stream = window_streams(
        market, [make_variant(best.family or "", best.parameters)], book_rules(loop.settings), longest_window(),
        window_rows(market.timeline, market.step_ms, window["day_ms"], window["lookback_days"]),
    )[:, 0]
    assert best.deflated_sharpe == pytest.approx(_dsr_by_hand(stream, 12), abs=1e-9)

    selected = loop.select()
    metadata = _metadata(selected, "live_pool")
    pool = loop.pool()
    assert pool, "the planted slow trend must give the loop something to promote"
    assert metadata["members"].value == len(pool) <= 5
    with Session(loop.engine) as session:
        for row in session.scalars(select(StrategyVariantRow)):
            decisions = [e.action for e in variant_events(session, row.id)]
            assert decisions[0] == "evaluate" and decisions[-1] in ("promote", "reject", "retire")  # every candidate decided, with a row
            assert row.pbo == pytest.approx(metadata["pbo"].value)
            if row.status == "promoted":
                assert row.deflated_sharpe >= 0.95 and row.metrics["trades"] >= 3 and row.pbo <= 0.5
    assert selected.get_asset_check_evaluations()[0].passed  # live_pool_within_rules
    # Each evaluation partition's page gets the selection's verdict and the generation's PBO.
    observed = {o.partition: o.metadata for o in selected.asset_observations_for_node("live_pool")}
    assert set(observed) == set(names)
    assert all(m["pbo"].value == pytest.approx(metadata["pbo"].value) for m in observed.values())
    assert sorted(n for n, m in observed.items() if m["decision"].value == "promote") == sorted(set(pool) & set(names))

    # The UI's table and `tradepipe variants list` show the same rows in the same order.
    listed = json.loads(CliRunner().invoke(main, ["variants", "list", "--json"]).stdout)
    shown = [record.data for record in metadata["variants"].value.records]
    assert [(r["name"], r["status"], r["deflated_sharpe"], r["trials"], r["pbo"]) for r in listed] == [
        (r["name"], r["status"], r["deflated_sharpe"], r["trials"], r["pbo"]) for r in shown
    ]

    # A human promotion runs the same check: a rejected candidate is refused with the loop's own reason.
    with Session(loop.engine) as session:
        rejected = next(r for r in session.scalars(select(StrategyVariantRow)) if r.status == "evaluated")
        reason = variant_events(session, rejected.id)[-1].reason
    refused = CliRunner().invoke(main, ["variants", "promote", rejected.name])
    assert refused.exit_code == 2
    if "pool full" not in reason:
        assert refused.stderr.strip() == f"{rejected.name} not promoted: {reason}"

    # Selecting again changes nothing; the next generation mutates the members.
    assert _metadata(loop.select(), "live_pool")["action"].value == "generation 1 already selected: pool unchanged"
    assert loop.pool() == pool
    second = _metadata(loop.candidates(), "variant_candidates")
    assert second["generation"].value == 2
    origins = {r.name: r.origin for r in loop.rows() if r.generation == 2}
    assert "mutation" in origins.values() and not set(origins) & set(pool)


def test_an_interrupted_generation_resumes_and_a_failed_selection_promotes_nothing(sqlite_loop: Loop) -> None:
    loop = sqlite_loop
    names = _metadata(loop.candidates(), "variant_candidates")["partitions"].value
    for name in names[:5]:
        loop.evaluate(name)
    # The generation was interrupted: the next scheduled run resumes it instead of proposing another.
    again = _metadata(loop.candidates(seed=7), "variant_candidates")
    assert again["generation"].value == 1 and again["partitions"].value == names
    assert again["action"].value == "resumed generation 1: its selection is not recorded yet"
    assert len(loop.rows()) == 12
    for name in names[5:]:
        loop.evaluate(name)

    # A real fault while the selection writes: another connection holds SQLite's write lock.
    url = loop.settings.resolved_database_url
    locked = load_settings(home=loop.settings.home, symbols=SYMBOLS, allow_short=True, database_statement_timeout_seconds=1)
    blocked = Loop(locked, loop.market_dir, loop.instance)
    holder = sqlite3.connect(url.removeprefix("sqlite:///"))
    holder.execute("BEGIN IMMEDIATE")
    try:
        failed = blocked.select(raise_on_error=False)
    finally:
        holder.rollback()
        holder.close()
    cause = failed.failure_data_for_node("live_pool").error.cause  # type: ignore[union-attr]
    assert not failed.success and cause is not None and "database is locked" in cause.message
    assert loop.pool() == []
    with Session(loop.engine) as session:
        assert not session.scalars(select(StrategyVariantEventRow).where(StrategyVariantEventRow.action.in_(["promote", "reject"]))).first()
        assert all(r.pbo is None for r in session.scalars(select(StrategyVariantRow)))
    # Re-run: the same generation is selected whole.
    assert loop.select().success
    assert loop.pool()
    assert all(r.pbo is not None for r in loop.rows())


def test_bad_rows_are_one_line_and_promote_nothing(sqlite_loop: Loop) -> None:
    loop = sqlite_loop
    names = _metadata(loop.candidates(), "variant_candidates")["partitions"].value
    out_of_bounds, unknown = names[0], names[1]
    with Session(loop.engine) as session, session.begin():
        row = variant_by_name(session, out_of_bounds)
        first = sorted(row.parameters)[0]
        row.parameters = {**row.parameters, first: 10_000}
        variant_by_name(session, unknown).family = "astrology"
    result = loop.evaluate(out_of_bounds, raise_on_error=False)
    message = _failure(result, "variant_evaluations")
    assert message.startswith(f"variant {out_of_bounds}: ") and "outside its bounds" in message and message.endswith("nothing promoted")
    assert "\n" not in message
    message = _failure(loop.evaluate(unknown, raise_on_error=False), "variant_evaluations")
    assert message.startswith(f"variant {unknown}: unknown family 'astrology'") and "\n" not in message
    for name in names[2:]:
        loop.evaluate(name)
    assert not loop.select(raise_on_error=False).success  # two candidates were never evaluated
    assert loop.pool() == []


def test_ml_model_is_monthly_trained_before_its_partition_and_checked_on_load(sqlite_loop: Loop) -> None:
    loop = sqlite_loop
    config = {"ops": {"ml_model": {"config": {"data_dir": str(loop.market_dir), "kinds": ["logistic", "hgb"]}}}}

    def train(month: str, **extra: Any) -> dg.ExecuteInProcessResult:
        run_config = {"ops": {"ml_model": {"config": {**config["ops"]["ml_model"]["config"], **extra}}}}
        return dg.materialize([ml_model], partition_key=month, resources=loop.resources, run_config=run_config, instance=loop.instance, raise_on_error=False)

    assert train("2026-04-01").success
    with Session(loop.engine) as session:
        rows = list(session.scalars(select(MlModelRow).order_by(MlModelRow.id)))
    assert [r.kind for r in rows] == ["logistic", "hgb"]
    for row in rows:
        assert row.partition_key == "2026-04-01" and row.train_end is not None
        held_out_from = datetime(2026, 3, 2, tzinfo=UTC)  # the 30 days before April are out of sample
        assert row.train_end.replace(tzinfo=UTC) == held_out_from
        assert row.metrics["last_label_close_ms"] <= held_out_from.timestamp() * 1000
        assert row.metrics["oos_rows"] > 0 and row.features and row.hyperparameters
        assert hashlib.sha256(Path(row.artifact_path or "").read_bytes()).hexdigest() == row.sha256
    promoted = [r for r in rows if r.status == "promoted"]
    assert promoted, [r.reason for r in rows]

    # A training that fails keeps the promoted model, with the reason.
    failed = train("2026-05-01", kinds=[promoted[0].kind], horizon=10_000)
    assert failed.success
    with Session(loop.engine) as session:
        last = session.scalars(select(MlModelRow).order_by(MlModelRow.id.desc())).first()
        assert last.status == "failed" and f"model {promoted[0].name} stays promoted" in last.reason
        assert session.get(MlModelRow, promoted[0].id).status == "promoted"

    # An artifact whose bytes changed: one line, nothing promoted, the old row stays as it was.
    Path(promoted[0].artifact_path or "").write_bytes(b"tampered")
    tampered = train("2026-05-01", kinds=[promoted[0].kind])
    message = _failure(tampered, "ml_model")
    assert "sha256" in message and "differs from the recorded" in message and "\n" not in message
    with Session(loop.engine) as session:
        assert session.get(MlModelRow, promoted[0].id).status == "promoted"
        assert [r.status for r in session.scalars(select(MlModelRow).where(MlModelRow.partition_key == "2026-05-01", MlModelRow.status != "failed"))] == ["trained"]


@pytest.mark.postgres
def test_the_loop_runs_on_postgresql(postgres_url: str, tmp_path: Path, market_dir: Path) -> None:
    settings = load_settings(home=tmp_path / "home", symbols=SYMBOLS, allow_short=True, database_url=postgres_url)
    upgrade(postgres_url)
    with dg.instance_for_test() as instance:
        loop = Loop(settings, market_dir, instance)
        names = _metadata(loop.candidates(candidates=6, mutations=0), "variant_candidates")["partitions"].value
        assert sorted(loop.partitions()) == sorted(names)
        for name in names:
            loop.evaluate(name)
        assert loop.select().success
        rows = loop.rows()
        assert all(r.trials == 6 and r.pbo is not None and r.status in ("evaluated", "promoted") for r in rows)
        with Session(loop.engine) as session:
            assert all(variant_events(session, r.id)[-1].action in ("promote", "reject") for r in rows)


def test_the_sensor_fans_a_generation_out_then_asks_for_the_selection(sqlite_loop: Loop) -> None:
    from tradepipe.definitions import defs

    loop = sqlite_loop
    sensor = next(s for s in defs.sensors or [] if s.name == "variant_generation_sensor")

    def tick() -> Any:
        with dg.build_sensor_context(instance=loop.instance, resources={"ledger": loop.resources["ledger"]}) as context:
            return sensor(context)

    assert isinstance(tick(), dg.SkipReason)  # no generation yet
    names = _metadata(loop.candidates(candidates=4, mutations=0), "variant_candidates")["partitions"].value
    requests = tick().run_requests
    assert {(r.job_name, r.partition_key) for r in requests} == {("variant_evaluation_job", n) for n in names}
    assert len({r.run_key for r in requests}) == len(names)  # one run per partition, never asked twice
    for name in names:
        loop.evaluate(name)
    [selection] = tick().run_requests
    assert selection.job_name == "live_pool_job" and selection.run_key == "live_pool-g1"
    loop.select()
    assert isinstance(tick(), dg.SkipReason)


def test_the_decision_day_reads_only_bars_closed_by_its_midnight_utc(sqlite_loop: Loop) -> None:
    loop = sqlite_loop
    names = _metadata(loop.candidates(as_of="2026-04-01T01:30:00+02:00", candidates=3, mutations=0), "variant_candidates")["partitions"].value
    row = next(r for r in loop.rows() if r.name == names[0])
    assert row.metrics["window"]["day_ms"] == int(datetime(2026, 3, 31, tzinfo=UTC).timestamp() * 1000)  # 23:30 UTC on the 31st
    loop.evaluate(names[0])
    market = load_market(loop.market_dir, SYMBOLS.split(","), "1h")
    rows = window_rows(market.timeline, market.step_ms, row.metrics["window"]["day_ms"], 90)
    assert market.timeline[rows.stop - 1] + market.step_ms <= row.metrics["window"]["day_ms"] < market.timeline[rows.stop] + market.step_ms
    evaluated = next(r for r in loop.rows() if r.name == names[0])
    assert evaluated.metrics["observations"] == rows.stop - rows.start - 1
