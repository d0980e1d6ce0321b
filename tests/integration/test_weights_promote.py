"""``tradepipe weights promote`` shows the difference and the evidence, asks, and guards concentration."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from tradepipe.adapters.db.engine import session_factory, upgrade
from tradepipe.adapters.db.models import WeightHistoryRow
from tradepipe.cli.main import main

LIVE = {"momentum": 0.2, "trend": 0.2, "mean_reversion": 0.2, "breakout": 0.2, "sentiment": 0.2}
CANDIDATE = {"momentum": 0.4, "trend": 0.3, "mean_reversion": 0.3, "breakout": 0.0, "sentiment": 0.0}
ALL_IN = {"momentum": 1.0, "trend": 0.0, "mean_reversion": 0.0, "breakout": 0.0, "sentiment": 0.0}


@pytest.fixture
def ledger(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", sqlite_url)
    upgrade(sqlite_url)
    ids = {}
    with session_factory(sqlite_url).begin() as session:
        for name, weights, live in (("live", LIVE, True), ("candidate", CANDIDATE, False), ("all_in", ALL_IN, False)):
            row = WeightHistoryRow(
                book="main", new_weights=weights, method="max_sharpe", is_live=live, expected_sharpe=1.234, sharpe_improvement=0.25,
                return_improvement=0.0125, reason=f"{name} set", window_start=datetime(2026, 11, 1, tzinfo=timezone.utc),
                window_end=datetime(2026, 12, 1, tzinfo=timezone.utc), promoted_at=datetime(2026, 12, 1, tzinfo=timezone.utc) if live else None,
            )
            session.add(row)
            session.flush()
            ids[name] = row.id
    return ids


def live_id(url: str) -> int:
    with session_factory(url)() as session:
        return session.scalars(select(WeightHistoryRow.id).where(WeightHistoryRow.is_live.is_(True))).one()


def test_promote_shows_the_difference_and_evidence_and_refuses_without_a_terminal(ledger: dict[str, int], sqlite_url: str) -> None:
    refused = CliRunner().invoke(main, ["weights", "promote", str(ledger["candidate"])])

    assert refused.exit_code == 2
    assert "not promoted: stdin is not a terminal, so nobody can confirm; pass --yes to promote" in refused.stderr
    assert f"against the live weight_history {ledger['live']}" in refused.stdout
    assert "momentum" in refused.stdout and "20.0%" in refused.stdout and "40.0%" in refused.stdout and "+20.0%" in refused.stdout
    assert "breakout" in refused.stdout and "-20.0%" in refused.stdout
    assert "window 2026-11-01T00:00:00Z .. 2026-12-01T00:00:00Z" in refused.stdout and "Sharpe improvement +0.250" in refused.stdout
    assert "return improvement +1.25%" in refused.stdout and "reason: candidate set" in refused.stdout
    assert live_id(sqlite_url) == ledger["live"]  # nothing changed

    answered_no = CliRunner().invoke(main, ["weights", "promote", str(ledger["candidate"])], input="n\n")
    assert answered_no.exit_code == 2 and live_id(sqlite_url) == ledger["live"]  # CliRunner's stdin is no terminal either

    promoted = CliRunner().invoke(main, ["weights", "promote", str(ledger["candidate"]), "--yes"])
    assert promoted.exit_code == 0 and f"weight_history {ledger['candidate']} is live (database)" in promoted.stdout
    assert live_id(sqlite_url) == ledger["candidate"]


def test_a_concentrated_set_needs_force(ledger: dict[str, int], sqlite_url: str) -> None:
    refused = CliRunner().invoke(main, ["weights", "promote", str(ledger["all_in"]), "--yes"])

    assert refused.exit_code == 2 and refused.stderr.count("\n") == 1
    assert "momentum would hold 100%, above the concentration limit TRADEPIPE_MAX_WEIGHT 40%; pass --force" in refused.stderr
    assert live_id(sqlite_url) == ledger["live"]

    forced = CliRunner().invoke(main, ["weights", "promote", str(ledger["all_in"]), "--yes", "--force"])
    assert forced.exit_code == 0 and live_id(sqlite_url) == ledger["all_in"]
