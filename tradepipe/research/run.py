"""One walk-forward request end to end: read the candles, run the engine, write summary.json,
results.json (the results tables per book, :mod:`tradepipe.research.results`) and report.html under
``TRADEPIPE_HOME/walkforward/<name>/``. Shared by ``tradepipe walkforward`` and the
``walk_forward`` Dagster asset.

Files and interruptions: at the start the previous summary.json / report.html of the name are
removed and ``run.json`` says ``running``, so a reader never takes an old or partial result for this
run's. The engine saves its state to ``checkpoint.pkl`` every 30 s (and when interrupted); ``resume``
continues from it if it was made from exactly the same inputs, otherwise the run starts over (and
says so). The summary, the results and the report are written only when every bar is done, each atomically.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from tradepipe.config.names import NameRefused, check_name, path_under_home
from tradepipe.core.performance import agent_streams
from tradepipe.core.timeframes import timeframe_ms
from tradepipe.core.trades import PeriodKind
from tradepipe.research.data import WalkForwardInputError, load_market
from tradepipe.research.engine import (
    EngineConfig,
    Progress,
    StreamsFunction,
    WeightPolicy,
    config_from_settings,
    default_strategies,
    run_walk_forward,
)
from tradepipe.research.adaptive import LoopConfig
from tradepipe.research.pool_book import LOOP_KEY, LOOP_METHOD, loop_record, merge_runs, run_pool_book
from tradepipe.research.report import render_report
from tradepipe.research.results import walkforward_results
from tradepipe.research.signals import SignalMode
from tradepipe.research.stats import DEFAULT_RESAMPLES, DEFAULT_SEED
from tradepipe.research.summary import build_summary, strategy_series, write_json


@dataclass(frozen=True)
class WalkForwardRequest:
    data_dir: Path
    name: str
    symbols: tuple[str, ...] | None = None  # None: TRADEPIPE_SYMBOLS
    timeframe: str = "1h"
    start: str | None = None  # ISO date or datetime (UTC unless it says otherwise); first bar traded
    end: str | None = None  # ISO; a bare date includes that whole day
    methods: tuple[str, ...] | None = None  # None: TRADEPIPE_OPTIMIZER_METHOD
    fee_bps: Decimal | None = None
    slippage_bps: Decimal | None = None
    window_days: int | None = None
    resume: bool = False
    signal_mode: SignalMode = "fast"
    resamples: int = DEFAULT_RESAMPLES
    seed: int = DEFAULT_SEED
    drop_last_bar: bool = True
    workers: int = 1  # > 1: strategies split among forked processes (same results, no checkpoint)
    include_agents: bool = True  # False: no agent:<name> books (a sweep compares methods, not agents)
    extra: dict[str, Any] = field(default_factory=dict)  # EngineConfig overrides (e.g. rebalance_band)
    breakdown: PeriodKind | None = None  # results.json also breaks profit down per day, week or month
    loop: LoopConfig = field(default_factory=LoopConfig)  # the adaptive:loop entry's discovery (method "loop")


@dataclass(frozen=True)
class WalkForwardOutcome:
    summary: dict[str, Any]
    directory: Path
    summary_path: Path
    report_path: Path
    resumed_from_bar: int
    bars: np.ndarray | None = None  # traded bar open times (ms)
    series: dict[str, dict[str, np.ndarray]] | None = None  # per strategy: equity, traded notional per bar
    results: dict[str, Any] | None = None  # results.json: the tables per book (core.results)
    results_path: Path | None = None


def parse_time(text: str | None, *, end: bool = False) -> int | None:
    """ISO date or datetime to epoch ms (UTC when no zone is given); a bare ``end`` date covers its day."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=UTC)
            moment = day + timedelta(days=1) - timedelta(milliseconds=1) if end else day
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
    except ValueError:
        raise WalkForwardInputError(f"cannot read {text!r} as an ISO date or datetime (e.g. 2020-01-01 or 2020-01-01T12:00Z)") from None
    return int(moment.timestamp() * 1000)


def known_methods() -> tuple[str, ...]:
    """Methods a run compares: the weight decision's (``core.weighting.METHODS`` if it lists them, else the
    optimiser's), and ``loop``, the self-improvement loop (``research.pool_book``)."""
    from tradepipe.core import weighting

    from tradepipe.core.optimizer import METHODS

    return (*(getattr(weighting, "METHODS", None) or METHODS), LOOP_METHOD)


def engine_config(settings: Any, request: WalkForwardRequest) -> EngineConfig:
    """The live settings as ``tradepipe backtest`` reads them for recorded candles: a replay market (so
    spot rules apply: long-only unless TRADEPIPE_ALLOW_SHORT=1), the request's timeframe and symbols."""
    update: dict[str, Any] = {"market_source": "replay", "replay_dir": Path(request.data_dir), "timeframe": request.timeframe}
    if request.symbols:
        update["symbols"] = list(request.symbols)
    settings = settings.model_copy(update=update)
    overrides: dict[str, Any] = dict(request.extra)
    if request.fee_bps is not None:
        overrides["fee_bps"] = Decimal(request.fee_bps)
    if request.slippage_bps is not None:
        overrides["slippage_bps"] = Decimal(request.slippage_bps)
    if request.window_days is not None:
        if request.window_days < 1:
            raise WalkForwardInputError(f"window must be at least 1 day, got {request.window_days}")
        overrides["window_days"] = request.window_days
    for name in ("fee_bps", "slippage_bps"):
        if name in overrides and not (overrides[name].is_finite() and overrides[name] >= 0):
            raise WalkForwardInputError(f"{name.replace('_', '-')} must be a number >= 0, got {overrides[name]}")
    return config_from_settings(settings, **overrides)


