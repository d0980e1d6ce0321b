"""The self-improvement loop as assets: candidates -> evaluations -> live_pool (-> agent_weights), and ML models.

* ``variant_candidates`` proposes one generation (random variants plus mutations of the pool's members,
  ``research.variants.propose_generation``) as ``strategy_variants`` rows, and adds one partition per
  candidate to ``variant_evaluations``. While the newest generation has not been selected, it proposes
  nothing new and re-adds that generation's partitions instead (an interrupted generation resumes).
* ``variant_evaluations`` (a ``DynamicPartitionsDefinition``, one partition per variant) evaluates one
  candidate walk-forward on the bars closed before the generation's day: its solo book under the live
  book's rules and fees, its deflated Sharpe against every variant tried so far. A backfill of the
  generation's partitions is one run per partition through the run queue.
* ``live_pool`` selects once every candidate of the generation is evaluated: the generation's PBO
  (CSCV over the candidates' streams side by side), retirements of decayed members and promotions by
  ``research.selection``'s rules, every change a ``strategy_variant_events`` row, all in one transaction.
* ``ml_model`` (monthly) trains each model kind on the bars closed before its partition's start.

Inputs are candle files (``data_dir``, default TRADEPIPE_WALKFORWARD_DATA_ROOT / the first of
TRADEPIPE_WALKFORWARD_DATASETS), as for ``walk_forward``. The research package is imported inside the
bodies: a trading cycle loading the code location never pays for it.
"""


from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg

from tradepipe.assets.metadata import table
from tradepipe.config.preflight import location_settings
from tradepipe.config.settings import Settings
from tradepipe.resources import LedgerDatabase, TradingConfigResource

variant_partitions = dg.DynamicPartitionsDefinition(name="variant_evaluations")
# Months from TRADEPIPE_PARTITIONS_START, the current one included (its model is trained on the bars before it).
model_months = dg.MonthlyPartitionsDefinition(start_date=location_settings().partitions_start.isoformat(), timezone="UTC", end_offset=1)

VARIANT_COLUMNS = ["name", "family", "status", "origin", "generation", "deflated_sharpe", "trials", "pbo", "sharpe", "trades", "reason"]
MODEL_COLUMNS = ["id", "name", "kind", "partition_key", "status", "oos_accuracy", "training_rows", "sha256", "reason"]
PBO_BLOCKS = 8


class VariantGenerationConfig(dg.Config):
    data_dir: str = ""
    """Folder of BASE_QUOTE-TIMEFRAME candle files; empty: TRADEPIPE_WALKFORWARD_DATA_ROOT / the first TRADEPIPE_WALKFORWARD_DATASETS."""
    symbols: list[str] = []
    """Symbols; empty: TRADEPIPE_SYMBOLS."""
    timeframe: str = "1h"
    as_of: str | None = None
    """Decision day (ISO date, UTC); only bars closed by its midnight are read. Empty: the day the newest bar closes."""
    candidates: int = 40
    mutations: int = 2
    """Neighbours proposed per pool member."""
    lookback_days: int = 90
    """Evaluation window: the candidates' solo books start in cash this many days before the decision."""
    seed: int = 0


def _data_dir(settings: Settings, data_dir: str) -> Path:
    if data_dir:
        return Path(data_dir)
    if settings.walkforward_data_root is None or not settings.walkforward_datasets:
        raise dg.Failure("no candles: set data_dir, or TRADEPIPE_WALKFORWARD_DATA_ROOT and TRADEPIPE_WALKFORWARD_DATASETS", allow_retries=False)
    return Path(settings.walkforward_data_root) / settings.walkforward_datasets[0]


def _market(window: dict[str, Any]) -> Any:
    from tradepipe.research.data import WalkForwardInputError, load_market

    try:
        return load_market(window["data_dir"], window["symbols"], window["timeframe"])
    except WalkForwardInputError as exc:
        raise dg.Failure(f"candles refused: {exc}", allow_retries=False) from exc


def _variant(row: Any) -> Any:
    """The row's variant, re-checked against its family's bounds (a row edited out of bounds is one line)."""
    from tradepipe.research.variants import VariantError, make_variant

    try:
        return make_variant(row.family or "", row.parameters)
    except VariantError as exc:
        raise dg.Failure(f"variant {row.name}: {exc}; nothing promoted", allow_retries=False) from exc


