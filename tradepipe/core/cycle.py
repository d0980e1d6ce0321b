"""One trading cycle as a pure function: bars, ledger state and weights in; signals, fills, orders out.

The live loop (Dagster sensor -> ``trading_cycle`` job) and ``tradepipe backtest`` both call
``run_cycle``; only where the inputs come from and where the outputs go differ.

Order of work in a cycle at closed bar t (its open time is ``bar_open_ms``):
1. validate each symbol's bars (every blocking rule of ``core.bar_quality`` over all the bars the
   agents read, and the newest must be bar t); a bad bar skips the symbol for this cycle with the
   reason recorded, other symbols go on;
2. fill the orders decided last cycle at the open of the bar right after their decision bar
   (the paper fill rule: no look-ahead, the decision never sees the price it trades at); an order
   whose next bar is not this cycle's bar (downtime missed it) expires unfilled, with the reason, and
   this cycle decides afresh (a live book never trades at a price that is gone), or, with
   the ccxt broker, book what the exchange reported for the orders sent after the last cycle;
3. mark positions at bar t's close (the last good mark for a skipped symbol);
4. every agent votes on every tradable symbol; the weighted ensemble gives a target per symbol;
5. the risk manager turns targets into orders (or rejections) against the marked portfolio.

Dust (a remainder the exchange would refuse to sell, ``risk.is_dust``) counts as flat when the
cycle picks targets: it does not hold a symbol's rebalance band, hysteresis or minimum hold, it is
not stop-lossed (``risk`` step 2), and no order is asked to close it (the exchange would refuse it
every cycle). The next buy of the symbol sweeps it into the new position (see ``core.ledger``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Mapping, Sequence

import numpy as np

from tradepipe.core.agents import Agent, validate_history
from tradepipe.core.ensemble import book_target, combine
from tradepipe.core.ledger import Portfolio, Realization, Valuation, apply_fill, check_equity_invariant, mark_to_market
from tradepipe.core.paper import fill_order
from tradepipe.core.types import AgentContext, BarHistory, EnsembleDecision, Fill, MarketRules, OrderIntent, Position, Rejection, Signal
from tradepipe.core.risk import RiskLimits, RiskPlan, is_dust, plan_orders


@dataclass(frozen=True)
class PendingOrder:
    """An order decided at the close of ``decided_bar_ms``, waiting for the next bar's open."""

    intent: OrderIntent
    decided_bar_ms: int


@dataclass(frozen=True)
class BrokerOutcome:
    """What an exchange reported for an order sent after an earlier cycle (ccxt broker only).

    ``fill`` is None when the order ended without filling; ``note`` says why.
    """

    intent: OrderIntent
    fill: Fill | None
    note: str = ""


@dataclass(frozen=True)
class CycleInputs:
    book: str
    bar_open_ms: int
    timeframe_ms: int
    histories: Mapping[str, BarHistory]
    unavailable: Mapping[str, str]
    agents: Sequence[Agent]
    context: AgentContext
    weights: Mapping[str, float]
    portfolio: Portfolio
    pending: Sequence[PendingOrder]
    rules: Mapping[str, MarketRules]
    limits: RiskLimits
    fee_bps: Decimal
    slippage_bps: Decimal
    day_start_equity: Decimal
    halted: bool
    last_marks: Mapping[str, Decimal]
    agent_notes: Mapping[str, str] = field(default_factory=dict)
    rebalance_band: float = 0.02
    broker_outcomes: Sequence[BrokerOutcome] = ()
    # Wall-clock time of the cycle (ms); a bar opening after it is from the future.
    wall_clock_ms: int | None = None
    # Turnover controls: see ensemble.book_target and _held_too_briefly.
    entry_hysteresis: float = 0.0
    min_hold_bars: int = 0
    # The guard's verdicts (``guard_verdicts``) when the caller already has them: the walk-forward
    # engine trades several books on the same bars and judges each bar once, not once per book.
    guard_verdicts: Mapping[str, str | None] | None = None
    # A trader's controls, applied by this cycle (core/controls): no new risk while paused (who and
    # why), and a target of zero for every symbol to force out, whatever the vote, band or holding time.
    entries_paused: str | None = None
    force_exit: frozenset[str] = frozenset()
    # The agents' votes on the usable symbols when the caller already has them (what ``_vote`` gives,
    # symbols sorted, agents in order): the walk-forward engine's books see the same bars, agents and
    # context, so one cycle per bar casts the votes and the others reuse them (no time spent: 0 seconds).
    signals: Sequence[Signal] | None = None


@dataclass(frozen=True)
class ExecutedFill:
    fill: Fill
    realization: Realization | None
    contributions: Mapping[str, float]


@dataclass(frozen=True)
class CycleResult:
    bar_open_ms: int
    fills: list[ExecutedFill]
    cancelled: list[tuple[OrderIntent, str]]
    signals: list[Signal]
    decisions: dict[str, EnsembleDecision]
    targets: dict[str, float]
    plan: RiskPlan
    portfolio: Portfolio
    valuation: Valuation
    marks: dict[str, Decimal]
    skipped: dict[str, str]
    agent_seconds: dict[str, float]


