"""The walk-forward engine: the live loop over history, for several weight strategies side by side.

Per bar ``b`` (the union of the symbols' bar times, after the agents' warm-up, within start/end),
for every strategy, one ``tradepipe.core.cycle.run_cycle`` exactly as ``TradingRunner.run_cycle``
feeds it (``tests/walkforward/test_engine_equals_live.py`` proves the signals, orders and fills equal
on real candles): the newest ``history_bars`` closed rows per symbol, the weights in force, the
book's portfolio, the orders pending from the previous bar (filled at this bar's open), the UTC
day's start equity and halt flag, the last good marks. The ledger is the core's exact ``Decimal``
``Portfolio``, kept in memory instead of in SQL.

Per UTC day ``d`` (at its first bar), for every adaptive strategy, the live weight decision
(``agent_performance`` + ``agent_weights`` assets): the signals of the bars in
``[d - window_days, d)``, their return streams (``streams_function``, today
``core.performance.agent_streams``), the performance rows (``core.performance.evaluate_agents``), then
``core.weighting.decide_weights`` with the strategy's current weights. New weights that pass
``weight_problems`` (the blocking check before publication) are in force from ``d`` on: weights known
before day ``d`` trade day ``d``. A decision that raises keeps the previous weights, with the reason.

Plugging in other rules: ``weight_policy`` (default :func:`live_weight_policy`) decides one
strategy's weights for one day from a :class:`DayInputs`; ``streams_function`` turns the window's
signal table into per-agent return streams. Both are arguments of :func:`run_walk_forward`.
"""

from __future__ import annotations

import hashlib
import math
import os
import pickle
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tradepipe.config.rules import risk_limits
from tradepipe.core.agents import Agent, get_agents, max_history_needed
from tradepipe.core.cycle import guard_verdicts, CycleInputs, CycleResult, PendingOrder, run_cycle
from tradepipe.core.ensemble import DEFAULT_DEADBAND
from tradepipe.core.ledger import Portfolio, mark_to_market
from tradepipe.core.paper import PAPER_RULES
from tradepipe.core.performance import BookRules, agent_streams, evaluate_agents
from tradepipe.core.risk import RiskLimits
from tradepipe.core.timeframes import DAY_MS, periods_per_year
from tradepipe.core.types import AgentContext, Fill, MarketRules
from tradepipe.core.timeframes import iso_utc
from tradepipe.research.data import MarketFrame, WalkForwardInputError
from tradepipe.research.guard import window_verdicts
from tradepipe.research.signals import CachedAgent, SignalCache, SignalMode, build_signal_caches
from tradepipe.research.window import IncrementalStreams, SignalHistory, SignalWindow

StreamsFunction = Callable[[pd.DataFrame, BookRules], pd.DataFrame]


@dataclass(frozen=True)
class EngineConfig:
    """What a walk-forward trades with: the live settings' trading fields (see :func:`config_from_settings`)."""

    symbols: tuple[str, ...]
    timeframe: str
    agents: tuple[str, ...]
    starting_cash: Decimal
    fee_bps: Decimal
    slippage_bps: Decimal
    limits: RiskLimits
    rebalance_band: float
    history_bars: int
    window_days: int
    default_weights: Mapping[str, float]
    min_weight: float
    max_weight: float
    min_signals: int
    min_sharpe: float
    risk_free: float
    book: str = "walkforward"
    # turnover controls, hedge's learning rate, the metrics' minimum of returns
    entry_hysteresis: float = 0.0
    min_hold_bars: int = 0
    learning_rate: float = 0.25
    min_metric_returns: int = 20
    min_metric_days: int = 14

    @property
    def periods_per_year(self) -> float:
        return periods_per_year(self.timeframe)

    @property
    def book_rules(self) -> BookRules:
        """The terms of the traded streams: the live ``performance.book_rules(settings)``."""
        return BookRules(
            max_position_fraction=float(self.limits.max_position_fraction), allow_short=self.limits.allow_short,
            rebalance_band=self.rebalance_band, fee_bps=float(self.fee_bps), slippage_bps=float(self.slippage_bps),
            stop_loss_fraction=float(self.limits.stop_loss_fraction), entry_hysteresis=self.entry_hysteresis,
            min_hold_bars=self.min_hold_bars,
        )