def variant_records(rows: list[Any]) -> list[dict[str, Any]]:
    """The rows as ``tradepipe variants list`` shows them (the UI tables use the same)."""
    return [
        {
            "name": r.name, "family": r.family, "status": r.status, "origin": r.origin, "generation": r.generation,
            "deflated_sharpe": r.deflated_sharpe, "trials": r.trials, "pbo": r.pbo,
            "sharpe": (r.metrics or {}).get("sharpe"), "trades": (r.metrics or {}).get("trades"), "reason": r.reason,
        }
        for r in rows
    ]


@dg.asset(
    group_name="self_improvement",
    kinds={"python", "sql"},
    description="One generation of strategy-variant candidates (strategy_variants rows) and their variant_evaluations partitions; "
    "resumes the newest generation while it has not been selected.",
)
def variant_candidates(
    context: dg.AssetExecutionContext, config: VariantGenerationConfig, trading: TradingConfigResource, ledger: LedgerDatabase
) -> dg.MaterializeResult:
    from tradepipe.adapters.db.research import add_candidates, generation_rows, newest_generation, pool_members, repropose, undecided, variant_by_name
    from tradepipe.core.timeframes import DAY_MS
    from tradepipe.research.variants import propose_generation

    settings = trading.settings()
    now = datetime.now(UTC)
    with ledger.existing_sessions().begin() as session:
        newest = newest_generation(session)
        if newest is not None and undecided(session, newest):
            generation, action = newest, f"resumed generation {newest}: its selection is not recorded yet"
        else:
            window = {
                "data_dir": str(_data_dir(settings, config.data_dir)), "symbols": list(config.symbols or settings.symbols),
                "timeframe": config.timeframe, "lookback_days": config.lookback_days,
            }
            market = _market(window)
            if config.as_of:
                moment = datetime.fromisoformat(config.as_of)
                moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
                day = int(moment.timestamp() * 1000) // DAY_MS * DAY_MS
            else:
                day = (int(market.timeline[-1]) + market.step_ms) // DAY_MS * DAY_MS
            window["day_ms"] = day
            members = {row.name: _variant(row) for row in pool_members(session)}
            generation = (newest or 0) + 1
            proposed = propose_generation(members, day // DAY_MS, config.candidates, config.mutations, config.seed)
            fresh = []
            for variant, origin in proposed:
                known = variant_by_name(session, variant.name)
                if known is None:
                    fresh.append({"name": variant.name, "family": variant.family, "parameters": dict(variant.params), "origin": origin, "description": variant.describe()})
                else:
                    repropose(session, known, generation, now)
                    known.metrics = {"window": window}
            for row in add_candidates(session, fresh, generation):
                row.metrics = {"window": window}
            action = f"proposed generation {generation}: {len(proposed)} candidates for {datetime.fromtimestamp(day / 1000, UTC).date()}"
        rows = generation_rows(session, generation)
        names = [r.name for r in rows]
        records = variant_records(rows)
    # After the rows are committed: a run that dies here leaves an open generation whose next run re-adds them.
    context.instance.add_dynamic_partitions(variant_partitions.name, names)
    context.log.info(action)
    return dg.MaterializeResult(metadata={
        "generation": generation, "action": action, "candidates": len(names),
        "partitions": dg.MetadataValue.json(names), "variants": table(records, VARIANT_COLUMNS),
        "next": "backfill variant_evaluations over these partitions (one run each), then materialise live_pool",
    })


@dg.asset(
    partitions_def=variant_partitions,
    deps=[variant_candidates],
    group_name="self_improvement",
    kinds={"python", "sql"},
    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=1),
    description="One candidate's walk-forward evaluation on the bars closed before its generation's day: solo book with the "
    "live book's rules and fees, deflated Sharpe against every variant tried so far (trial count recorded).",
)
def variant_evaluations(context: dg.AssetExecutionContext, trading: TradingConfigResource, ledger: LedgerDatabase) -> dg.MaterializeResult:
    from tradepipe.adapters.db.research import record_evaluations, trials_through, variant_by_name
    from tradepipe.config.rules import book_rules
    from tradepipe.core.timeframes import periods_per_year
    from tradepipe.research.evaluation import stream_figures, window_rows, window_streams
    from tradepipe.research.selection import judge
    from tradepipe.research.variants import longest_window

    settings = trading.settings()
    name = context.partition_key
    with ledger.existing_sessions().begin() as session:
        row = variant_by_name(session, name)
        if row is None or not (row.metrics or {}).get("window"):
            raise dg.Failure(f"variant {name!r} has no proposed generation in strategy_variants: materialise variant_candidates first", allow_retries=False)
        variant = _variant(row)
        window = dict(row.metrics["window"])
        market = _market(window)
        rows = window_rows(market.timeline, market.step_ms, window["day_ms"], window["lookback_days"])
        returns = window_streams(market, [variant], book_rules(settings), longest_window(), rows)
        if returns.shape[0] < 48:
            raise dg.Failure(f"variant {name}: {returns.shape[0]} bars in its evaluation window, fewer than 48; nothing evaluated", allow_retries=False)
        figures = stream_figures(returns, periods_per_year(market.timeframe))
        trials = trials_through(session, row.generation or 0)
        evaluation = judge(name, figures, 0, returns.shape[0], trials, row.pbo)
        metrics = {
            "window": window, "sharpe": evaluation.sharpe, "trades": evaluation.trades, "observations": int(returns.shape[0]),
            "total_return": float((1.0 + returns[:, 0]).prod() - 1.0),
        }
        record_evaluations(session, [{"name": name, "metrics": metrics, "deflated_sharpe": evaluation.deflated_sharpe, "pbo": row.pbo, "trials": trials}], datetime.now(UTC))
        status, generation = row.status, row.generation
    return dg.MaterializeResult(metadata={
        "variant": variant.describe(), "status": status, "generation": generation or 0,
        "deflated_sharpe": evaluation.deflated_sharpe, "trials": trials, "sharpe": evaluation.sharpe, "trades": evaluation.trades,
        "observations": int(returns.shape[0]),
        "pbo": "recorded by live_pool when the generation is selected" if row.pbo is None else float(row.pbo),
    })


