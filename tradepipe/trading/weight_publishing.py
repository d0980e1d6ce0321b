"""Publishing weights: the database's live row and, when configured, Redis for fast reads.

Used by the ``live_weights`` asset (newest partition), ``tradepipe weights promote`` and the
``promote_weights`` job (an explicit choice of any recorded row, e.g. a replay).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy.orm import Session, sessionmaker

from tradepipe.adapters.db.book_lock import hold_weights_lock
from tradepipe.adapters.db.engine import session_factory
from tradepipe.adapters.db.weights import find_weight_decision, promote
from tradepipe.adapters.weights_store import WeightStore
from tradepipe.core.weighting import weight_problems
from tradepipe.config.settings import Settings


class UnknownWeightsError(LookupError):
    pass


class UnsoundWeightsError(UnknownWeightsError):
    """The row exists but its weights must not go live (the rule of the blocking check ``weights_are_sound``).

    A subclass of UnknownWeightsError so that every caller refusing unknown IDs refuses these too.
    """


@dataclass(frozen=True)
class Publication:
    weight_history_id: int
    weights: dict[str, float]
    redis: bool


@dataclass(frozen=True)
class PromotionPreview:
    """What promoting a recorded set changes, and its evidence, shown before anything is written."""

    weight_history_id: int
    live_id: int | None
    live: dict[str, float]  # the live set (the static defaults when none was ever published)
    new: dict[str, float]
    method: str
    window: str
    expected_sharpe: float | None
    sharpe_improvement: float | None
    return_improvement: float | None
    reason: str
    replay: bool
    concentrated: list[tuple[str, float]]  # agents above TRADEPIPE_MAX_WEIGHT


def promotion_preview(settings: Settings, weight_history_id: int) -> PromotionPreview:
    """The difference from the live set and the evidence; the same refusals as :func:`publish_weight_set`."""
    from tradepipe.adapters.db.weights import live_weights
    from tradepipe.core.timeframes import iso_utc
    from tradepipe.core.weighting import concentration_excess

    sessions = session_factory(settings.resolved_database_url, settings.database_timeouts)
    with sessions() as session:
        row = find_weight_decision(session, weight_history_id)
        if row is None or row.book != settings.book:
            raise UnknownWeightsError(f"no weight_history row {weight_history_id} for book {settings.book!r}")
        problems = weight_problems(row.new_weights, set(settings.agents), settings.min_weight, settings.max_weight)
        if problems:
            raise UnsoundWeightsError(f"weight_history {weight_history_id} is not publishable: {'; '.join(problems)}")
        live = live_weights(session, settings.book)
        window = "-" if row.window_start is None or row.window_end is None else f"{iso_utc(row.window_start)} .. {iso_utc(row.window_end)}"
        new = {k: float(v) for k, v in row.new_weights.items()}
        return PromotionPreview(
            weight_history_id=row.id, live_id=live.id if live else None,
            live={k: float(v) for k, v in (live.new_weights if live else settings.default_weights).items()}, new=new,
            method=row.method, window=window, expected_sharpe=row.expected_sharpe, sharpe_improvement=row.sharpe_improvement,
            return_improvement=row.return_improvement, reason=row.reason, replay=row.is_replay,
            concentrated=concentration_excess(new, settings.max_weight),
        )


def publish_weights(settings: Settings, weight_history_id: int) -> Publication:
    """``publish_weight_set`` on the database and Redis the settings name (the CLI's way)."""
    sessions = session_factory(settings.resolved_database_url, settings.database_timeouts)
    return publish_weight_set(settings, sessions, settings.redis_url, weight_history_id)


def publish_weight_set(
    settings: Settings, sessions: sessionmaker[Session], redis_url: str | None, weight_history_id: int
) -> Publication:
    """Make a recorded weight set live: the database first (the record), then Redis (best effort).

    One transaction under the book's weights lock: concurrent promotions run one after the other,
    each clears the live row it sees and marks its own, so exactly one row is live after any of them."""
    with sessions.begin() as session:
        hold_weights_lock(session, settings.book, settings.book_lock_timeout_seconds)  # first: the read below is inside it
        row = find_weight_decision(session, weight_history_id)
        if row is None or row.book != settings.book:
            raise UnknownWeightsError(f"no weight_history row {weight_history_id} for book {settings.book!r}")
        problems = weight_problems(row.new_weights, set(settings.agents), settings.min_weight, settings.max_weight)
        if problems:
            raise UnsoundWeightsError(f"weight_history {weight_history_id} is not publishable: {'; '.join(problems)}")
        promoted_at = datetime.now(timezone.utc)
        promote(session, row, promoted_at)
        weights = {k: float(v) for k, v in row.new_weights.items()}
    store = WeightStore(
        None, redis_url, settings.book, frozenset(weights), settings.default_weights, None,
        redis_timeout_s=settings.redis_timeout_seconds,
    )
    # Two promotions may reach Redis in the other order than the database: the cycle compares the copy
    # with the live row (id and weights) and refreshes a copy that is not it.
    # The Redis copy carries the row's version (id and promotion time): a cycle compares it with the live row.
    return Publication(weight_history_id, weights, store.publish_to_redis(weights, weight_history_id, promoted_at))