def config_from_settings(settings: Any, **overrides: Any) -> EngineConfig:
    """The engine's config from a ``Settings`` object, as ``TradingRunner`` reads it; ``overrides``
    replace fields (e.g. ``fee_bps=Decimal(0)``)."""
    agents = get_agents(settings.agents)
    config = EngineConfig(
        symbols=tuple(settings.symbols),
        timeframe=settings.resolved_timeframe,
        agents=tuple(a.name for a in agents),
        starting_cash=settings.starting_cash,
        fee_bps=settings.fee_bps,
        slippage_bps=settings.slippage_bps,
        # Recorded candles are spot markets: long-only, as `tradepipe backtest` trades them, unless
        # TRADEPIPE_ALLOW_SHORT says otherwise (the synthetic market's short-selling default does not apply).
        limits=risk_limits(settings, allow_short=bool(settings.allow_short)),
        rebalance_band=settings.resolved_rebalance_band,
        history_bars=max(settings.history_bars, max_history_needed(agents) + 5),
        window_days=settings.performance_window_days,
        default_weights=dict(settings.default_weights),
        min_weight=settings.min_weight,
        max_weight=settings.max_weight,
        min_signals=settings.min_signals,
        min_sharpe=settings.min_sharpe,
        risk_free=settings.risk_free_rate,
        entry_hysteresis=settings.entry_hysteresis,
        min_hold_bars=settings.min_hold_bars,
        learning_rate=settings.hedge_learning_rate,
        min_metric_returns=settings.min_metric_returns,
        min_metric_days=settings.min_metric_days,
    )
    return replace(config, **overrides)


# --------------------------------------------------------------------------- strategies and decisions


@dataclass(frozen=True)
class StrategySpec:
    """One compared strategy: ``key`` as in summary.json; ``method`` None means fixed weights."""

    key: str
    weights: Mapping[str, float]
    method: str | None = None


@dataclass(frozen=True)
class DayInputs:
    """What the live weight decision of one day reads (shared by every adaptive strategy)."""

    day_ms: int  # the day the decision trades (00:00 UTC)
    signals: SignalWindow  # the window's votes; ``.frame`` is the table ``adapters.db.analytics.load_signals`` gives
    streams: pd.DataFrame  # per-agent return streams of the window
    performance: dict[str, dict[str, Any]]  # per-agent rows, as ``agent_performance`` stores them


@dataclass(frozen=True)
class PolicyDecision:
    weights: dict[str, float]
    updated: bool
    reason: str


WeightPolicy = Callable[[DayInputs, Mapping[str, float], str], PolicyDecision]


def live_weight_policy(config: EngineConfig) -> WeightPolicy:
    """The ``agent_weights`` asset's decision plus the ``weights_are_sound`` publication check."""
    from tradepipe.core.weighting import decide_weights, weight_problems

    def decide(day: DayInputs, current: Mapping[str, float], method: str) -> PolicyDecision:
        decision = decide_weights(
            list(config.agents), day.performance, day.streams, dict(current),
            method=method, min_weight=config.min_weight, max_weight=config.max_weight,
            min_signals=config.min_signals, min_sharpe=config.min_sharpe,
            periods_per_year=config.periods_per_year, risk_free=config.risk_free, learning_rate=config.learning_rate,
            min_days=config.min_metric_days,
        )
        if not decision.updated:
            return PolicyDecision(dict(current), False, decision.reason)
        problems = weight_problems(decision.weights, set(config.agents), config.min_weight, config.max_weight)
        if problems:
            return PolicyDecision(dict(current), False, f"kept previous weights: not publishable: {'; '.join(problems)}")
        return PolicyDecision(dict(decision.weights), True, decision.reason)

    return decide


def day_inputs(
    config: EngineConfig, day_ms: int, window: SignalWindow, streams_function: StreamsFunction, incremental: IncrementalStreams | None = None
) -> DayInputs:
    """The ``agent_performance`` asset's rows for the window (no trade attribution: the decision reads
    only each agent's Sharpe and signal count, so attributed P&L is left at 0).

    ``core.performance.agent_streams`` runs as ``SignalWindow.fast_agent_streams`` (proven equal), or,
    given ``incremental``, as the extension of the previous day's books (proven equal to that); any
    other streams function gets the signal table."""
    rules = config.book_rules
    if streams_function is not agent_streams:
        streams = streams_function(window.frame, rules)
    elif incremental is not None:
        streams = incremental.streams(day_ms - config.window_days * DAY_MS, day_ms)
    else:
        streams = window.fast_agent_streams(rules)
    rows, _ = evaluate_agents(
        list(config.agents), streams, window.signal_counts(), {}, config.periods_per_year, config.risk_free,
        min_returns=config.min_metric_returns, min_days=config.min_metric_days,
    )
    return DayInputs(day_ms, window, streams, rows)


# --------------------------------------------------------------------------- per-strategy book


@dataclass
class WeightChange:
    day_ms: int
    weights: dict[str, float]
    updated: bool
    reason: str