def _generation_figures(settings: Settings, rows: list[Any], members: list[Any], rules: Any) -> tuple[float | None, dict[str, float | None]]:
    """The generation's PBO (CSCV over its candidates' window streams side by side; None when too short)
    and each member's annualised Sharpe over the last ``decay_days`` before the generation's day."""
    from tradepipe.config.rules import book_rules
    from tradepipe.core.timeframes import periods_per_year
    from tradepipe.research.evaluation import stream_figures, window_rows, window_streams
    from tradepipe.research.selection import pbo_cscv
    from tradepipe.research.variants import longest_window

    window = dict(rows[0].metrics["window"])
    market = _market(window)
    book, history = book_rules(settings), longest_window()
    span = window_rows(market.timeline, market.step_ms, window["day_ms"], window["lookback_days"])
    returns = window_streams(market, [_variant(r) for r in rows], book, history, span)
    pbo = pbo_cscv(returns, blocks=PBO_BLOCKS)["pbo"] if len(rows) >= 2 and returns.shape[0] >= 2 * PBO_BLOCKS else None
    if not members:
        return pbo, {}
    recent = window_rows(market.timeline, market.step_ms, window["day_ms"], rules.decay_days)
    streams = window_streams(market, [_variant(m) for m in members], book, history, recent)
    if streams.shape[0] <= 2:
        return pbo, {m.name: None for m in members}
    sharpe = stream_figures(streams, periods_per_year(market.timeframe))["sharpe"]
    return pbo, {m.name: float(s) for m, s in zip(members, sharpe)}