def run_request(
    settings: Any,
    request: WalkForwardRequest,
    *,
    progress: Callable[[Progress], None] | None = None,
    weight_policy: WeightPolicy | None = None,
    streams_function: StreamsFunction | None = None,
    say: Callable[[str], None] = lambda line: None,
    progress_every_s: float = 2.0,
) -> WalkForwardOutcome:
    try:
        check_name(request.name, "name")
    except NameRefused as exc:
        raise WalkForwardInputError(str(exc)) from None
    timeframe_ms(request.timeframe)
    methods = tuple(request.methods) if request.methods else (settings.optimizer_method,)
    unknown = [m for m in methods if m not in known_methods()]
    if unknown:
        raise WalkForwardInputError(f"unknown method(s) {', '.join(unknown)}: expected some of {', '.join(known_methods())}")
    if len(set(methods)) != len(methods):
        raise WalkForwardInputError(f"methods listed more than once: {', '.join(methods)}")
    start_ms, end_ms = parse_time(request.start), parse_time(request.end, end=True)
    if start_ms is not None and end_ms is not None and end_ms < start_ms:
        raise WalkForwardInputError(f"end {request.end} is before start {request.start}")
    config = engine_config(settings, request)
    market = load_market(request.data_dir, config.symbols, config.timeframe, drop_last_bar=request.drop_last_bar)
    if market.symbols != tuple(config.symbols):  # an unreadable file leaves its symbol out; the others go on
        config = replace(config, symbols=market.symbols)
        for note in market.notes:
            if " left out: " in note:
                say(note)

    try:
        directory = path_under_home(Path(settings.home), "walkforward", request.name)
    except NameRefused as exc:
        raise WalkForwardInputError(str(exc)) from None
    directory.mkdir(parents=True, exist_ok=True)
    summary_path, report_path, status_path = directory / "summary.json", directory / "report.html", directory / "run.json"
    results_path = directory / "results.json"
    checkpoint = directory / "checkpoint.pkl"
    for stale in (summary_path, results_path, report_path):
        stale.unlink(missing_ok=True)
    if not request.resume:
        checkpoint.unlink(missing_ok=True)
    elif checkpoint.exists():
        say(f"resuming from {checkpoint} if it matches these inputs")
    started = datetime.now(UTC).isoformat(timespec="seconds")
    write_json(status_path, {"status": "running", "started_at": started, "name": request.name})
    strategies = default_strategies(config, [m for m in methods if m != LOOP_METHOD])
    if not request.include_agents:
        strategies = [spec for spec in strategies if not spec.key.startswith("agent:")]
    loop_checkpoint = directory / "checkpoint_loop.pkl"
    if not request.resume:
        loop_checkpoint.unlink(missing_ok=True)
    loops: dict[str, dict[str, Any]] = {}
    try:
        run = run_walk_forward(
            market, config, strategies, start_ms=start_ms, end_ms=end_ms,
            weight_policy=weight_policy, signal_mode=request.signal_mode, progress=progress, progress_every_s=progress_every_s,
            checkpoint=checkpoint, resume=request.resume, workers=request.workers,
            streams_function=streams_function or agent_streams,
        )
        if LOOP_METHOD in methods:
            say(f"{LOOP_KEY}: discovery every {request.loop.every_days} days, then its book through the engine")
            pool = run_pool_book(
                market, config, request.loop, run.bars, signal_mode=request.signal_mode, progress=progress,
                progress_every_s=progress_every_s, checkpoint=loop_checkpoint, resume=request.resume,
            )
            run = merge_runs(run, pool)
            loops[LOOP_KEY] = loop_record(pool)
    except BaseException as exc:
        reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"failed: {type(exc).__name__}: {exc}"
        write_json(status_path, {"status": reason, "started_at": started, "name": request.name,
                                 "resume": checkpoint.exists(), "hint": "run again with --resume to continue" if checkpoint.exists() else ""})
        raise
    series = strategy_series(run)
    summary = build_summary(run, name=request.name, data_dir=str(request.data_dir), methods=methods, resamples=request.resamples, seed=request.seed, series=series, loops=loops)
    write_json(summary_path, summary)
    results = walkforward_results(run, series, name=request.name, quote_currency=settings.quote_currency, breakdown=request.breakdown)
    write_json(results_path, results)
    temporary = report_path.with_suffix(".html.tmp")
    temporary.write_text(render_report(summary, run.bars, series), encoding="utf-8")
    temporary.replace(report_path)
    write_json(status_path, {"status": "complete", "started_at": started, "name": request.name, "summary": str(summary_path), "results": str(results_path), "report": str(report_path)})
    checkpoint.unlink(missing_ok=True)
    loop_checkpoint.unlink(missing_ok=True)
    return WalkForwardOutcome(summary, directory, summary_path, report_path, run.resumed_from, run.bars, series, results, results_path)


__all__ = ["WalkForwardOutcome", "WalkForwardRequest", "parse_time", "run_request"]