@dataclass
class BookState:
    """One strategy's book between cycles: what ``load_book_state`` reads back from SQL."""

    spec: StrategySpec
    portfolio: Portfolio
    weights: dict[str, float]
    pending: list[PendingOrder] = field(default_factory=list)
    day_start_equity: Decimal = Decimal(0)
    halted_day: int | None = None
    last_marks: dict[str, Decimal] = field(default_factory=dict)
    last_day: int | None = None
    last_equity: Decimal = Decimal(0)
    equity: list[float] = field(default_factory=list)
    fees: list[float] = field(default_factory=list)  # cumulative fees paid, per bar
    slippage: list[float] = field(default_factory=list)  # cumulative slippage cost, per bar
    traded: list[float] = field(default_factory=list)  # notional filled at the bar
    decisions: list[WeightChange] = field(default_factory=list)
    fills: int = 0
    # every fill in the order applied: (fill, P&L it realised, its order's reason, requested and sent quantity)
    fill_log: list[tuple[Fill, Decimal, str, Decimal, Decimal]] = field(default_factory=list)
    slippage_total: Decimal = Decimal(0)
    quiet_bars: int = 0  # bars recorded without a cycle: flat, nothing pending, nothing asked (_Loop._record_quiet)


def _new_book(spec: StrategySpec, config: EngineConfig) -> BookState:
    weights = {agent: float(spec.weights.get(agent, 0.0)) for agent in config.agents}
    return BookState(spec, Portfolio(cash=config.starting_cash), weights, day_start_equity=config.starting_cash, last_equity=config.starting_cash)


def cycle_inputs(
    config: EngineConfig,
    book: BookState,
    bar_open_ms: int,
    histories: Mapping[str, Any],
    unavailable: Mapping[str, str],
    agents: Sequence[Any],
    rules: Mapping[str, MarketRules],
    context: AgentContext | None = None,
    step_ms: int | None = None,
    guard: Mapping[str, str | None] | None = None,
    signals: Sequence[Any] | None = None,
) -> CycleInputs:
    """The unit of work's cycle inputs (``CycleUnitOfWork``), from the in-memory book; ``signals``: the
    votes another book's cycle cast on the same bars (``CycleInputs.signals``)."""
    step = step_ms or _step(config)
    day = bar_open_ms // DAY_MS
    if book.last_day is not None and day != book.last_day:
        book.day_start_equity = book.last_equity  # load_book_state: a new UTC day starts at the last snapshot's equity
    return CycleInputs(
        book=config.book,
        bar_open_ms=bar_open_ms,
        timeframe_ms=step,
        histories=histories,
        unavailable=unavailable,
        agents=agents,
        context=context or AgentContext(now_ms=bar_open_ms + step, headlines=None),
        weights=book.weights,
        portfolio=book.portfolio,
        pending=book.pending,
        rules=rules,
        limits=config.limits,
        fee_bps=config.fee_bps,
        slippage_bps=config.slippage_bps,
        day_start_equity=book.day_start_equity,
        halted=book.halted_day == day,
        last_marks=book.last_marks,
        rebalance_band=config.rebalance_band,
        entry_hysteresis=config.entry_hysteresis,
        min_hold_bars=config.min_hold_bars,
        guard_verdicts=guard,
        signals=signals,
    )


def _record(book: BookState, result: CycleResult, inputs: CycleInputs, opens: Mapping[str, float]) -> None:
    """What ``record_cycle`` writes and the next ``load_book_state`` reads, plus the run's figures."""
    day = inputs.bar_open_ms // DAY_MS
    if result.plan.halted and not inputs.halted:
        book.halted_day = day
    book.portfolio = result.portfolio
    book.pending = [PendingOrder(intent, inputs.bar_open_ms) for intent in result.plan.orders]
    book.last_marks = {s: result.marks[s] for s in result.portfolio.positions}
    book.last_day = day
    book.last_equity = result.valuation.equity
    traded = Decimal(0)
    for executed in result.fills:
        fill = executed.fill
        traded += fill.notional
        book.slippage_total += abs(fill.price - Decimal(repr(opens[fill.symbol]))) * fill.quantity
    if result.fills:  # for the results tables; only what they read, so a long run's log stays small
        orders = {pending.intent.client_order_id: pending.intent for pending in inputs.pending}
        for executed in result.fills:
            order = orders[executed.fill.client_order_id]
            realized = executed.realization.realized_pnl if executed.realization is not None else Decimal(0)
            book.fill_log.append((executed.fill, realized, order.reason, order.requested_quantity, order.quantity))
    book.fills += len(result.fills)
    book.equity.append(float(result.valuation.equity))
    book.fees.append(float(result.portfolio.fees_paid))
    book.slippage.append(float(book.slippage_total))
    book.traded.append(float(traded))


def _step(config: EngineConfig) -> int:
    from tradepipe.core.timeframes import timeframe_ms

    return timeframe_ms(config.timeframe)


# --------------------------------------------------------------------------- the run


