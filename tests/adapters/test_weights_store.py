"""Where a trading cycle gets its weights: Redis -> database live row -> last-known file -> defaults.

Against a real Redis and real databases (SQLite and PostgreSQL); "down" means a closed port or a
path that cannot exist, not a mock. Publication (weights_service.publish_weights) writes the live
row and the Redis key the lookup reads.
"""

from __future__ import annotations

import json
import time
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Iterator

import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from tradepipe.adapters.db.engine import session_factory, upgrade
from tradepipe.adapters.db.models import WeightHistoryRow
from tradepipe.adapters.weights_store import WeightStore, WeightsVersion, redis_key
from tradepipe.config.settings import load_settings
from tradepipe.trading.weight_publishing import UnknownWeightsError, UnsoundWeightsError, publish_weights

AGENTS = frozenset({"momentum", "trend", "mean_reversion", "breakout", "sentiment"})
DEFAULTS = {a: 0.2 for a in sorted(AGENTS)}
REDIS_WEIGHTS = {"momentum": 0.4, "trend": 0.3, "mean_reversion": 0.2, "breakout": 0.1, "sentiment": 0.0}
DB_WEIGHTS = {"momentum": 0.1, "trend": 0.2, "mean_reversion": 0.3, "breakout": 0.4, "sentiment": 0.0}
REPLAY_WEIGHTS = {"momentum": 0.25, "trend": 0.25, "mean_reversion": 0.25, "breakout": 0.25, "sentiment": 0.0}
REDIS_DOWN = "redis://127.0.0.1:1/0"  # nothing listens on port 1: connection refused
POSTGRES_DOWN = "postgresql+psycopg2://postgres@127.0.0.1:1/tradepipe"


@pytest.fixture
def sqlite_db(sqlite_url: str) -> str:
    upgrade(sqlite_url)
    return sqlite_url


@pytest.fixture
def sessions(sqlite_db: str) -> sessionmaker[Session]:
    """The single-source tests run on SQLite; the whole chain runs on both databases below."""
    return session_factory(sqlite_db)


@pytest.fixture(params=["sqlite", "postgres"])
def unreachable_sessions(request: pytest.FixtureRequest) -> Iterator[sessionmaker[Session]]:
    """A database that cannot be opened: a SQLite file under a directory that cannot exist, or a closed port."""
    url = "sqlite:////proc/no-such-dir/tradepipe.sqlite" if request.param == "sqlite" else POSTGRES_DOWN
    engine = sa.create_engine(url)
    yield sessionmaker(engine)
    engine.dispose()


def store(sessions: sessionmaker[Session] | None, redis_url: str | None, cache: Path | None, book: str = "main") -> WeightStore:
    return WeightStore(sessions, redis_url, book, AGENTS, DEFAULTS, cache)


def found(weight_store: WeightStore) -> tuple[dict[str, float], str]:
    loaded = weight_store.load()
    return loaded.weights, loaded.source


def put_redis(url: str, weights: object, book: str = "main", raw: str | None = None, history_id: int = 1) -> None:
    client = redis.Redis.from_url(url)
    client.set(redis_key(book), raw if raw is not None else json.dumps({"weights": weights, "weight_history_id": history_id}))
    client.close()


def remembered(cache: Path) -> dict:
    return json.loads(cache.read_text())["weights"]


def get_redis(url: str, book: str = "main") -> dict | None:
    client = redis.Redis.from_url(url)
    raw = client.get(redis_key(book))
    client.close()
    return json.loads(raw) if raw else None


def add_row(sessions: sessionmaker[Session], weights: dict, *, live: bool = False, book: str = "main", replay: bool = False) -> int:
    with sessions.begin() as session:
        row = WeightHistoryRow(
            book=book, partition_date=date(2026, 1, 15), agent_weights=weights, old_weights=DEFAULTS, new_weights=weights,
            method="risk_parity", weights_updated=True, reason="test", is_replay=replay, is_live=live,
            promoted_at=datetime(2026, 1, 16, tzinfo=timezone.utc) if live else None,
        )
        session.add(row)
        session.flush()
        return row.id


def live_rows(sessions: sessionmaker[Session], book: str = "main") -> list[int]:
    with sessions() as session:
        return list(session.scalars(sa.select(WeightHistoryRow.id).where(WeightHistoryRow.book == book, WeightHistoryRow.is_live.is_(True))))


# --------------------------------------------------------------------------- lookup order


