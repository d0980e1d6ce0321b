"""One live weight set, always: concurrent promotions, and a Redis copy that is not the stored set.

The probe that found the bugs: two ``tradepipe weights promote`` at once left two live rows
(PostgreSQL 1 of 12 trials, SQLite 2 of 12) or none (SQLite 2 of 12), while both commands said
"is live"; and a Redis copy carrying the live id with other weights (momentum 1.0, above the 0.40
maximum) was traded and recorded as the live set.

Here, on SQLite and PostgreSQL: 12 trials of 4 threads released together by a barrier, each
promoting another recorded set through ``publish_weights`` (what the command and the job call);
after each trial exactly one row is live, the one promoted last, and every promotion succeeded.
Then copies planted in a real Redis under the live id: the probe's copy (momentum 1.0, no hash),
an unsound set and another sound set each carrying its own correct hash, and a copy whose weights
do not match its hash; none is traded: the cycle records the stored live set and Redis is
refreshed. With the database down, an unsound or altered copy falls back to the defaults.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
import redis
from sqlalchemy import select

from tradepipe.adapters.db.engine import session_factory
from tradepipe.adapters.db.models import TradingCycleRow, WeightHistoryRow
from tradepipe.adapters.db.weights import record_weight_decision
from tradepipe.adapters.weights_store import redis_key, weights_digest
from tradepipe.config.settings import load_settings
from tradepipe.trading.runner import TradingRunner
from tradepipe.trading.weight_publishing import publish_weights

BAR0 = 1_700_000_040_000  # a 1m bar on the synthetic market
TRIALS = 12
PROMOTERS = 4
SETS = [
    {"momentum": 0.4, "trend": 0.3, "mean_reversion": 0.1, "breakout": 0.1, "sentiment": 0.1},
    {"momentum": 0.1, "trend": 0.4, "mean_reversion": 0.3, "breakout": 0.1, "sentiment": 0.1},
    {"momentum": 0.1, "trend": 0.1, "mean_reversion": 0.4, "breakout": 0.3, "sentiment": 0.1},
    {"momentum": 0.3, "trend": 0.1, "mean_reversion": 0.1, "breakout": 0.4, "sentiment": 0.1},
]
PLANTED = {"momentum": 1.0, "trend": 0.0, "mean_reversion": 0.0, "breakout": 0.0, "sentiment": 0.0}
# four weighted agents: each may hold at most 0.40 (TRADEPIPE_MAX_WEIGHT); momentum holds 0.7
UNSOUND = {"momentum": 0.7, "trend": 0.1, "mean_reversion": 0.1, "breakout": 0.1, "sentiment": 0.0}
OTHER_SOUND = {"momentum": 0.2, "trend": 0.2, "mean_reversion": 0.2, "breakout": 0.2, "sentiment": 0.2}


def decisions(url: str, count: int) -> list[int]:
    with session_factory(url).begin() as session:
        return [
            record_weight_decision(
                session, book="main", agent_weights=w, old_weights={}, new_weights=w, method="risk_parity", weights_updated=True, reason="test"
            ).id
            for w in (SETS[i % len(SETS)] for i in range(count))
        ]


def live_rows(url: str) -> list[WeightHistoryRow]:
    with session_factory(url)() as session:
        return list(session.scalars(select(WeightHistoryRow).where(WeightHistoryRow.book == "main", WeightHistoryRow.is_live.is_(True))))


def test_concurrent_promotions_leave_exactly_one_live_row(migrated_url: str) -> None:
    settings = load_settings(database_url=migrated_url)
    ids = decisions(migrated_url, PROMOTERS)
    for trial in range(TRIALS):
        barrier = threading.Barrier(PROMOTERS)
        results: dict[int, Any] = {}

        def promote(history_id: int, barrier: threading.Barrier = barrier, results: dict[int, Any] = results) -> None:
            barrier.wait()
            try:
                results[history_id] = publish_weights(settings, history_id).weight_history_id
            except Exception as error:  # reported below: every promotion must succeed
                results[history_id] = f"{type(error).__name__}: {error}"

        order = ids[trial % PROMOTERS :] + ids[: trial % PROMOTERS]
        threads = [threading.Thread(target=promote, args=(history_id,)) for history_id in order]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert results == {history_id: history_id for history_id in ids}, f"trial {trial}: {results}"
        live = live_rows(migrated_url)
        assert len(live) == 1, f"trial {trial}: live rows {[r.id for r in live]}"
        with session_factory(migrated_url)() as session:
            newest = max(session.scalars(select(WeightHistoryRow).where(WeightHistoryRow.id.in_(ids))), key=lambda r: (r.promoted_at, r.id))
        assert live[0].id == newest.id  # the promotion that ran last is the one live


def plant(url: str, weights: dict[str, float], history_id: int, digest: str | None) -> None:
    client = redis.Redis.from_url(url)
    payload: dict[str, Any] = {"weights": weights, "weight_history_id": history_id, "published_at": "2099-01-01T00:00:00+00:00"}
    if digest is not None:
        payload["weights_sha256"] = digest
    client.set(redis_key("main"), json.dumps(payload))
    client.close()


def redis_copy(url: str) -> dict[str, Any]:
    client = redis.Redis.from_url(url)
    raw = client.get(redis_key("main"))
    client.close()
    return json.loads(raw)


@pytest.mark.parametrize(
    ("weights", "digest_of", "why"),
    [
        (PLANTED, None, "redis held other weights under the live weight_history"),  # the probe's copy: no hash at all
        (UNSOUND, UNSOUND, "is not a sound weight set"),  # its own correct hash, above the 0.40 maximum
        (OTHER_SOUND, OTHER_SOUND, "redis held other weights under the live weight_history"),  # sound, hashed, not the stored set
        (PLANTED, SETS[1], "does not match its weights_sha256"),  # the live set's hash over other weights
    ],
    ids=["no-hash", "unsound", "other-set", "hash-mismatch"],
)
def test_a_planted_redis_copy_is_never_traded(migrated_url: str, redis_url: str, weights: dict[str, float], digest_of: dict[str, float] | None, why: str) -> None:
    settings = load_settings(database_url=migrated_url, redis_url=redis_url)
    live_id = decisions(migrated_url, 2)[1]
    publish_weights(settings, live_id)
    assert redis_copy(redis_url)["weights_sha256"] == weights_digest(SETS[1])
    plant(redis_url, weights, live_id, None if digest_of is None else weights_digest(digest_of))

    outcome = TradingRunner(settings).run_cycle(BAR0)
    assert (outcome.weights, outcome.weights_source, outcome.weight_history_id) == (SETS[1], "database", live_id)
    with session_factory(migrated_url)() as session:
        cycle = session.scalars(select(TradingCycleRow)).one()
    assert (cycle.weights, cycle.weight_history_id) == (SETS[1], live_id)
    assert any(why in note for note in cycle.skipped.values()), cycle.skipped
    # refreshed from the live row: the next cycle reads the stored set from Redis
    assert redis_copy(redis_url)["weights"] == SETS[1]
    assert TradingRunner(settings).load_weights().source == "redis"


def test_with_the_database_down_an_unsound_or_altered_copy_is_not_traded(redis_url: str) -> None:
    down = "postgresql://postgres@127.0.0.1:1/tradepipe"  # nothing listens on port 1
    settings = load_settings(database_url=down, redis_url=redis_url, database_connect_timeout_seconds=1)
    runner = TradingRunner(settings)
    plant(redis_url, UNSOUND, 7, weights_digest(UNSOUND))
    loaded = runner.load_weights()
    assert loaded.source == "defaults" and any("is not a sound weight set" in note for note in loaded.notes), loaded.notes
    plant(redis_url, SETS[0], 7, weights_digest(SETS[1]))
    loaded = runner.load_weights()
    assert loaded.source == "defaults" and any("does not match its weights_sha256" in note for note in loaded.notes), loaded.notes
    plant(redis_url, SETS[0], 7, weights_digest(SETS[0]))  # intact and sound: the cache serves while the database is down
    assert (runner.load_weights().weights, runner.load_weights().source) == (SETS[0], "redis")
