"""The variant tables on a migrated SQLite ledger: a generation is one transaction (an interrupted one leaves
the pool as it was), and ``tradepipe variants`` lists, shows, promotes (through the loop's own check) and
retires the same rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy.orm import Session

from tradepipe.adapters.db.engine import get_engine
from tradepipe.adapters.db.research import add_candidates, apply_pool_changes, pool_members, record_evaluations, variant_by_name, variant_events
from tradepipe.cli.main import main
from tradepipe.research.selection import PoolChange

NOW = datetime(2026, 12, 7, tzinfo=UTC)


@pytest.fixture
def ledger(tmp_path: Path) -> str:
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    return f"sqlite:///{tmp_path / 'home' / 'tradepipe.sqlite'}"


def _generation(session: Session) -> None:
    add_candidates(session, [
        {"name": "tsmom_good", "family": "tsmom", "parameters": {"lookback": 168, "vol_window": 72, "scale": 1.0}, "origin": "random"},
        {"name": "tsmom_weak", "family": "tsmom", "parameters": {"lookback": 6, "vol_window": 24, "scale": 1.0}, "origin": "random"},
    ], generation=1)
    record_evaluations(session, [
        {"name": "tsmom_good", "metrics": {"sharpe": 2.1, "trades": 40}, "deflated_sharpe": 0.97, "pbo": 0.2, "trials": 60},
        {"name": "tsmom_weak", "metrics": {"sharpe": 0.3, "trades": 300}, "deflated_sharpe": 0.41, "pbo": 0.2, "trials": 60},
    ], NOW)


def test_an_interrupted_generation_leaves_no_half_promoted_pool(ledger: str) -> None:
    engine = get_engine(ledger)
    with pytest.raises(KeyError):
        with Session(engine) as session, session.begin():
            _generation(session)
            apply_pool_changes(session, [PoolChange("tsmom_good", "promote", "passes"), PoolChange("missing", "promote", "boom")], NOW)
    with Session(engine) as session:
        assert variant_by_name(session, "tsmom_good") is None  # nothing of the generation was kept
        assert pool_members(session) == []
    with Session(engine) as session, session.begin():
        _generation(session)
        apply_pool_changes(session, [PoolChange("tsmom_good", "promote", "passes")], NOW)
    with Session(engine) as session:
        assert [r.name for r in pool_members(session)] == ["tsmom_good"]
        row = variant_by_name(session, "tsmom_good")
        assert [(e.action, e.status) for e in variant_events(session, row.id)] == [("evaluate", "evaluated"), ("promote", "promoted")]


def test_cli_lists_shows_promotes_and_retires_through_the_same_check(ledger: str) -> None:
    with Session(get_engine(ledger)) as session, session.begin():
        _generation(session)
    runner = CliRunner()
    listed = runner.invoke(main, ["variants", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [(r["name"], r["status"], r["deflated_sharpe"]) for r in json.loads(listed.stdout)] == [("tsmom_good", "evaluated", 0.97), ("tsmom_weak", "evaluated", 0.41)]
    refused = runner.invoke(main, ["variants", "promote", "tsmom_weak"])
    assert refused.exit_code == 2
    assert refused.stderr.strip() == "tsmom_weak not promoted: deflated Sharpe 0.410 below 0.95 (60 trials)"
    accepted = runner.invoke(main, ["variants", "promote", "tsmom_good", "--reason", "reviewed"])
    assert accepted.exit_code == 0, accepted.output
    shown = json.loads(runner.invoke(main, ["variants", "show", "tsmom_good", "--json"]).stdout)
    assert shown["status"] == "promoted"
    assert shown["events"][-1]["actor"] == "cli" and "reviewed" in shown["events"][-1]["reason"]
    assert runner.invoke(main, ["variants", "list", "--status", "promoted"]).stdout.startswith("tsmom_good promoted: DSR 0.970 over 60 trials")
    retired = runner.invoke(main, ["variants", "retire", "tsmom_good", "--reason", "decayed"])
    assert retired.exit_code == 0 and "retired: decayed" in retired.stdout
    again = runner.invoke(main, ["variants", "retire", "tsmom_good"])
    assert again.exit_code == 2 and again.stderr.strip() == "tsmom_good is retired, not in the pool: nothing retired"
    unknown = runner.invoke(main, ["variants", "show", "nope"])
    assert unknown.exit_code == 2 and unknown.stderr.strip() == "no variant named 'nope'"