@dg.asset(
    deps=[variant_evaluations],
    group_name="self_improvement",
    kinds={"python", "sql"},
    description="The live pool of promoted variants: selects the newest generation once every candidate is evaluated "
    "(its PBO, retirements, promotions by the documented rules; every change a row with its reason). Upstream of agent_weights.",
)
def live_pool(context: dg.AssetExecutionContext, trading: TradingConfigResource, ledger: LedgerDatabase) -> dg.MaterializeResult:
    from tradepipe.adapters.db.research import apply_pool_changes, generation_rows, list_variants, newest_generation, pool_members, undecided
    from tradepipe.research.selection import PoolRules, recorded_evaluation, select_generation

    settings = trading.settings()
    rules = PoolRules()
    changes: list[Any] = []
    pbo: float | None = None
    selected_rows: list[dict[str, Any]] = []
    with ledger.existing_sessions().begin() as session:
        generation = newest_generation(session)
        if generation is None or not undecided(session, generation):
            action = "no generation waiting for selection: pool unchanged" if generation is None else f"generation {generation} already selected: pool unchanged"
        else:
            rows = generation_rows(session, generation)
            waiting = [r.name for r in rows if r.status == "candidate" or r.deflated_sharpe is None]
            if waiting:
                raise dg.Failure(
                    f"generation {generation}: {len(waiting)} of {len(rows)} candidates not evaluated yet (e.g. {waiting[0]}): "
                    "backfill their variant_evaluations partitions first; the pool is unchanged",
                    allow_retries=False,
                )
            members = pool_members(session)
            pbo, recent = _generation_figures(settings, rows, members, rules)
            evaluations = [recorded_evaluation(r.name, r.metrics, r.deflated_sharpe, r.trials, pbo) for r in rows]
            changes = select_generation({m.name: float(m.deflated_sharpe or 0.0) for m in members}, recent, evaluations, rules)
            for r in rows:
                r.pbo = pbo
            apply_pool_changes(session, changes, datetime.now(UTC))
            selected_rows = variant_records(rows)
            moved = [c for c in changes if c.action != "reject"]
            action = f"selected generation {generation}: PBO {'-' if pbo is None else f'{pbo:.2f}'}, " + (
                ", ".join(f"{c.action} {c.name}" for c in moved) if moved else "no change to the pool"
            )
        pool_rows = variant_records(pool_members(session))
        recent_rows = variant_records(list_variants(session, limit=50))
    context.log.info(action)
    # The selection's verdict on each evaluation partition's page, next to the figures it recorded.
    decisions = {c.name: c for c in changes}
    for record in selected_rows:
        change = decisions.get(record["name"])
        context.log_event(dg.AssetObservation(
            asset_key=variant_evaluations.key, partition=record["name"],
            metadata={
                "pbo": float("nan") if pbo is None else pbo, "deflated_sharpe": record["deflated_sharpe"], "trials": record["trials"],
                "decision": change.action if change else "none", "reason": change.reason if change else record["reason"],
            },
        ))
    return dg.MaterializeResult(metadata={
        "action": action,
        "generation": generation or 0,
        "pbo": float("nan") if pbo is None else pbo,
        "members": len(pool_rows),
        "pool": table(pool_rows, VARIANT_COLUMNS),
        "changes": table([{"name": c.name, "action": c.action, "reason": c.reason} for c in changes], ["name", "action", "reason"]),
        "variants": table(recent_rows, VARIANT_COLUMNS),  # the rows `tradepipe variants list` prints, in its order
        "rules": f"promote: deflated Sharpe >= {rules.min_dsr}, >= {rules.min_trades} trades, PBO <= {rules.max_pbo}, "
        f"at most {rules.max_pool} members; retire: Sharpe over {rules.decay_days} days < {rules.retire_sharpe}",
        "used_by": dg.MetadataValue.asset(dg.AssetKey("agent_weights")),
    })


@dg.asset_check(asset=live_pool, description="at most the rules' number of members, each with its promotion on record")
def live_pool_within_rules(ledger: LedgerDatabase) -> dg.AssetCheckResult:
    from tradepipe.adapters.db.research import pool_members, variant_events
    from tradepipe.research.selection import PoolRules

    rules = PoolRules()
    with ledger.existing_sessions()() as session:
        members = pool_members(session)
        problems = [f"the pool has {len(members)} members, more than {rules.max_pool}"] if len(members) > rules.max_pool else []
        for member in members:
            events = variant_events(session, member.id)
            if not events or events[-1].action != "promote":
                problems.append(f"{member.name} is promoted without a promotion on record")
        names = [m.name for m in members]
    return dg.AssetCheckResult(passed=not problems, metadata={"members": dg.MetadataValue.json(names), "problems": dg.MetadataValue.json(problems)})


# --------------------------------------------------------------------------- ML models


