"""Where the trading cycle gets its agent weights, and where the optimiser publishes them.

Every cached copy carries its version: the ``weight_history`` id and the time it was published
(the row's ``promoted_at``). The database's live row is the record, so when the database answers,
a cached set is used only if it is that row (same id); a cache holding any other set (a promotion
made while Redis was down, a lost write) is ignored, noted, and refreshed from the row. When the
database does not answer, the newest cached version is used: Redis, else the last weights this
machine used (a small file under TRADEPIPE_HOME), else the static defaults from settings. A source
that is down is skipped with its error noted; loading weights never fails a cycle.

A cached copy is trusted for what it holds, not for its id alone. Redis carries, with the id, the
SHA-256 of the weights as published (``weights_sha256``); a copy is used only if

* its weights hash to that digest (a copy changed after publication is refused);
* when the database answers, they are the live row's weights (same id *and* same digest);
* they pass the publication rule (``core.weighting.weight_problems``: known agents, sum 1, every
  weight within the bounds) when the store is given the bounds, as the trading cycle's is.

A refused copy is noted, and refreshed from the live row when the database answers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from sqlalchemy.orm import Session, sessionmaker

from tradepipe.adapters.db.weights import live_weights
from tradepipe.core.redaction import redact
from tradepipe.core.timeframes import iso_utc
from tradepipe.core.weighting import weight_problems

log = logging.getLogger(__name__)
REDIS_TIMEOUT_S = 0.5


@dataclass(frozen=True)
class WeightsVersion:
    """Which recorded weight set this is: its ``weight_history`` row and when that row was published."""

    weight_history_id: int
    published_at: str | None  # ISO-8601 UTC; None when the publisher did not say

    def describe(self) -> str:
        return f"weight_history {self.weight_history_id}" + (f" published {self.published_at}" if self.published_at else "")


@dataclass(frozen=True)
class LoadedWeights:
    weights: dict[str, float]
    source: str  # "redis" | "database" | "last_known" | "defaults"
    notes: tuple[str, ...] = ()
    version: WeightsVersion | None = None  # None for the static defaults


@dataclass(frozen=True)
class _Found:
    weights: dict[str, float]
    version: WeightsVersion | None


def redis_key(book: str) -> str:
    return f"tradepipe:{book}:weights"


def weights_digest(weights: Mapping[str, float]) -> str:
    """SHA-256 of the weights' canonical JSON (sorted names, each value as a float): equal sets, equal digests."""
    canonical = json.dumps({str(k): float(v) for k, v in weights.items()}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class CopyRefused(ValueError):
    """A cached copy that answered but must not be traded (its message says why)."""


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


def _version_of(payload: Mapping[str, Any]) -> WeightsVersion | None:
    history_id = payload.get("weight_history_id")
    if not isinstance(history_id, int) or isinstance(history_id, bool):
        return None
    published = payload.get("published_at")
    return WeightsVersion(history_id, str(published) if published else None)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else iso_utc(moment, timespec="auto", suffix="+00:00")


def _newest(*candidates: tuple[str, _Found | None]) -> tuple[str, _Found] | None:
    """The candidate with the latest publication time (the first one on a tie or without times)."""
    present = [(source, found) for source, found in candidates if found is not None]
    if not present:
        return None

    def published(item: tuple[str, _Found]) -> str:
        version = item[1].version
        return (version.published_at or "") if version else ""

    best = present[0]
    for item in present[1:]:
        if published(item) > published(best):
            best = item
    return best


class WeightStore:
    def __init__(
        self,
        sessions: sessionmaker[Session] | None,
        redis_url: str | None,
        book: str,
        agents: frozenset[str],
        defaults: Mapping[str, float],
        cache_file: Path | None,
        redis_timeout_s: float = REDIS_TIMEOUT_S,
        bounds: tuple[float, float] | None = None,
    ) -> None:
        """``bounds`` (min_weight, max_weight): a cached copy must also pass ``weight_problems`` with them."""
        self._sessions = sessions
        self._redis_url = redis_url
        self._book = book
        self._agents = agents
        self._defaults = dict(defaults)
        self._cache_file = cache_file
        self._redis_timeout_s = redis_timeout_s
        self._bounds = bounds

    def _redis(self):  # type: ignore[no-untyped-def]
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        # One attempt: redis-py's default retries would multiply the bound; the next cycle tries again.
        return redis.Redis.from_url(
            self._redis_url,
            socket_timeout=self._redis_timeout_s,
            socket_connect_timeout=self._redis_timeout_s,
            retry=Retry(NoBackoff(), 0),
        )

    def _from_redis(self) -> _Found | None:
        if not self._redis_url:
            return None
        client = self._redis()
        try:
            raw = client.get(redis_key(self._book))
        finally:
            client.close()
        if not raw:
            return None
        payload = json.loads(raw)
        weights = _valid(payload["weights"], self._agents)
        if weights is None:
            return None
        version = _version_of(payload)
        held = version.describe() if version else "an unversioned set"
        digest = payload.get("weights_sha256")
        if digest is not None and digest != weights_digest(weights):
            raise CopyRefused(f"redis copy of {held} does not match its weights_sha256 (changed after publication)")
        self._check_sound(weights, f"redis copy of {held}")
        return _Found(weights, version)

    def _check_sound(self, weights: Mapping[str, float], what: str) -> None:
        if self._bounds is None:
            return
        problems = weight_problems(weights, set(self._agents), *self._bounds)
        if problems:
            raise CopyRefused(f"{what} is not a sound weight set: {'; '.join(problems)}")

    def _from_database(self) -> _Found | None:
        """The live row; raises when the database does not answer."""
        if self._sessions is None:
            raise LookupError("no database configured")
        with self._sessions() as session:
            row = live_weights(session, self._book)
        if row is None:
            return None
        weights = _valid(row.new_weights, self._agents)
        return _Found(weights, WeightsVersion(row.id, _iso(row.promoted_at))) if weights is not None else None

    def _from_cache_file(self) -> _Found | None:
        if self._cache_file is None or not self._cache_file.exists():
            return None
        payload = json.loads(self._cache_file.read_text())
        if isinstance(payload, Mapping) and "weights" in payload:
            weights = _valid(payload["weights"], self._agents)
            version = _version_of(payload)
        else:
            weights, version = _valid(payload, self._agents), None  # the format before versions: a bare agent -> weight map
        if weights is None:
            return None
        self._check_sound(weights, f"the last-known weights in {self._cache_file}")
        return _Found(weights, version)

    def _remember(self, found: _Found) -> None:
        if self._cache_file is None:
            return
        payload: dict[str, Any] = {"weights": dict(found.weights)}
        if found.version is not None:
            payload |= {"weight_history_id": found.version.weight_history_id, "published_at": found.version.published_at}
        try:
            self._cache_file.parent.mkdir(parents=True, exist_ok=True)
            self._cache_file.write_text(json.dumps(payload, sort_keys=True))
        except OSError as exc:
            log.warning("could not remember weights in %s: %s", self._cache_file, exc)

    def load(self) -> LoadedWeights:
        notes: list[str] = []
        answers: dict[str, _Found | None] = {}
        failed: set[str] = set()
        readers = {"redis": self._from_redis, "database": self._from_database}
        for source, reader in readers.items():
            try:
                answers[source] = reader()
            except CopyRefused as refused:  # the source answered; its copy is not traded
                answers[source] = None
                notes.append(f"{refused}: ignored")
            except Exception as exc:  # any failure of a source means: decide without it
                failed.add(source)
                if not (source == "database" and self._sessions is None):
                    notes.append(f"{source} unavailable: {type(exc).__name__}: {redact(str(exc)[:200], self._redis_url)}")
        cached, live = answers.get("redis"), answers.get("database")

        if "database" not in failed and live is not None:
            # The database answers: its live row wins over any cache that holds another set.
            same_id = (
                cached is not None and cached.version is not None and live.version is not None
                and cached.version.weight_history_id == live.version.weight_history_id
            )
            if cached is not None and same_id and weights_digest(cached.weights) == weights_digest(live.weights):
                return self._use("redis", LoadedWeights(cached.weights, "redis", tuple(notes), live.version), cached)
            if cached is not None and same_id:
                notes.append(f"redis held other weights under the live {cached.version.describe()}: ignored and refreshed")  # type: ignore[union-attr]
            elif cached is not None:
                held = cached.version.describe() if cached.version else "an unversioned set"
                notes.append(f"redis held {held}, not the live {live.version.describe() if live.version else 'row'}: ignored and refreshed")
            if self._redis_url and "redis" not in failed and live.version is not None:
                self.publish_to_redis(live.weights, live.version.weight_history_id, live.version.published_at)
            return self._use("database", LoadedWeights(live.weights, "database", tuple(notes), live.version), live)

        if "database" not in failed and self._sessions is not None:
            # The database answers and has no usable live row: nothing cached is live either.
            if cached is not None:
                notes.append("redis held a weight set but the database has no live row: ignored")
            return LoadedWeights(dict(self._defaults), "defaults", tuple(notes))
        try:
            file_found = self._from_cache_file()
        except Exception as exc:
            notes.append(f"last_known unavailable: {type(exc).__name__}: {str(exc)[:200]}")
            file_found = None
        newest = _newest(("redis", cached), ("last_known", file_found))
        if newest is not None:
            source, found = newest
            return self._use(source, LoadedWeights(found.weights, source, tuple(notes), found.version), found)
        return LoadedWeights(dict(self._defaults), "defaults", tuple(notes))

    def _use(self, source: str, loaded: LoadedWeights, found: _Found) -> LoadedWeights:
        if source != "last_known":
            self._remember(_Found(found.weights, loaded.version))
        return loaded

    def publish_to_redis(self, weights: Mapping[str, float], history_id: int, published_at: str | datetime | None = None) -> bool:
        """Best effort: the database row is the record; Redis only makes it fast to read.

        ``published_at`` is the row's ``promoted_at`` (its version); now when not given."""
        if not self._redis_url:
            return False
        when = published_at if isinstance(published_at, str) else _iso(published_at or datetime.now(timezone.utc))
        payload = {"weights": dict(weights), "weights_sha256": weights_digest(weights), "weight_history_id": history_id, "published_at": when}
        try:
            client = self._redis()
            try:
                client.set(redis_key(self._book), json.dumps(payload, sort_keys=True))
            finally:
                client.close()
        except Exception as exc:
            log.warning("could not publish weights to Redis: %s", redact(str(exc), self._redis_url))
            return False
        return True


__all__ = ["CopyRefused", "LoadedWeights", "WeightStore", "WeightsVersion", "redis_key", "weights_digest"]
