"""Faults around a trading cycle, on SQLite and PostgreSQL, through the cycle entry point.

* stale Redis after a promotion made while Redis was down: the database's live row wins, the cycle
  records which version it used, and Redis is refreshed;
* downtime between two cycles: the orders decided before it expire (recorded reason), nothing fills
  at a price that is gone, and the next cycle decides afresh;
* a ledger that accepts connections and never answers: the cycle fails within the connect timeout,
  with one line.
After each: the stored cash and positions equal a replay of the fills, and every snapshot satisfies
equity = cash + sum(quantity x mark).
"""

from __future__ import annotations

import re
import time
from datetime import timezone

import pytest
from sqlalchemy import select

from tests.integration.ledger_checks import assert_book_is_a_replay_of_its_fills
from tests.integration.test_ledger_faults import silent_database  # noqa: F401 (fixture)
from tradepipe.adapters.db.engine import session_factory
from tradepipe.adapters.db.ledger import ms_to_datetime
from tradepipe.adapters.db.models import FillRow, OrderRow, TradingCycleRow, WeightHistoryRow
from tradepipe.adapters.db.weights import record_weight_decision
from tradepipe.adapters.weights_store import WeightsVersion
from tradepipe.trading.runner import LedgerUnavailable, TradingRunner
from tradepipe.config.settings import load_settings
from tradepipe.trading.weight_publishing import publish_weights

M = 60_000
BAR0 = 1_700_000_040_000  # a 1m bar on the synthetic market
REDIS_DOWN = "redis://127.0.0.1:1/0"  # a closed port: connection refused
OLDER = {"momentum": 0.4, "trend": 0.3, "mean_reversion": 0.1, "breakout": 0.1, "sentiment": 0.1}
NEWER = {"momentum": 0.1, "trend": 0.1, "mean_reversion": 0.4, "breakout": 0.3, "sentiment": 0.1}


def decision(url: str, weights: dict[str, float]) -> int:
    with session_factory(url).begin() as session:
        return record_weight_decision(
            session, book="main", agent_weights=weights, old_weights={}, new_weights=weights, method="risk_parity",
            weights_updated=True, reason="test",
        ).id


def cycle_row(url: str, bar: int) -> TradingCycleRow:
    with session_factory(url)() as session:
        return session.scalars(select(TradingCycleRow).where(TradingCycleRow.bar_ts == ms_to_datetime(bar))).one()


def test_a_promotion_made_while_redis_was_down_wins_when_redis_is_back(migrated_url: str, redis_url: str) -> None:
    older, newer = decision(migrated_url, OLDER), decision(migrated_url, NEWER)
    assert publish_weights(load_settings(database_url=migrated_url, redis_url=redis_url), older).redis
    # Redis goes down; the newer set is promoted: the database records it, Redis cannot hear of it
    assert not publish_weights(load_settings(database_url=migrated_url, redis_url=REDIS_DOWN), newer).redis
    with session_factory(migrated_url)() as session:
        promoted_at = session.get(WeightHistoryRow, newer).promoted_at

    runner = TradingRunner(load_settings(database_url=migrated_url, redis_url=redis_url))  # Redis is back, still holding the older set
    outcome = runner.run_cycle(BAR0)
    assert (outcome.weights, outcome.weights_source, outcome.weight_history_id) == (NEWER, "database", newer)
    recorded = cycle_row(migrated_url, BAR0)
    assert (recorded.weights, recorded.weights_source, recorded.weight_history_id) == (NEWER, "database", newer)
    assert recorded.weights_published_at == promoted_at
    held = rf"redis held weight_history {older} published \S+, not the live weight_history {newer} published \S+: ignored and refreshed"
    assert any(re.fullmatch(held, note) for note in recorded.skipped.values()), recorded.skipped

    # Redis was refreshed: the next cycle reads the live set, with its version, from Redis
    outcome = runner.run_cycle(BAR0 + M)
    assert (outcome.weights, outcome.weights_source, outcome.weight_history_id) == (NEWER, "redis", newer)
    assert runner.load_weights().version == WeightsVersion(newer, promoted_at.astimezone(timezone.utc).isoformat())
    assert_book_is_a_replay_of_its_fills(migrated_url, "main")


def test_orders_expire_after_downtime_and_the_next_cycle_decides_afresh(migrated_url: str) -> None:
    runner = TradingRunner(load_settings(database_url=migrated_url, max_position_fraction=0.5))
    runner.run_cycle(BAR0)
    with session_factory(migrated_url)() as session:
        decided = list(session.scalars(select(OrderRow).where(OrderRow.status == "pending")))
    assert decided, "the first cycle must place orders for this test to mean anything"

    after_downtime = BAR0 + 120 * M  # two hours without a cycle: the bar the orders were for is long gone
    outcome = runner.run_cycle(after_downtime)
    assert outcome.status == "traded" and outcome.fills == []
    with session_factory(migrated_url)() as session:
        for order in decided:
            expired = session.get(OrderRow, order.id)
            assert expired.status == "cancelled"
            assert f"expired: the bar it was to fill at ({BAR0 + M}) was missed" in expired.reason
        assert session.scalars(select(FillRow)).first() is None  # nothing filled at the 00:01 open two hours later
        fresh = list(session.scalars(select(OrderRow).where(OrderRow.status == "pending")))
    assert fresh and {o.bar_ts for o in fresh} == {ms_to_datetime(after_downtime)}  # decided afresh on its own bar

    # the fresh orders fill at the open of the bar right after theirs, as usual
    filled = runner.run_cycle(after_downtime + M)
    assert filled.fills and all(f["quantity"] > 0 for f in filled.fills)
    with session_factory(migrated_url)() as session:
        assert {f.ts for f in session.scalars(select(FillRow))} == {ms_to_datetime(after_downtime + M)}
    assert_book_is_a_replay_of_its_fills(migrated_url, "main")


def test_a_cycle_on_a_ledger_that_never_answers_fails_within_the_connect_timeout(silent_database: str) -> None:  # noqa: F811
    runner = TradingRunner(load_settings(database_url=silent_database, database_connect_timeout_seconds=1))
    started = time.perf_counter()
    with pytest.raises(LedgerUnavailable) as raised:
        runner.run_cycle(BAR0)
    seconds = time.perf_counter() - started
    message = str(raised.value)
    assert message == "the ledger database at postgresql://***@" + silent_database.split("@", 1)[1] + (
        " did not answer within 1 s (TRADEPIPE_DATABASE_CONNECT_TIMEOUT_SECONDS)"
    )
    assert "\n" not in message and "s3cr3t-pw" not in message
    assert seconds < 4  # one bounded wait, not one per step of the cycle
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