class MlModelConfig(dg.Config):
    data_dir: str = ""
    """Folder of candle files; empty: TRADEPIPE_WALKFORWARD_DATA_ROOT / the first TRADEPIPE_WALKFORWARD_DATASETS."""
    symbols: list[str] = []
    timeframe: str = "1h"
    kinds: list[str] = ["logistic", "hgb"]
    horizon: int = 24
    """Bars ahead the label reads."""
    holdout_days: int = 30
    """The last days before the partition start: out-of-sample rows, never trained on."""


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@dg.asset(
    partitions_def=model_months,
    group_name="self_improvement",
    kinds={"python", "sql", "scikitlearn"},
    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=1),
    description="Each model kind trained on the bars closed before the month starts (ml_models: kind, features, hyperparameters, "
    "window, out-of-sample metrics, artifact + sha256, status). A failed or worse model keeps the promoted one, with the reason.",
)
def ml_model(context: dg.AssetExecutionContext, config: MlModelConfig, trading: TradingConfigResource, ledger: LedgerDatabase) -> dg.MaterializeResult:
    from tradepipe.adapters.db.research import promoted_model, record_model
    from tradepipe.core.timeframes import DAY_MS, timeframe_ms
    from tradepipe.research.ml import FEATURE_NAMES, ModelIntegrityError, ModelTrainingError, load_model, save_model, train, training_set

    settings = trading.settings()
    window = {"data_dir": str(_data_dir(settings, config.data_dir)), "symbols": list(config.symbols or settings.symbols), "timeframe": config.timeframe}
    market = _market(window)
    start = context.partition_time_window.start.astimezone(UTC)
    cutoff, step = _ms(start), timeframe_ms(config.timeframe)
    fit_cutoff = cutoff - config.holdout_days * DAY_MS
    holdout = training_set(market.bars, config.horizon, cutoff, step, first_ms=fit_cutoff)
    now = datetime.now(UTC)
    records: list[dict[str, Any]] = []
    refusals: list[str] = []
    with ledger.existing_sessions().begin() as session:
        for kind in config.kinds:
            name = f"{kind}_{context.partition_key}"
            base = {
                "name": name, "version": context.partition_key, "framework": "scikit-learn", "kind": kind, "features": list(FEATURE_NAMES),
                "partition_key": context.partition_key, "train_end": datetime.fromtimestamp(fit_cutoff / 1000, UTC), "created_at": now,
            }
            previous = promoted_model(session, kind)
            try:
                model = train(kind, market.bars, config.horizon, fit_cutoff, step, name=name)
            except ModelTrainingError as exc:
                kept = f"; model {previous.name} stays promoted" if previous else "; no model promoted"
                row = record_model(session, **base, status="failed", reason=f"training failed: {exc}{kept}", metrics={})
                records.append(_model_record(row))
                continue
            path, sha = save_model(model, Path(settings.home) / "models" / context.partition_key)
            accuracy = _accuracy(model.probability(holdout.x), holdout.y) if holdout.y.size else None
            metrics = {**model.metrics, "training_rows": model.training_rows, "oos_accuracy": accuracy, "oos_rows": int(holdout.y.size), "skipped_rows": model.skipped_rows}
            status, reason = "promoted", f"out-of-sample accuracy {_pct(accuracy)} on {holdout.y.size} held-out rows"
            if accuracy is None or accuracy <= 0.5:
                status, reason = "trained", f"not promoted: out-of-sample accuracy {_pct(accuracy)} not above 50%"
            elif previous is not None:
                try:
                    old = load_model(Path(previous.artifact_path or ""), previous.sha256 or "")
                    old_accuracy = _accuracy(old.probability(holdout.x), holdout.y)
                except ModelIntegrityError as exc:
                    status, reason = "trained", f"not promoted: the promoted model cannot be compared: {exc}"
                    refusals.append(str(exc))
                else:
                    if old_accuracy is not None and old_accuracy >= accuracy:
                        status, reason = "trained", f"not promoted: {_pct(accuracy)} out of sample, promoted {previous.name} has {_pct(old_accuracy)} on the same rows"
            if status == "promoted" and previous is not None:
                previous.status, previous.reason = "retired", f"replaced by {name}"
            row = record_model(
                session, **base, status=status, reason=reason, metrics=metrics, hyperparameters=model.hyperparameters,
                train_start=datetime.fromtimestamp(int(min(b.timestamps[0] for b in market.bars.values())) / 1000, UTC),
                artifact_path=str(path), sha256=sha,
            )
            records.append(_model_record(row))
    for record in records:
        context.log.info(f"{record['name']}: {record['status']} ({record['reason']})")
    if refusals:
        raise dg.Failure(refusals[0], allow_retries=False)  # recorded above; the run says it in one line
    return dg.MaterializeResult(metadata={
        "models": table(records, MODEL_COLUMNS),
        "trained_before": start.isoformat(),
        **{f"{r['kind']}/oos_accuracy": float(r["oos_accuracy"]) for r in records if r["oos_accuracy"] is not None},
    })


def _accuracy(probability: Any, labels: Any) -> float | None:
    import numpy as np

    known = np.isfinite(probability)
    return float(np.mean((probability[known] > 0.5) == (labels[known] > 0.5))) if known.any() else None


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _model_record(row: Any) -> dict[str, Any]:
    return {
        "id": row.id, "name": row.name, "kind": row.kind, "partition_key": row.partition_key, "status": row.status,
        "oos_accuracy": (row.metrics or {}).get("oos_accuracy"), "training_rows": (row.metrics or {}).get("training_rows"),
        "sha256": row.sha256, "reason": row.reason,
    }
