"""Where the trading cycle gets its agent weights, and where the optimiser publishes them.

Lookup order, first that answers wins: Redis (fast, shared by every process) -> the database's live
row in ``weight_history`` -> the last weights this machine used (a small file under TRADEPIPE_HOME)
-> the static defaults from settings. A source that is down is skipped with its error noted; loading
weights never fails a cycle.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping

from sqlalchemy.orm import Session, sessionmaker

from tradepipe.adapters.db.weights import live_weights

log = logging.getLogger(__name__)
REDIS_TIMEOUT_S = 0.5


@dataclass(frozen=True)
class LoadedWeights:
    weights: dict[str, float]
    source: str  # "redis" | "database" | "last_known" | "defaults"
    notes: tuple[str, ...] = ()


def redis_key(book: str) -> str:
    return f"tradepipe:{book}:weights"


def _valid(weights: object, agents: frozenset[str]) -> dict[str, float] | None:
    """Weights are usable when they cover only known agents, are finite and sum to ~1."""
    if not isinstance(weights, Mapping) or not weights:
        return None
    try:
        values = {str(k): float(v) for k, v in weights.items()}
    except (TypeError, ValueError):
        return None
    if not set(values) <= agents or not all(math.isfinite(v) and v >= 0 for v in values.values()):
        return None
    if abs(sum(values.values()) - 1.0) > 1e-6:
        return None
    return values


class WeightStore:
    def __init__(
        self,
        sessions: sessionmaker[Session] | None,
        redis_url: str | None,
        book: str,
        agents: frozenset[str],
        defaults: Mapping[str, float],
        cache_file: Path | None,
    ) -> None:
        self._sessions = sessions
        self._redis_url = redis_url
        self._book = book
        self._agents = agents
        self._defaults = dict(defaults)
        self._cache_file = cache_file

    def _redis(self):  # type: ignore[no-untyped-def]
        import redis

        return redis.Redis.from_url(
            self._redis_url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
        )

    def _from_redis(self) -> dict[str, float] | None:
        if not self._redis_url:
            return None
        client = self._redis()
        try:
            raw = client.get(redis_key(self._book))
        finally:
            client.close()
        return _valid(json.loads(raw)["weights"], self._agents) if raw else None

    def _from_database(self) -> dict[str, float] | None:
        if self._sessions is None:
            return None
        with self._sessions() as session:
            row = live_weights(session, self._book)
        return _valid(row.new_weights, self._agents) if row else None

    def _from_cache_file(self) -> dict[str, float] | None:
        if self._cache_file is None or not self._cache_file.exists():
            return None
        return _valid(json.loads(self._cache_file.read_text()), self._agents)

    def _remember(self, weights: Mapping[str, float]) -> None:
        if self._cache_file is None:
            return
        try:
            self._cache_file.parent.mkdir(parents=True, exist_ok=True)
            self._cache_file.write_text(json.dumps(dict(weights), sort_keys=True))
        except OSError as exc:
            log.warning("could not remember weights in %s: %s", self._cache_file, exc)

    def load(self) -> LoadedWeights:
        notes: list[str] = []
        for source, reader in (
            ("redis", self._from_redis),
            ("database", self._from_database),
            ("last_known", self._from_cache_file),
        ):
            try:
                weights = reader()
            except Exception as exc:  # any failure of a source means: try the next one
                notes.append(f"{source} unavailable: {type(exc).__name__}: {str(exc)[:200]}")
                continue
            if weights is not None:
                if source != "last_known":
                    self._remember(weights)
                return LoadedWeights(weights, source, tuple(notes))
        return LoadedWeights(dict(self._defaults), "defaults", tuple(notes))

    def publish_to_redis(self, weights: Mapping[str, float], history_id: int) -> bool:
        """Best effort: the database row is the record; Redis only makes it fast to read."""
        if not self._redis_url:
            return False
        payload = {
            "weights": dict(weights),
            "weight_history_id": history_id,
            "published_at": datetime.now(timezone.utc).isoformat(),
        }
        try:
            client = self._redis()
            try:
                client.set(redis_key(self._book), json.dumps(payload, sort_keys=True))
            finally:
                client.close()
        except Exception as exc:
            log.warning("could not publish weights to Redis: %s", exc)
            return False
        return True


__all__ = ["LoadedWeights", "WeightStore", "redis_key"]
