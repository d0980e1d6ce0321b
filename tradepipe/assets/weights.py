"""Agent weights: optimised daily from the performance window, checked, then published.

``agent_weights`` records every decision in weight_history; its blocking check stops a bad weight
set before ``live_weights`` publishes it. Re-materialising a past partition is a *replay*: it
recomputes from the signals stored for that window (deterministic), is recorded with its run id and
``is_replay``, and changes nothing live until promoted (``tradepipe weights promote ID``).
"""


from datetime import datetime
from typing import Any

import dagster as dg

from sqlalchemy.orm import Session, sessionmaker

from tradepipe.adapters.db.analytics import load_performance, load_signals
from tradepipe.adapters.db.models import WeightHistoryRow
from tradepipe.adapters.db.weights import find_weight_decision, latest_weight_decision, record_weight_decision
from tradepipe.adapters.db.weights import live_weights as current_live_row
from tradepipe.assets.analytics import agent_performance
from tradepipe.assets.metadata import table
from tradepipe.assets.partitions import ONE_DAY_PER_RUN, daily_with_today, is_replay_partition, partition_bounds, performance_window
from tradepipe.config.rules import book_rules
from tradepipe.core.metrics import daily_rule
from tradepipe.core.performance import agent_streams
from tradepipe.core.timeframes import iso_utc, periods_per_year
from tradepipe.core.weighting import decide_weights, method_explanation, weight_problems
from tradepipe.resources import LedgerDatabase, TradingConfigResource, WeightsReplicaResource
from tradepipe.trading.weight_publishing import UnsoundWeightsError, publish_weight_set
from tradepipe.config.settings import Settings


class AgentWeightsConfig(dg.Config):
    method: str | None = None
    """Weight method for this materialisation (hedge, max_sharpe, risk_parity, equal_weight); empty: TRADEPIPE_OPTIMIZER_METHOD."""
    replay: bool | None = None
    """Force replay (True) or live (False); empty: a partition older than the newest complete day is a replay."""


def _is_replay(context: dg.AssetExecutionContext, config: AgentWeightsConfig, live: WeightHistoryRow | None) -> bool:
    if config.replay is not None:
        return config.replay
    return is_replay_partition(context.partition_key, live.partition_date if live else None)


REPLAY_LABEL = "REPLAY - not live"
LIVE_LABEL = "LIVE decision"


def _side_by_side(old: dict[str, float], new: dict[str, float]) -> dg.TableMetadataValue:
    rows = [
        {"agent": a, "old_weight": round(old.get(a, 0.0), 6), "new_weight": round(new.get(a, 0.0), 6), "change": round(new.get(a, 0.0) - old.get(a, 0.0), 6)}
        for a in sorted(set(old) | set(new))
    ]
    return table(rows, ["agent", "old_weight", "new_weight", "change"])