def guard_verdicts(
    histories: Mapping[str, BarHistory], bar_open_ms: int, timeframe_ms: int, wall_clock_ms: int | None = None
) -> dict[str, str | None]:
    """The cycle guard's verdict per symbol: None when its bars are fit to trade bar ``bar_open_ms``,
    else the reason. Bars must have closed by the decision (the close of bar t), and not be later
    than the clock."""
    as_of = bar_open_ms + timeframe_ms
    if wall_clock_ms is not None:
        as_of = min(as_of, wall_clock_ms)
    verdicts: dict[str, str | None] = {}
    for symbol, history in histories.items():
        if not len(history):
            verdicts[symbol] = "no closed bars"
        elif history.last_timestamp != bar_open_ms:
            verdicts[symbol] = f"newest closed bar is {history.last_timestamp}, expected {bar_open_ms}"
        else:
            verdicts[symbol] = validate_history(history, as_of)
    return verdicts


def _usable_histories(inputs: CycleInputs) -> tuple[dict[str, BarHistory], dict[str, str]]:
    verdicts = inputs.guard_verdicts
    if verdicts is None:
        verdicts = guard_verdicts(inputs.histories, inputs.bar_open_ms, inputs.timeframe_ms, inputs.wall_clock_ms)
    usable: dict[str, BarHistory] = {}
    skipped = dict(inputs.unavailable)
    for symbol, history in inputs.histories.items():
        reason = verdicts[symbol]
        if reason is None:
            usable[symbol] = history
        else:
            skipped[symbol] = reason
    return usable, skipped


def _next_open(history: BarHistory | None, after_ms: int) -> tuple[Decimal, int] | None:
    """Open price and time of the first bar that opened after ``after_ms``."""
    if history is None:
        return None
    timestamps = history.timestamps
    size = len(timestamps)
    if size and timestamps[-1] > after_ms and (size == 1 or timestamps[-2] <= after_ms):
        index = size - 1  # usually the newest bar (usable bars are in time order: the guard refuses any other)
    else:
        later = np.nonzero(timestamps > after_ms)[0]
        if later.size == 0:
            return None
        index = int(later[0])
    return Decimal(repr(float(history.open[index]))), int(history.timestamps[index])


def _fill_pending(
    inputs: CycleInputs, usable: Mapping[str, BarHistory]
) -> tuple[Portfolio, list[ExecutedFill], list[tuple[OrderIntent, str]]]:
    portfolio = inputs.portfolio
    fills: list[ExecutedFill] = []
    cancelled: list[tuple[OrderIntent, str]] = []
    for pending in inputs.pending:
        intent = pending.intent
        fill_bar_ms = pending.decided_bar_ms + inputs.timeframe_ms
        if inputs.bar_open_ms != fill_bar_ms:
            cancelled.append((intent, f"expired: the bar it was to fill at ({fill_bar_ms}) was missed; "
                                      f"this cycle trades bar {inputs.bar_open_ms} and decides afresh"))
            continue
        next_open = _next_open(usable.get(intent.symbol), pending.decided_bar_ms)
        if next_open is None:
            cancelled.append((intent, f"no valid bar after the decision bar to fill at ({intent.symbol} skipped)"))
            continue
        price, fill_ms = next_open
        fill = fill_order(
            intent, price, inputs.fee_bps, inputs.slippage_bps, inputs.rules[intent.symbol], fill_ms,
            available_cash=portfolio.cash,
        )
        if isinstance(fill, Rejection):
            cancelled.append((intent, fill.reason))
            continue
        portfolio, realization = apply_fill(portfolio, fill, intent.contributions)
        fills.append(ExecutedFill(fill, realization, dict(intent.contributions)))
    for outcome in inputs.broker_outcomes:
        if outcome.fill is None:
            cancelled.append((outcome.intent, outcome.note or "ended on the exchange without a fill"))
            continue
        portfolio, realization = apply_fill(portfolio, outcome.fill, outcome.intent.contributions)
        fills.append(ExecutedFill(outcome.fill, realization, dict(outcome.intent.contributions)))
    return portfolio, fills, cancelled


def _marks(inputs: CycleInputs, usable: Mapping[str, BarHistory], portfolio: Portfolio) -> dict[str, Decimal]:
    marks = {symbol: Decimal(repr(history.last_close)) for symbol, history in usable.items()}
    for symbol, position in portfolio.positions.items():
        if symbol not in marks:
            marks[symbol] = inputs.last_marks.get(symbol, position.average_price)
    return marks