@dataclass(frozen=True)
class Progress:
    bars_done: int
    bars_total: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.bars_done / self.seconds if self.seconds > 0 else 0.0

    @property
    def eta_seconds(self) -> float | None:
        return (self.bars_total - self.bars_done) / self.rate if self.rate > 0 else None

    def line(self) -> str:
        eta = self.eta_seconds
        return (
            f"walk-forward: {self.bars_done}/{self.bars_total} bars ({self.bars_done / max(self.bars_total, 1):.0%}), "
            f"{self.rate:,.0f} bars/s, ETA {'?' if eta is None else f'{eta:.0f}s'}"
        )


@dataclass
class EngineRun:
    """Everything a walk-forward produced; ``summary.build_summary`` turns it into summary.json."""

    config: EngineConfig
    bars: np.ndarray  # traded bar open times (ms)
    books: dict[str, BookState]
    closes: dict[str, np.ndarray]  # per symbol, the close at each traded bar (NaN where missing)
    skipped: dict[str, dict[str, Any]]  # per symbol: count of skipped bars and the first reasons
    notes: list[str]
    seconds: float = 0.0
    signal_seconds: float = 0.0
    resumed_from: int = 0  # bars already done by the checkpoint this run continued


def traded_bars(market: MarketFrame, config: EngineConfig, start_ms: int | None, end_ms: int | None) -> np.ndarray:
    """``tradepipe backtest``'s bars: the union timeline after the agents' warm-up, within [start, end]."""
    warmup = max_history_needed(get_agents(list(config.agents)))
    bars = market.timeline[warmup:]
    if start_ms is not None:
        bars = bars[bars >= start_ms]
    if end_ms is not None:
        bars = bars[bars <= end_ms]
    if bars.size == 0:
        first, last = _iso(int(market.timeline[0])), _iso(int(market.timeline[-1]))
        raise WalkForwardInputError(
            f"no bars to trade between {_iso(start_ms) if start_ms else 'the start'} and {_iso(end_ms) if end_ms else 'the end'} "
            f"after the agents' {warmup}-bar warm-up (the data cover {first} .. {last})"
        )
    return bars


def default_strategies(config: EngineConfig, methods: Sequence[str]) -> list[StrategySpec]:
    """``adaptive:<method>`` for each method (starting from the default weights), ``equal_weight`` and
    ``agent:<name>`` for each agent (fixed weights). Buy-and-hold is computed from prices, not cycled."""
    equal = {agent: 1.0 / len(config.agents) for agent in config.agents}
    specs = [StrategySpec(f"adaptive:{method}", dict(config.default_weights), method) for method in methods]
    specs.append(StrategySpec("equal_weight", equal))
    specs += [StrategySpec(f"agent:{agent}", {a: 1.0 if a == agent else 0.0 for a in config.agents}) for agent in config.agents]
    return specs