def test_redis_answers_first_when_it_holds_the_live_row(sessions: sessionmaker[Session], redis_url: str, tmp_path: Path) -> None:
    live = add_row(sessions, REDIS_WEIGHTS, live=True)
    put_redis(redis_url, REDIS_WEIGHTS, history_id=live)
    cache = tmp_path / "last_weights.json"

    loaded = store(sessions, redis_url, cache).load()

    assert (loaded.source, loaded.weights, loaded.notes) == ("redis", REDIS_WEIGHTS, ())
    assert loaded.version == WeightsVersion(live, "2026-01-16T00:00:00+00:00")
    # remembered, with its version, for when everything is down
    assert json.loads(cache.read_text()) == {
        "weights": REDIS_WEIGHTS, "weight_history_id": live, "published_at": "2026-01-16T00:00:00+00:00",
    }


def test_redis_holding_another_set_than_the_live_row_loses_and_is_refreshed(
    sessions: sessionmaker[Session], redis_url: str, tmp_path: Path
) -> None:
    """A promotion made while Redis was down: Redis still holds the older set; the database's row wins."""
    old = add_row(sessions, REDIS_WEIGHTS)
    live = add_row(sessions, DB_WEIGHTS, live=True)
    put_redis(redis_url, REDIS_WEIGHTS, history_id=old)

    loaded = store(sessions, redis_url, tmp_path / "last_weights.json").load()

    assert (loaded.source, loaded.weights) == ("database", DB_WEIGHTS)
    assert loaded.version is not None and loaded.version.weight_history_id == live
    assert loaded.notes == (f"redis held weight_history {old}, not the live weight_history {live} published 2026-01-16T00:00:00+00:00: ignored and refreshed",)
    assert get_redis(redis_url)["weight_history_id"] == live  # healed: the next cycle reads the live set from Redis
    assert found(store(sessions, redis_url, None)) == (DB_WEIGHTS, "redis")