@dg.asset(
    partitions_def=daily_with_today,
    # live_pool: the self-improvement loop's members (docs/self-improvement.md); the loop is off by default
    # and the decision below reads only the enabled agents, as it always did.
    deps=[agent_performance, dg.AssetKey("live_pool")],
    group_name="weights",
    backfill_policy=ONE_DAY_PER_RUN,
    kinds={"python", "sql"},
    description=(
        "Optimised agent weights for the window ending at the partition's end; recorded in weight_history. "
        "`why_these_weights` says how the method weights agents (the default hedge keeps every voting agent at or "
        "above the minimum weight, also one with negative figures: an exploration share, see the text); "
        "expected Sharpe: " + daily_rule() + " (TRADEPIPE_MIN_METRIC_DAYS)."
    ),
)
def agent_weights(
    context: dg.AssetExecutionContext, config: AgentWeightsConfig, trading: TradingConfigResource, ledger: LedgerDatabase
) -> dg.MaterializeResult:
    settings = trading.settings()
    method = config.method or settings.optimizer_method
    day_start, day_end = partition_bounds(context)
    start, end = performance_window(day_end, settings.performance_window_days)
    with ledger.sessions().begin() as session:
        performance = load_performance(session, settings.book, day_start.date())
        if not performance:
            raise dg.Failure(
                f"agent_performance has no rows for {day_start.date()}: materialise that partition first",
                allow_retries=False,
            )
        streams = agent_streams(load_signals(session, settings.book, start, end), book_rules(settings))
        live = current_live_row(session, settings.book)
        replay = _is_replay(context, config, live)
        current = {k: float(v) for k, v in live.new_weights.items()} if live else settings.default_weights
        decision = decide_weights(
            list(settings.agents), performance, streams, current,
            method=method, min_weight=settings.min_weight, max_weight=settings.max_weight,
            min_signals=settings.min_signals, min_sharpe=settings.min_sharpe,
            periods_per_year=periods_per_year(settings.resolved_timeframe), risk_free=settings.risk_free_rate,
            learning_rate=settings.hedge_learning_rate, min_days=settings.min_metric_days,
        )
        row = record_weight_decision(
            session,
            book=settings.book, partition_date=day_start.date(), agent_weights=decision.weights,
            old_weights=current, new_weights=decision.weights, method=method,
            window_days=settings.performance_window_days, window_start=start, window_end=end,
            expected_sharpe=decision.expected_sharpe, sharpe_improvement=decision.sharpe_improvement,
            return_improvement=decision.return_improvement, weights_updated=decision.updated,
            reason=("replay: " if replay else "") + decision.reason, is_replay=replay, run_id=context.run_id,
        )
        history_id = row.id
    if replay:  # the runs list shows it too, not only this page
        context.instance.add_run_tags(context.run_id, {"tradepipe/weights": "replay"})
    explanation = method_explanation(
        method, learning_rate=settings.hedge_learning_rate, min_weight=settings.min_weight, max_weight=settings.max_weight,
        min_signals=settings.min_signals, min_sharpe=settings.min_sharpe,
    )
    metadata = weights_metadata(history_id, decision, current, method, replay, start, end, explanation)
    metadata["figures"] = "expected Sharpe: " + daily_rule(settings.min_metric_days)
    return dg.MaterializeResult(metadata=metadata)


def weights_metadata(
    history_id: int, decision: Any, old: dict[str, float], method: str, replay: bool, start: datetime, end: datetime, explanation: str = ""
) -> dict[str, Any]:
    return {
        "decision": REPLAY_LABEL if replay else LIVE_LABEL,
        "weight_history_id": history_id,
        "weights_updated": decision.updated,
        "is_replay": replay,
        "method": method,
        "reason": decision.reason,
        "old_weights": dg.MetadataValue.json(old),
        "new_weights": dg.MetadataValue.json(decision.weights),
        "old_vs_new": _side_by_side(old, decision.weights),
        "improvement": dg.MetadataValue.json({"sharpe_improvement": decision.sharpe_improvement, "return_improvement": decision.return_improvement}),
        "expected_sharpe": decision.expected_sharpe if decision.expected_sharpe is not None else float("nan"),
        "eligible_agents": dg.MetadataValue.json(decision.eligible),
        "ineligible_agents": dg.MetadataValue.json(decision.ineligible),
        "window": f"{start.isoformat()} .. {end.isoformat()}",
        "notes": dg.MetadataValue.json(list(decision.notes)),
        "why_these_weights": explanation,
    }


def _latest_decision(sessions: sessionmaker[Session], book: str, partition_key: str) -> WeightHistoryRow | None:
    with sessions() as session:
        return latest_weight_decision(session, book, datetime.fromisoformat(partition_key).date())


@dg.asset_check(asset=agent_weights, blocking=True, partitions_def=daily_with_today, description="weights sum to 1 (1e-9), within bounds, finite, known agents")
def weights_are_sound(
    context: dg.AssetCheckExecutionContext, trading: TradingConfigResource, ledger: LedgerDatabase
) -> dg.AssetCheckResult:
    settings = trading.settings()
    row = _latest_decision(ledger.sessions(), settings.book, context.partition_key)
    if row is None:
        return dg.AssetCheckResult(passed=False, metadata={"problem": "no weight_history row for this partition"})
    problems = weight_problems(row.new_weights, set(settings.agents), settings.min_weight, settings.max_weight)
    return dg.AssetCheckResult(passed=not problems, metadata={"weight_history_id": row.id, "problems": dg.MetadataValue.json(problems)})