def run_walk_forward(
    market: MarketFrame,
    config: EngineConfig,
    strategies: Sequence[StrategySpec],
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
    weight_policy: WeightPolicy | None = None,
    streams_function: StreamsFunction = agent_streams,
    signal_mode: SignalMode = "fast",
    progress: Callable[[Progress], None] | None = None,
    progress_every_s: float = 2.0,
    checkpoint: Path | None = None,
    checkpoint_every_s: float = 30.0,
    resume: bool = False,
    on_cycle: Callable[[str, CycleInputs, CycleResult], None] | None = None,
    workers: int = 1,
    agents: Sequence[Agent] | None = None,
    bars: np.ndarray | None = None,
) -> EngineRun:
    """Run every strategy through the live loop over ``market`` (see the module docstring).

    ``checkpoint``: a file the engine state is saved to every ``checkpoint_every_s`` seconds; with
    ``resume`` a saved state of the same inputs is continued (signals are recomputed: deterministic).
    ``on_cycle(strategy_key, inputs, result)`` sees every cycle (audits, tests).
    ``workers`` > 1 splits the strategies among forked processes (each strategy's book is independent,
    so the results are identical); such a run is not checkpointed: interrupted, it starts over.
    ``agents``: the agent objects named ``config.agents`` (default: the registered ones, ``get_agents``),
    e.g. strategy variants; ``bars``: the bar open times to trade (default: :func:`traded_bars`).
    """
    started = time.perf_counter()
    if not strategies:
        raise WalkForwardInputError("no strategies to compare")
    bars = traded_bars(market, config, start_ms, end_ms) if bars is None else np.asarray(bars, dtype=np.int64)
    agents = get_agents(list(config.agents)) if agents is None else list(agents)
    if tuple(agent.name for agent in agents) != tuple(config.agents):
        raise WalkForwardInputError(f"the agents given ({', '.join(a.name for a in agents)}) are not config.agents ({', '.join(config.agents)})")
    policy = weight_policy or live_weight_policy(config)
    caches = build_signal_caches(market, agents, config.history_bars, signal_mode, int(bars[0]), int(bars[-1]))
    signal_seconds = time.perf_counter() - started
    votes = SignalHistory(caches, market, bars)
    cached_agents = [CachedAgent(agent.name, caches) for agent in agents]
    rules = {symbol: MarketRules(symbol=symbol, **PAPER_RULES) for symbol in config.symbols}
    fingerprint = _fingerprint(market, config, strategies, bars, signal_mode)

    state = _load_checkpoint(checkpoint, fingerprint) if (resume and checkpoint) else None
    if state is not None:
        books, done, skipped = state["books"], state["done"], state["skipped"]
    else:
        books = {spec.key: _new_book(spec, config) for spec in strategies}
        done, skipped = 0, {symbol: {"bars": 0, "reasons": []} for symbol in config.symbols}
    # A fixed-weight book whose weighted agents never vote never trades (no voter: score 0, target 0):
    # it holds its cash throughout, so it is not cycled (unless ``on_cycle`` is to see every cycle).
    idle = set() if on_cycle is not None else {
        key for key, book in books.items() if book.spec.method is None and not _ever_votes(book.spec, caches, config)
    }
    cycled = [book for key, book in books.items() if key not in idle]
    loop = _Loop(config, market, bars, cached_agents, rules, votes, streams_function, policy, on_cycle, caches)
    done_at_start = done
    groups = _groups(cycled, workers) if workers > 1 and state is None and on_cycle is None else [cycled]
    if len(groups) > 1:
        finished, skipped = _run_forked(loop, groups, progress, progress_every_s)
        books.update(finished)
        done = bars.size
    else:
        last_report = last_save = loop_started = time.perf_counter()
        try:
            for index in range(done, bars.size):
                loop.step(index, cycled, skipped)
                done = index + 1
                now = time.perf_counter()
                if progress and (now - last_report >= progress_every_s or done == bars.size):
                    progress(Progress(done - done_at_start, bars.size - done_at_start, now - loop_started))
                    last_report = now
                if checkpoint is not None and now - last_save >= checkpoint_every_s and done < bars.size:
                    _save_checkpoint(checkpoint, fingerprint, {"books": books, "done": done, "skipped": skipped})
                    last_save = now
        except KeyboardInterrupt:  # keep what is done: the next run with resume continues from here
            if checkpoint is not None:
                _save_checkpoint(checkpoint, fingerprint, {"books": books, "done": done, "skipped": skipped})
            raise
    symbol_rows = loop.symbol_rows
    for key in idle:
        book = books[key]
        book.equity = [float(config.starting_cash)] * bars.size
        book.fees = book.slippage = book.traded = [0.0] * bars.size
    closes = {}
    for symbol in config.symbols:
        rows = symbol_rows[symbol]
        b = market.bars[symbol]
        present = (rows >= 0) & (b.timestamps[np.maximum(rows, 0)] == bars)
        closes[symbol] = np.where(present, b.close[np.maximum(rows, 0)], np.nan)
    return EngineRun(config, bars, books, closes, skipped, list(market.notes), time.perf_counter() - started, signal_seconds, done_at_start)