def _vote(inputs: CycleInputs, usable: Mapping[str, BarHistory]) -> tuple[list[Signal], dict[str, float]]:
    signals: list[Signal] = []
    seconds = {agent.name: 0.0 for agent in inputs.agents}
    for symbol in sorted(usable):
        for agent in inputs.agents:
            started = time.perf_counter()
            note = inputs.agent_notes.get(agent.name)
            try:
                signal = agent(usable[symbol], inputs.context)
            except Exception as exc:  # an agent bug must not stop the other agents or symbols
                signal = Signal(agent.name, symbol, 0.0, 0.0, f"agent error: {type(exc).__name__}: {exc}", True)
            if note and signal.abstained:  # the input's own failure explains the abstention better
                signal = Signal(signal.agent, signal.symbol, 0.0, 0.0, note, True)
            seconds[agent.name] += time.perf_counter() - started
            signals.append(signal)
    return signals, seconds


def _held(portfolio: Portfolio, symbol: str, inputs: CycleInputs, marks: Mapping[str, Decimal]) -> Position | None:
    """The open position of ``symbol``, or None when it is flat or only dust."""
    position = portfolio.positions.get(symbol)
    if position is None or position.quantity == 0:
        return None
    if is_dust(position.quantity, marks.get(symbol), inputs.rules.get(symbol)):
        return None
    return position


def _within_band(target: float, position: Position | None, symbol: str, marks: Mapping[str, Decimal], book_equity: Decimal, band: float) -> bool:
    """True when the position is already within ``band`` (fraction of equity) of its target: such
    small rebalances only pay fees. Closing a position to flat is never suppressed."""
    held = position is not None
    if target == 0 and held:
        return False
    if not held or book_equity <= 0:
        return abs(target) < band
    current = float(position.quantity * marks[symbol] / book_equity)  # type: ignore[union-attr]
    return abs(target - current) < band


def _held_too_briefly(position: Position | None, inputs: CycleInputs) -> bool:
    """True for a position opened fewer than ``min_hold_bars`` bars ago (the bar it filled in counts
    as one): it is not rebalanced yet, so one noisy vote cannot close what the last one opened.
    Stop-losses still apply (the risk manager's own step)."""
    if inputs.min_hold_bars <= 0 or position is None:
        return False
    return (inputs.bar_open_ms - position.opened_ms) // inputs.timeframe_ms + 1 < inputs.min_hold_bars


def run_cycle(inputs: CycleInputs) -> CycleResult:
    usable, skipped = _usable_histories(inputs)
    portfolio, fills, cancelled = _fill_pending(inputs, usable)
    marks = _marks(inputs, usable, portfolio)
    if inputs.signals is None:
        signals, agent_seconds = _vote(inputs, usable)
    else:
        signals, agent_seconds = list(inputs.signals), {agent.name: 0.0 for agent in inputs.agents}

    decisions: dict[str, EnsembleDecision] = {}
    targets: dict[str, float] = {}
    valuation = mark_to_market(portfolio, marks)  # the cycle's fills are done: the same book at the same marks all along
    book_equity = valuation.equity
    by_symbol: dict[str, list[Signal]] = {symbol: [] for symbol in usable}
    for signal in signals:
        by_symbol[signal.symbol].append(signal)
    for symbol in sorted(usable):
        decision = combine(by_symbol[symbol], inputs.weights)
        decisions[symbol] = decision
        position = _held(portfolio, symbol, inputs, marks)
        held_sign = 0 if position is None else (1 if position.quantity > 0 else -1)
        target = book_target(
            decision.score, float(inputs.limits.max_position_fraction), inputs.limits.allow_short, held_sign, inputs.entry_hysteresis
        )
        if _held_too_briefly(position, inputs):
            continue
        if not _within_band(target, position, symbol, marks, book_equity, inputs.rebalance_band):
            targets[symbol] = target
    for symbol in inputs.force_exit:
        if symbol in usable:
            targets[symbol] = 0.0

    # A skipped symbol stays out of the risk manager's marks, so it is not traded (stop-losses included)
    # on a stale price; but the risk manager values an unmarked position at its cost, which would fake a
    # loss (or hide one) in the daily-loss check. So it sees that position at its last good mark instead.
    plan_positions = {
        symbol: position if symbol in usable else replace(position, average_price=marks[symbol])
        for symbol, position in portfolio.positions.items()
    }
    plan = plan_orders(
        book=inputs.book,
        bar_open_ms=inputs.bar_open_ms,
        targets=targets,
        decisions=decisions,
        positions=plan_positions,
        cash=portfolio.cash,
        marks={s: m for s, m in marks.items() if s in usable},
        rules=inputs.rules,
        limits=inputs.limits,
        day_start_equity=inputs.day_start_equity,
        halted=inputs.halted,
        entries_paused=inputs.entries_paused,
    )
    check_equity_invariant(valuation, portfolio, marks)
    return CycleResult(
        bar_open_ms=inputs.bar_open_ms,
        fills=fills,
        cancelled=cancelled,
        signals=signals,
        decisions=decisions,
        targets=targets,
        plan=plan,
        portfolio=portfolio,
        valuation=valuation,
        marks=marks,
        skipped=skipped,
        agent_seconds=agent_seconds,
    )