@dg.asset(
    partitions_def=daily_with_today,
    deps=[agent_weights],
    group_name="weights",
    backfill_policy=ONE_DAY_PER_RUN,
    kinds={"python", "redis"},
    description="Publishes the newest partition's weights (database live row + Redis); replays are never published here.",
)
def live_weights(
    context: dg.AssetExecutionContext, trading: TradingConfigResource, ledger: LedgerDatabase, weights_cache: WeightsReplicaResource
) -> dg.MaterializeResult:
    settings = trading.settings()
    row = _latest_decision(ledger.sessions(), settings.book, context.partition_key)
    if row is None:
        raise dg.Failure(f"no agent_weights decision recorded for {context.partition_key}")
    if row.is_replay:
        action = f"REPLAY not published; promote it with `tradepipe weights promote {row.id}`"
    elif not row.weights_updated:
        action = f"current weights kept ({row.reason})"
    else:
        try:  # re-checked here too: live_weights may be materialised without its upstream check
            publication = publish_weight_set(settings, ledger.sessions(), weights_cache.redis_url, row.id)
        except UnsoundWeightsError as exc:
            raise dg.Failure(str(exc), allow_retries=False) from exc
        action = f"published weight_history {row.id} to the database" + (" and Redis" if publication.redis else "")
    context.log.info(action)
    # The page always shows what trades now: the live set, whichever partition this run decided.
    return dg.MaterializeResult(
        metadata={
            "action": action,
            "this_partition": f"{REPLAY_LABEL if row.is_replay else LIVE_LABEL}: weight_history {row.id}",
            "weight_history_id": row.id,
            "weights": dg.MetadataValue.json(row.new_weights),
            **live_set_metadata(settings, ledger.sessions()),
        }
    )


def live_set_metadata(settings: Settings, sessions: sessionmaker[Session]) -> dict[str, Any]:
    """What trades now, as the ``live_weights`` page shows it (after a materialisation or a promotion)."""
    with sessions() as session:
        live = current_live_row(session, settings.book)
    return {
        "live_weight_history_id": live.id if live else -1,
        "live_weights": dg.MetadataValue.json(live.new_weights if live else settings.default_weights),
        "live_source": (
            f"weight_history {live.id} (partition {live.partition_date}, promoted {iso_utc(live.promoted_at, timespec='auto', suffix='+00:00') if live.promoted_at else '-'})"
            if live else "static defaults (no weight set published yet)"
        ),
        # The loop closing: every next trading cycle loads this set (its page names the version it used).
        "used_by": dg.MetadataValue.asset(dg.AssetKey("portfolio_state")),
    }


def promotion_materialization(settings: Settings, sessions: sessionmaker[Session], weight_history_id: int) -> dg.AssetMaterialization:
    """A promotion changes what ``live_weights`` holds, so it is recorded as a materialisation of it.

    Its partition is the promoted row's day when that day is a partition (a promoted replay is that
    day's live decision); the asset's page then shows the promoted set as the latest.
    """
    with sessions() as session:
        row = find_weight_decision(session, weight_history_id)
    day = row.partition_date.isoformat() if row is not None and row.partition_date is not None else None
    partition = day if day is not None and daily_with_today.has_partition_key(day) else None
    return dg.AssetMaterialization(
        asset_key="live_weights",
        partition=partition,
        description=f"weight_history {weight_history_id} promoted to live",
        metadata={
            "action": f"promoted weight_history {weight_history_id}",
            "weight_history_id": weight_history_id,
            **live_set_metadata(settings, sessions),
        },
    )


class PromoteConfig(dg.Config):
    weight_history_id: int


@dg.op(description="Make a recorded weight set (e.g. a replay) the live weights.")
def promote_weight_set(
    context: dg.OpExecutionContext,
    config: PromoteConfig,
    trading: TradingConfigResource,
    ledger: LedgerDatabase,
    weights_cache: WeightsReplicaResource,
) -> None:
    settings = trading.settings()
    publication = publish_weight_set(settings, ledger.sessions(), weights_cache.redis_url, config.weight_history_id)
    context.log.info(f"promoted weight_history {publication.weight_history_id}: {publication.weights} (redis: {publication.redis})")
    context.log_event(promotion_materialization(settings, ledger.sessions(), publication.weight_history_id))