def test_a_cache_file_older_than_the_live_row_is_never_used_while_the_database_answers(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    cache = tmp_path / "last_weights.json"
    cache.write_text(json.dumps({"weights": REDIS_WEIGHTS, "weight_history_id": 99, "published_at": "2030-01-01T00:00:00+00:00"}))
    add_row(sessions, DB_WEIGHTS, live=True)
    assert found(store(sessions, REDIS_DOWN, cache)) == (DB_WEIGHTS, "database")
    assert remembered(cache) == DB_WEIGHTS


def test_redis_down_falls_back_to_the_database_live_row_quickly(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    add_row(sessions, DEFAULTS)  # an older decision, not live
    add_row(sessions, DB_WEIGHTS, live=True)
    add_row(sessions, REPLAY_WEIGHTS, replay=True)  # a newer replay that was never promoted
    cache = tmp_path / "last_weights.json"

    started = time.perf_counter()
    loaded = store(sessions, REDIS_DOWN, cache).load()
    elapsed = time.perf_counter() - started

    assert (loaded.source, loaded.weights) == ("database", DB_WEIGHTS)
    assert len(loaded.notes) == 1 and loaded.notes[0].startswith("redis unavailable: ConnectionError")
    assert elapsed < 2.0
    assert remembered(cache) == DB_WEIGHTS


def test_redis_and_database_down_use_the_last_known_weights(
    unreachable_sessions: sessionmaker[Session], redis_url: str, tmp_path: Path
) -> None:
    cache = tmp_path / "home" / "last_weights.json"
    put_redis(redis_url, REDIS_WEIGHTS)
    assert store(None, redis_url, cache).load().source == "redis"  # a good cycle remembers its weights

    started = time.perf_counter()
    loaded = store(unreachable_sessions, REDIS_DOWN, cache).load()

    assert time.perf_counter() - started < 2.0
    assert (loaded.source, loaded.weights) == ("last_known", REDIS_WEIGHTS)
    assert [note.split(":")[0] for note in loaded.notes] == ["redis unavailable", "database unavailable"]
    assert remembered(cache) == REDIS_WEIGHTS
    assert loaded.version is not None and loaded.version.weight_history_id == 1


def test_nothing_anywhere_gives_the_defaults(sessions: sessionmaker[Session], redis_url: str, tmp_path: Path) -> None:
    add_row(sessions, DB_WEIGHTS)  # recorded but never made live
    cache = tmp_path / "last_weights.json"

    loaded = store(sessions, redis_url, cache).load()

    assert (loaded.source, loaded.weights, loaded.notes) == ("defaults", DEFAULTS, ())
    assert not cache.exists()  # defaults are not "known" weights


def test_everything_down_and_no_file_gives_the_defaults(unreachable_sessions: sessionmaker[Session], tmp_path: Path) -> None:
    loaded = store(unreachable_sessions, REDIS_DOWN, tmp_path / "missing" / "last_weights.json").load()
    assert (loaded.source, loaded.weights) == ("defaults", DEFAULTS)
    assert len(loaded.notes) == 2


def test_no_redis_configured_reads_the_database_without_a_note(sessions: sessionmaker[Session]) -> None:
    add_row(sessions, DB_WEIGHTS, live=True)
    loaded = store(sessions, None, None).load()
    assert (loaded.source, loaded.weights, loaded.notes) == ("database", DB_WEIGHTS, ())


INVALID_PAYLOADS = {
    "sum 1.2": {"momentum": 0.5, "trend": 0.3, "mean_reversion": 0.2, "breakout": 0.2},
    "sum 0.6": {"momentum": 0.3, "trend": 0.3},
    "unknown agent": {"momentum": 0.5, "trend": 0.3, "ghost_agent": 0.2},
    "negative": {"momentum": 1.2, "trend": -0.2},
    "nan": {"momentum": float("nan"), "trend": 1.0},
    "not a number": {"momentum": "lots", "trend": 1.0},
    "empty": {},
    "a list": [0.5, 0.5],
}
UNREADABLE_PAYLOADS = {
    "not json": "not json {",
    "no weights key": json.dumps({"weight_history_id": 3}),
    "not an object": json.dumps(["momentum"]),
}


def test_invalid_weights_in_redis_are_ignored(sessions: sessionmaker[Session], redis_url: str) -> None:
    live = add_row(sessions, DB_WEIGHTS, live=True)
    for case, payload in INVALID_PAYLOADS.items():
        put_redis(redis_url, payload, history_id=live)
        loaded = store(sessions, redis_url, None).load()
        assert (loaded.source, loaded.weights) == ("database", DB_WEIGHTS), case
    for case, raw in UNREADABLE_PAYLOADS.items():
        put_redis(redis_url, None, raw=raw)
        loaded = store(sessions, redis_url, None).load()
        assert (loaded.source, loaded.weights) == ("database", DB_WEIGHTS), case
        assert loaded.notes and loaded.notes[0].startswith("redis unavailable"), case


def test_invalid_live_row_and_cache_file_are_ignored(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    add_row(sessions, {"momentum": 0.7, "trend": 0.5}, live=True)
    cache = tmp_path / "last_weights.json"
    cache.write_text(json.dumps({"momentum": 0.9}))
    loaded = store(sessions, None, cache).load()
    assert (loaded.source, loaded.weights) == ("defaults", DEFAULTS)


def test_each_book_has_its_own_weights(sessions: sessionmaker[Session], redis_url: str) -> None:
    live = add_row(sessions, REDIS_WEIGHTS, live=True, book="other")
    put_redis(redis_url, REDIS_WEIGHTS, book="other", history_id=live)
    loaded = store(sessions, redis_url, None, book="main").load()
    assert loaded.source == "defaults"
    assert found(store(sessions, redis_url, None, book="other")) == (REDIS_WEIGHTS, "redis")


# --------------------------------------------------------------------------- publication


def test_published_weights_are_found_along_the_whole_chain_on_each_database(
    migrated_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """SQLite and PostgreSQL: publish -> Redis; Redis down -> live row; both down -> file; one live row."""
    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", migrated_url)
    monkeypatch.setenv("TRADEPIPE_REDIS_URL", redis_url)
    settings = load_settings()
    sessions = session_factory(migrated_url)
    cache = tmp_path / "home" / "last_weights.json"
    first, second = add_row(sessions, DB_WEIGHTS), add_row(sessions, REPLAY_WEIGHTS, replay=True)
    assert store(sessions, redis_url, cache).load().source == "defaults"  # recorded, not published

    publication = publish_weights(settings, first)
    assert (publication.weight_history_id, publication.weights, publication.redis) == (first, DB_WEIGHTS, True)
    assert live_rows(sessions) == [first]
    payload = get_redis(redis_url)
    assert payload["weights"] == DB_WEIGHTS and payload["weight_history_id"] == first
    assert datetime.fromisoformat(payload["published_at"]).tzinfo is not None
    assert found(store(sessions, redis_url, cache)) == (DB_WEIGHTS, "redis")

    publish_weights(settings, second)  # promoting another set replaces the live one, everywhere
    assert live_rows(sessions) == [second]
    assert get_redis(redis_url)["weight_history_id"] == second
    assert found(store(sessions, redis_url, cache)) == (REPLAY_WEIGHTS, "redis")
    with sessions() as session:
        row = session.get(WeightHistoryRow, second)
        assert row.promoted_at is not None and row.is_replay  # still marked as a replay, now live

    redis.Redis.from_url(redis_url).flushdb()  # Redis lost its data (restart without persistence)
    assert found(store(sessions, redis_url, cache)) == (REPLAY_WEIGHTS, "database")

    started = time.perf_counter()
    loaded = store(sessions, REDIS_DOWN, cache).load()
    assert time.perf_counter() - started < 2.0
    assert (loaded.weights, loaded.source) == (REPLAY_WEIGHTS, "database")

    database_down = POSTGRES_DOWN if migrated_url.startswith("postgres") else "sqlite:////proc/no-such-dir/x.sqlite"
    engine = sa.create_engine(database_down)
    started = time.perf_counter()
    loaded = store(sessionmaker(engine), REDIS_DOWN, cache).load()
    assert time.perf_counter() - started < 2.0
    assert (loaded.weights, loaded.source) == (REPLAY_WEIGHTS, "last_known")
    engine.dispose()


def test_publish_with_redis_down_still_makes_the_database_row_live(sqlite_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", sqlite_db)
    monkeypatch.setenv("TRADEPIPE_REDIS_URL", REDIS_DOWN)
    sessions = session_factory(sqlite_db)
    row_id = add_row(sessions, DB_WEIGHTS)

    started = time.perf_counter()
    publication = publish_weights(load_settings(), row_id)

    assert time.perf_counter() - started < 2.0
    assert publication.redis is False
    assert live_rows(sessions) == [row_id]
    assert store(sessions, REDIS_DOWN, None).load().weights == DB_WEIGHTS


def test_publish_refuses_unknown_rows_and_other_books(sqlite_db: str, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", sqlite_db)
    monkeypatch.setenv("TRADEPIPE_REDIS_URL", redis_url)
    sessions = session_factory(sqlite_db)
    live = add_row(sessions, DB_WEIGHTS, live=True)
    other_book = add_row(sessions, REPLAY_WEIGHTS, book="other")

    for row_id in (live + 1000, other_book):
        with pytest.raises(UnknownWeightsError):
            publish_weights(load_settings(), row_id)
    assert live_rows(sessions) == [live]
    assert get_redis(redis_url) is None


@pytest.mark.parametrize(
    "weights, problem",
    [
        ({"momentum": 0.4, "trend": 0.4, "mean_reversion": 0.4}, "weights sum to 1.2"),
        ({"momentum": 0.4, "trend": 0.3, "ghost_agent": 0.3}, "unknown agents ['ghost_agent']"),
        ({"momentum": 0.7, "trend": 0.3}, "outside [0.05, 0.5]: ['momentum']"),
        ({"momentum": float("nan"), "trend": 1.0}, "non-finite weights for ['momentum']"),
    ],
)
def test_publish_refuses_weights_the_blocking_check_would_reject(
    sqlite_db: str, redis_url: str, monkeypatch: pytest.MonkeyPatch, weights: dict, problem: str
) -> None:
    """Promotion (CLI, job) and live_weights share publish_weights: an unsound set never goes live."""
    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", sqlite_db)
    monkeypatch.setenv("TRADEPIPE_REDIS_URL", redis_url)
    sessions = session_factory(sqlite_db)
    live = add_row(sessions, DB_WEIGHTS, live=True)
    bad = add_row(sessions, weights)

    with pytest.raises(UnsoundWeightsError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        publish_weights(load_settings(), bad)
    assert live_rows(sessions) == [live]
    assert get_redis(redis_url) is None


def test_a_hung_redis_costs_at_most_its_timeout(sessions: sessionmaker[Session]) -> None:
    """A Redis that accepts connections but never answers (overloaded, half-dead) must not stall a cycle."""
    import socket
    import threading

    add_row(sessions, DB_WEIGHTS, live=True)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(server.accept()[0]), daemon=True).start()
    try:
        started = time.perf_counter()
        loaded = store(sessions, f"redis://127.0.0.1:{server.getsockname()[1]}/0", None).load()
        elapsed = time.perf_counter() - started
    finally:
        for connection in accepted:
            connection.close()
        server.close()
    assert (loaded.source, loaded.weights) == ("database", DB_WEIGHTS)
    assert "Timeout" in loaded.notes[0]
    assert elapsed < 2.0