class _Loop:
    """One bar for a set of books: the day's decisions, the histories, every book's cycle."""

    def __init__(
        self,
        config: EngineConfig,
        market: MarketFrame,
        bars: np.ndarray,
        agents: Sequence[Any],
        rules: Mapping[str, MarketRules],
        votes: SignalHistory,
        streams_function: StreamsFunction,
        policy: WeightPolicy,
        on_cycle: Callable[[str, CycleInputs, CycleResult], None] | None,
        caches: Mapping[str, SignalCache] | None = None,
    ) -> None:
        self.config, self.market, self.bars, self.agents, self.rules = config, market, bars, agents, rules
        self.votes, self.streams_function, self.policy, self.on_cycle = votes, streams_function, policy, on_cycle
        self.step_ms = _step(config)
        self.incremental: IncrementalStreams | None = None  # built at the first decision (a run without adaptive books needs none)
        self.symbol_rows = {s: np.searchsorted(market.bars[s].timestamps, bars, side="right") - 1 for s in config.symbols}
        # The guard's verdict on each traded row's window, judged once per symbol (equal to guard_verdicts
        # on it) and only for the rows this run trades: ``row_verdicts[s][row - verdict_offset[s]]``.
        self.verdict_offset: dict[str, int] = {}
        self.row_verdicts: dict[str, list[str | None]] = {}
        # Quiet bars are recorded without a cycle (from the vote tables of ``caches``); every cycle runs when
        # on_cycle is to see them all.
        self.tables = {s: cache.table for s, cache in caches.items()} if on_cycle is None and caches is not None else None
        self.quiet: dict[str, tuple[int, np.ndarray]] = {}  # book key -> (first bar index, quiet flag per bar from there), on demand
        for s in config.symbols:
            traded = self.symbol_rows[s][self.symbol_rows[s] >= 0]
            first, last = (int(traded.min()), int(traded.max())) if traded.size else (0, -1)
            self.verdict_offset[s] = first
            self.row_verdicts[s] = window_verdicts(market.bars[s], config.history_bars, self.step_ms, (first, last)) if traded.size else []

    def step(self, index: int, books: Sequence[BookState], skipped: dict[str, dict[str, Any]] | None) -> None:
        config, bar = self.config, int(self.bars[index])
        if index == 0 or int(self.bars[index - 1]) // DAY_MS != bar // DAY_MS:
            adaptive = [book for book in books if book.spec.method is not None]
            if adaptive and self.incremental is None and self.streams_function is agent_streams:
                self.incremental = self.votes.incremental_streams(config.book_rules)
            _decide_day(config, adaptive, (bar // DAY_MS) * DAY_MS, self.votes, self.streams_function, self.policy, index == 0, self.incremental)
            for book in adaptive:  # the day's weights may differ: its quiet bars are judged afresh
                self.quiet.pop(book.spec.key, None)
        histories, unavailable, opens, guard = {}, {}, {}, {}
        for symbol in config.symbols:
            row = int(self.symbol_rows[symbol][index])
            if row < 0:
                unavailable[symbol] = f"market data: no {config.timeframe} bars closed by {_iso(bar + self.step_ms)}"
                continue
            history = self.market.bars[symbol].window(row, config.history_bars)
            histories[symbol] = history
            opens[symbol] = float(history.open[-1])
            # The same bars for every book: judged once. The precomputed verdict is guard_verdicts' own
            # when the window ends at this bar (decision time: its close); otherwise guard_verdicts says why not.
            if history.last_timestamp == bar:
                guard[symbol] = self.row_verdicts[symbol][row - self.verdict_offset[symbol]]
            else:
                guard.update(guard_verdicts({symbol: history}, bar, self.step_ms))
        context = AgentContext(now_ms=bar + self.step_ms, headlines=None)
        result = None
        for book in books:
            if self._record_quiet(book, index, bar):
                continue
            # Every book sees the same bars, guard and agents: the first cycle casts the votes, the others reuse them.
            votes = None if result is None else result.signals
            inputs = cycle_inputs(config, book, bar, histories, unavailable, self.agents, self.rules, context, self.step_ms, guard, votes)
            result = run_cycle(inputs)
            _record(book, result, inputs, opens)
            if self.on_cycle is not None:
                self.on_cycle(book.spec.key, inputs, result)
        if skipped is not None and books:
            # the same for every strategy, recorded once: what the cycle's guard skips (core.cycle._usable_histories)
            reasons = result.skipped if result is not None else {**unavailable, **{s: r for s, r in guard.items() if r is not None}}
            for symbol, reason in reasons.items():
                entry = skipped[symbol]
                entry["bars"] += 1
                if len(entry["reasons"]) < 5:
                    entry["reasons"].append(f"{_iso(bar)}: {reason}")

    def _quiet_bars(self, weights: Mapping[str, float], start: int, stop: int) -> np.ndarray:
        """Per bar of [start, stop): True where a flat book with ``weights`` certainly asks for no order.

        For every symbol the ensemble's score (``core.ensemble.combine``: the voters' weighted mean of
        value x confidence), computed here in one pass over the vote tables, gives an opening target
        (``book_target`` from flat) of 0 or one inside the rebalance band (``_within_band``), with a
        margin far above the difference between this sum and ``combine``'s (a few 1e-16). A bar with a
        vote that is not finite (of any agent, weighted or not) is never quiet: its cycle runs and
        ``combine`` refuses the vote as ever."""
        assert self.tables is not None
        config, limits = self.config, self.config.limits
        if not all(math.isfinite(w) and w >= 0 for w in map(float, weights.values())):
            return np.zeros(stop - start, dtype=bool)  # combine refuses such weights: the cycles run and say so
        quiet = np.ones(stop - start, dtype=bool)
        for symbol in config.symbols:
            table = self.tables[symbol]
            rows = self.symbol_rows[symbol][start:stop]
            at = np.maximum(rows, 0)
            w = np.array([float(weights.get(agent, 0.0)) for agent in table.agents])
            voting = ~table.abstained[at] & (w > 0)
            total = np.where(voting, w, 0.0).sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                score = np.where(voting, w * table.value[at] * table.confidence[at], 0.0).sum(axis=1) / np.where(total > 0, total, 1.0)
                strength = np.minimum(1.0, np.abs(score))
                fraction = (strength - DEFAULT_DEADBAND) / (1.0 - DEFAULT_DEADBAND) * float(limits.max_position_fraction)
                calm = (strength < DEFAULT_DEADBAND + config.entry_hysteresis - _QUIET_MARGIN) | (fraction < config.rebalance_band - _QUIET_MARGIN)
                if not limits.allow_short:
                    calm |= score < -_QUIET_MARGIN
            sound = (table.abstained[at] | (np.isfinite(table.value[at]) & np.isfinite(table.confidence[at]))).all(axis=1)
            quiet &= (rows < 0) | (calm & sound)
        return quiet

    def _no_new_halt(self, book: BookState, day: int) -> bool:
        """True when the risk manager's daily-loss check cannot start a halt at equity = cash
        (``risk._daily_loss_halt``): the book is halted already today, or cash is positive and above the
        loss floor by a margin no rounding reaches."""
        if book.halted_day == day:
            return True
        cash, start, limit = book.portfolio.cash, book.day_start_equity, self.config.limits.daily_loss_limit_fraction
        if cash <= 0:
            return False
        if limit <= 0 or start <= 0 or cash >= start:
            return True
        return float(cash) > float(start) * (1.0 - float(limit)) * (1.0 + _QUIET_MARGIN)

    def _record_quiet(self, book: BookState, index: int, bar: int) -> bool:
        """Record the bar for ``book`` without a cycle when the cycle could change nothing but the clock:
        the book holds no position and has no order pending (no fill, no stop-loss, equity = cash), no
        symbol gets a target (``_quiet_bars``), and no daily-loss halt can start (``_no_new_halt``).
        What the cycle would record is then known: the same portfolio, nothing pending, equity = cash. ``tests/walkforward/test_quiet_bars.py`` proves the
        books equal to those of a run that cycles every bar."""
        if self.tables is None or book.pending or book.portfolio.positions:
            return False
        day = bar // DAY_MS
        first, flags = self.quiet.get(book.spec.key) or (index, np.zeros(0, dtype=bool))
        if not first <= index < first + flags.size:
            # fixed weights: judged once for the rest of the run; adaptive ones: for the rest of the day
            stop = int(np.searchsorted(self.bars, (day + 1) * DAY_MS, side="left")) if book.spec.method is not None else int(self.bars.size)
            first, flags = self.quiet[book.spec.key] = (index, self._quiet_bars(book.weights, index, stop))
        if not flags[index - first]:
            return False
        if book.last_day is not None and day != book.last_day:
            book.day_start_equity = book.last_equity  # cycle_inputs' rule for a new UTC day
        if not self._no_new_halt(book, day):
            return False
        valuation = mark_to_market(book.portfolio, {})
        book.last_marks = {}
        book.last_day = day
        book.last_equity = valuation.equity
        book.equity.append(float(valuation.equity))
        book.fees.append(float(book.portfolio.fees_paid))
        book.slippage.append(float(book.slippage_total))
        book.traded.append(0.0)
        book.quiet_bars += 1
        return True


# A margin on the quiet test's thresholds, far above the rounding of a weighted mean of a few votes.
_QUIET_MARGIN = 1e-9

# An adaptive book's daily decision (streams, performance rows, optimiser) costs about two cycles per bar.
_ADAPTIVE_COST = 3.0


def _groups(books: Sequence[BookState], workers: int) -> list[list[BookState]]:
    """Books dealt to ``workers`` groups of about equal work (largest first, each to the lightest group)."""
    ordered = sorted(books, key=lambda b: b.spec.method is None)  # adaptive first; stable otherwise
    count = min(workers, len(ordered))
    groups: list[list[BookState]] = [[] for _ in range(count)]
    load = [0.0] * count
    for book in ordered:
        lightest = load.index(min(load))
        groups[lightest].append(book)
        load[lightest] += _ADAPTIVE_COST if book.spec.method is not None else 1.0
    return [g for g in groups if g]


_FORKED: dict[str, Any] = {}  # what forked workers inherit (set just before the fork)


def _forked_worker(group_index: int) -> tuple[dict[str, BookState], dict[str, dict[str, Any]] | None]:
    loop, groups, counters = _FORKED["loop"], _FORKED["groups"], _FORKED["counters"]
    books = groups[group_index]
    skipped = {symbol: {"bars": 0, "reasons": []} for symbol in loop.config.symbols} if group_index == 0 else None
    for index in range(loop.bars.size):
        loop.step(index, books, skipped)
        counters[group_index].value = index + 1
    return {book.spec.key: book for book in books}, skipped


def _run_forked(
    loop: _Loop, groups: list[list[BookState]], progress: Callable[[Progress], None] | None, progress_every_s: float
) -> tuple[dict[str, BookState], dict[str, dict[str, Any]]]:
    import multiprocessing

    context = multiprocessing.get_context("fork")
    counters = [context.Value("q", 0, lock=False) for _ in groups]
    _FORKED.update(loop=loop, groups=groups, counters=counters)
    started = time.perf_counter()
    try:
        with context.Pool(len(groups)) as pool:
            pending = pool.map_async(_forked_worker, range(len(groups)))
            while not pending.ready():
                pending.wait(progress_every_s)
                if progress:
                    progress(Progress(min(c.value for c in counters), int(loop.bars.size), time.perf_counter() - started))
            results = pending.get()
    finally:
        _FORKED.clear()
    books: dict[str, BookState] = {}
    for finished, _ in results:
        books.update(finished)
    skipped = results[0][1]
    assert skipped is not None
    return books, skipped


def _ever_votes(spec: StrategySpec, caches: Mapping[str, Any], config: EngineConfig) -> bool:
    weighted = [k for k, agent in enumerate(config.agents) if spec.weights.get(agent, 0.0) > 0]
    for cache in caches.values():
        table = cache.table
        if (~table.abstained[table.valid][:, weighted]).any():
            return True
    return False


def _decide_day(
    config: EngineConfig,
    adaptive: Sequence[BookState],
    day_ms: int,
    history: SignalHistory,
    streams_function: StreamsFunction,
    policy: WeightPolicy,
    first: bool,
    incremental: IncrementalStreams | None = None,
) -> None:
    """Every adaptive strategy's decision for ``day_ms`` from the window before it."""
    if not adaptive:
        return
    signals = history.window(day_ms - config.window_days * DAY_MS, day_ms)
    if signals.empty:
        for book in adaptive:
            if not first and (not book.decisions or book.decisions[-1].day_ms != day_ms):
                book.decisions.append(WeightChange(day_ms, dict(book.weights), False, "kept previous weights: no signals in the window"))
        return
    try:
        inputs = day_inputs(config, day_ms, signals, streams_function, incremental)
    except Exception as exc:  # the streams or the performance rows failed: nobody decides today
        for book in adaptive:
            book.decisions.append(WeightChange(day_ms, dict(book.weights), False, f"kept previous weights: performance failed: {type(exc).__name__}: {exc}"))
        return
    for book in adaptive:
        assert book.spec.method is not None
        try:
            decision = policy(inputs, book.weights, book.spec.method)
        except Exception as exc:  # one method failing on one day keeps that strategy's weights
            decision = PolicyDecision(dict(book.weights), False, f"kept previous weights: {book.spec.method} failed: {type(exc).__name__}: {exc}")
        changed = decision.updated and any(abs(decision.weights.get(a, 0.0) - book.weights.get(a, 0.0)) > 1e-12 for a in config.agents)
        if decision.updated:
            book.weights = {agent: float(decision.weights.get(agent, 0.0)) for agent in config.agents}
        book.decisions.append(WeightChange(day_ms, dict(book.weights), changed, decision.reason))


# --------------------------------------------------------------------------- checkpoints


def _fingerprint(market: MarketFrame, config: EngineConfig, strategies: Sequence[StrategySpec], bars: np.ndarray, mode: str) -> str:
    digest = hashlib.sha256()
    digest.update(repr((config, [(s.key, sorted(s.weights.items()), s.method) for s in strategies], mode)).encode())
    digest.update(bars.tobytes())
    for symbol in market.symbols:
        b = market.bars[symbol]
        for column in (b.timestamps, b.open, b.high, b.low, b.close, b.volume):
            digest.update(np.ascontiguousarray(column).tobytes())
    return digest.hexdigest()


def _save_checkpoint(path: Path, fingerprint: str, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    with temporary.open("wb") as handle:
        pickle.dump({"fingerprint": fingerprint, "state": state}, handle, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(temporary, path)


def _load_checkpoint(path: Path, fingerprint: str) -> dict[str, Any] | None:
    """The saved state if it belongs to exactly these inputs; a stale or unreadable one is ignored."""
    if not path.exists():
        return None
    try:
        with path.open("rb") as handle:
            saved = pickle.load(handle)  # our own file under TRADEPIPE_HOME, written by _save_checkpoint
    except Exception:
        return None
    if not isinstance(saved, dict) or saved.get("fingerprint") != fingerprint:
        return None
    if not all(hasattr(book, "fill_log") for book in saved["state"]["books"].values()):
        return None  # saved by a version whose books kept no fills: their results tables would miss trades
    return saved["state"]


def _iso(ms: int | None) -> str:
    return "" if ms is None else iso_utc(ms, timespec="minutes")


__all__ = [
    "DayInputs",
    "EngineConfig",
    "EngineRun",
    "PolicyDecision",
    "Progress",
    "StrategySpec",
    "StreamsFunction",
    "WeightPolicy",
    "config_from_settings",
    "cycle_inputs",
    "day_inputs",
    "default_strategies",
    "live_weight_policy",
    "run_walk_forward",
    "traded_bars",
]
