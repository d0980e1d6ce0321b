"""The risk manager: turns target weights into orders an exchange will accept, or says why not.

Pure: plain data in, plain data out; no Dagster, no I/O. Money, quantities and prices are
``Decimal``; target fractions may arrive as floats and are converted through ``repr`` (so 0.1
becomes ``Decimal("0.1")``, not its binary expansion).

Order of operations in :func:`plan_orders`. Each step can only shrink (or reject) what the
previous step allowed, and every shrink is recorded: as an :class:`Adjustment` when something is
left, as a :class:`Rejection` when nothing is.

0. **Value the book.** ``equity = cash + sum(quantity x mark)``. A held position without a usable
   mark is valued at its average price, so one missing quote does not freeze the whole book; that
   symbol cannot be traded this cycle (``no_price``).
1. **Daily-loss halt.** Halted if the caller says the book is already halted today, or if
   ``equity <= day_start_equity x (1 - daily_loss_limit_fraction)``, or if equity <= 0. A halted
   book takes no new risk: only orders that shrink exposure pass (step 4).
2. **Stop-losses** (always allowed, even when halted): a long whose mark is at or below
   ``average_price x (1 - stop_loss_fraction)`` (a short: at or above ``x (1 + ...)``) is closed
   in full. Its target is ignored this cycle; a target that would re-open it is rejected as
   ``stop_loss_cooldown``. Symbols the caller lists in ``cooldown`` may shrink but not grow.
   **Dust is never stopped** (see :func:`is_dust`): a remainder the exchange would refuse to sell
   (under ``min_amount`` or ``min_cost`` at the mark, or under one amount step) cannot be closed,
   so a stop on it would be refused every cycle and, as a "stopped" symbol, would refuse every new
   target of that symbol for as long as the price stays down. The dust stays on the books at its
   cost (it is real coin on the exchange account) and the next buy of the symbol sweeps it in:
   the position grows from the dust and its average price becomes the quantity-weighted average.
3. **Targets, per symbol.** A short target without ``allow_short`` becomes 0 (``long_only``: sell
   at most what is held, never go short); ``|target|`` is clipped to ``max_position_fraction``
   (``max_position``; this also trims a position that has outgrown the limit). The order is split
   into a *reducing* part (towards 0) and an *increasing* part (new exposure); a flip through 0
   has both.
4. **Halt:** increasing parts are removed (``halted_daily_loss``).
5. **Gross exposure cap:** if exposure after all reductions plus all increases exceeds
   ``max_gross_exposure x equity``, every increase is scaled down by the same factor.
6. **Turnover cap** (``max_turnover_fraction x equity`` of traded notional): stop-losses are exempt
   but use up the budget first; then reductions (scaled down proportionally only if they alone
   exceed what is left), then increases with the rest, scaled down proportionally.
7. **Sells are finalised** (steps 9 and 10) before the cash step, because only the proceeds of
   sells that survive can pay for buys.
8. **Cash for buys (spot, no leverage):** buys may spend at most
   ``(cash + proceeds of reducing sells) x (1 - cash_buffer_fraction)`` (the buffer pays fees and
   slippage). Proceeds of a sell that opens a short are collateral, not spendable. Short covers
   are paid first; increases share the rest proportionally.
9. **Rounding** down to the market's ``amount_step`` (never up: rounding must not break a cap). It
   moves a quantity by less than one step and is not recorded as an adjustment.
10. **Exchange minimums:** an order that rounds to 0 (``below_amount_step``), is under
    ``min_amount`` (``min_amount``) or costs less than ``min_cost`` (``min_cost``) is rejected.
11. **Order:** sells before buys (sales free the cash that buys spend), then by symbol.

Symbols absent from ``targets`` are left alone (apart from stop-losses); pass a target of 0 to
close a position. Sizing uses the marks as reference prices; the fill happens later (see
``tradepipe.core.paper``).
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field, fields
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Context, Decimal, localcontext
from typing import Callable, Collection, Iterable, Mapping

from tradepipe.core.types import EnsembleDecision, MarketRules, OrderIntent, Position, Rejection, Side
from tradepipe.core.formatting import money, percent

__all__ = [
    "Adjustment",
    "CLIENT_ORDER_ID_MAX_LENGTH",
    "CLIENT_ORDER_ID_PATTERN",
    "RiskLimits",
    "RiskPlan",
    "client_order_id",
    "equity",
    "is_dust",
    "plan_orders",
    "quantize_to_step",
]

CLIENT_ORDER_ID_MAX_LENGTH = 36  # binance's limit, the strictest of the exchanges we target
_CLIENT_ORDER_ID_PREFIX = "tp-"
CLIENT_ORDER_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,36}$")

# Sizing arithmetic: wide enough that products and sums of money are exact; divisions round
# toward zero so a scaled-down quantity never overshoots the cap that scaled it.
_SIZING = Context(prec=50, rounding=ROUND_DOWN)
_ZERO = Decimal(0)
_ONE = Decimal(1)


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class RiskLimits:
    """Limits every order must respect. Fractions are of current equity unless said otherwise.

    Floats, ints and strings are accepted and converted to ``Decimal``. ``stop_loss_fraction=0``
    disables stop-losses and ``daily_loss_limit_fraction=0`` disables the daily halt.
    ``cash_buffer_fraction`` is kept back from the cash buys may spend, for fees and slippage.
    """

    max_position_fraction: Decimal = Decimal("0.25")
    max_gross_exposure: Decimal = Decimal("1.0")
    max_turnover_fraction: Decimal = Decimal("0.5")
    stop_loss_fraction: Decimal = Decimal("0.05")
    daily_loss_limit_fraction: Decimal = Decimal("0.03")
    allow_short: bool = False
    cash_buffer_fraction: Decimal = Decimal("0.002")

    def __post_init__(self) -> None:
        below_one = {"stop_loss_fraction", "daily_loss_limit_fraction", "cash_buffer_fraction"}
        for f in fields(self):
            if f.name == "allow_short":
                continue
            value = _to_decimal(getattr(self, f.name))
            if value is None or value < 0 or (f.name in below_one and value >= 1):
                bound = "in [0, 1)" if f.name in below_one else ">= 0"
                raise ValueError(f"RiskLimits.{f.name} must be a finite number {bound}, got {getattr(self, f.name)!r}")
            object.__setattr__(self, f.name, value)  # frozen: normalise once, at construction


@dataclass(frozen=True)
class Adjustment:
    """An order one step resized: ``requested_quantity`` before the step, ``adjusted_quantity`` after.

    ``kind`` uses the same codes as :class:`Rejection`. A clip of the target can turn the side
    around (a position above ``max_position`` is trimmed although the target asked for more); the
    ``side`` is then the new one and the reason says so.
    """

    symbol: str
    side: Side
    requested_quantity: Decimal
    adjusted_quantity: Decimal
    reason: str
    kind: str
    client_order_id: str = ""


@dataclass(frozen=True)
class RiskPlan:
    """Outcome of one cycle's risk pass: what to send, and everything that was cut or refused."""

    orders: list[OrderIntent]
    rejections: list[Rejection]
    adjustments: list[Adjustment]
    halted: bool
    halt_reason: str | None
    equity: Decimal


# --------------------------------------------------------------------------- public helpers


def client_order_id(book: str, bar_open_ms: int, symbol: str, purpose: str = "rebalance") -> str:
    """Deterministic id of the order a cycle sends for one symbol: ``"tp-"`` + 32 hex digits.

    The same book, bar, symbol and purpose always give the same id, so a retried or restarted
    cycle re-sends the *same* order and the exchange or the database refuses the duplicate.
    35 characters of ``[a-z0-9-]``: within binance's 36 characters of ``[a-zA-Z0-9-_]``.
    """
    key = "\x1f".join((book, str(int(bar_open_ms)), symbol, purpose))
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    return _CLIENT_ORDER_ID_PREFIX + digest[: CLIENT_ORDER_ID_MAX_LENGTH - len(_CLIENT_ORDER_ID_PREFIX) - 1]


def equity(cash: Decimal, positions: Mapping[str, Position], marks: Mapping[str, Decimal]) -> Decimal:
    """``cash + sum(quantity x mark)``, exactly. Every open position needs a mark (ValueError otherwise)."""
    missing = sorted(s for s, p in positions.items() if p.quantity != 0 and s not in marks)
    if missing:
        raise ValueError(f"no mark for open position(s) {missing}: equity cannot be computed")
    with localcontext(_SIZING):
        return cash + sum((p.quantity * marks[s] for s, p in positions.items() if p.quantity != 0), _ZERO)


def is_dust(quantity: Decimal, mark: Decimal | None, rules: MarketRules | None) -> bool:
    """True for a non-zero position the exchange would refuse to close at ``mark``.

    That is, ``|quantity|`` rounds down to 0 at the amount step, or is under ``min_amount``, or
    costs under ``min_cost`` at the mark: the sell that closes it would be rejected by the same
    rule as any order (step 10). Without a usable mark or the market's rules it is not dust (we
    cannot tell; the position is treated as a normal one).
    """
    if quantity == 0 or rules is None or mark is None or not (mark.is_finite() and mark > 0):
        return False
    with localcontext(_SIZING):
        return _minimum_problem(rules.symbol, quantize_to_step(abs(quantity), rules.amount_step), abs(quantity), mark, rules) is not None


def quantize_to_step(value: Decimal, step: Decimal, rounding: str = ROUND_DOWN) -> Decimal:
    """``value`` on the grid of ``step`` (an amount step or a price tick); rounds toward zero by default."""
    if step <= 0:
        raise ValueError(f"step must be > 0, got {step}")
    with localcontext(_SIZING):
        return (value / step).to_integral_value(rounding=rounding) * step


# --------------------------------------------------------------------------- planning


def plan_orders(
    *,
    book: str,
    bar_open_ms: int,
    targets: Mapping[str, float | Decimal],
    decisions: Mapping[str, EnsembleDecision],
    positions: Mapping[str, Position],
    cash: Decimal,
    marks: Mapping[str, Decimal],
    rules: Mapping[str, MarketRules],
    limits: RiskLimits,
    day_start_equity: Decimal,
    halted: bool,
    cooldown: Collection[str] = frozenset(),
    entries_paused: str | None = None,
) -> RiskPlan:
    """Orders that move the book toward ``targets`` (signed fractions of equity) within ``limits``.

    ``halted`` says the book was already halted earlier this UTC day (the caller keeps that state
    until the day rolls over); ``cooldown`` lists symbols whose stop-loss fired recently (the
    caller decides for how long). ``entries_paused`` (a trader's pause, with who and why) blocks every
    increase as a halt does; exits and reductions still go through. See the module docstring for the
    order of operations.
    """
    with localcontext(_SIZING):
        ctx = _Cycle(book, bar_open_ms, positions, marks, rules, limits, _Log())
        book_equity = _book_equity(cash, positions, marks)
        is_halted, halt_reason = _daily_loss_halt(book_equity, day_start_equity, limits, halted)
        legs = _stop_loss_legs(ctx)
        stopped = {leg.symbol for leg in legs}
        legs += _rebalance_legs(ctx, targets, decisions, book_equity, stopped, set(cooldown))
        if not legs:  # nothing to size: every step below would pass an empty list through unchanged
            return RiskPlan([], ctx.log.rejections, ctx.log.adjustments, is_halted, halt_reason, book_equity)
        if is_halted:
            legs = _block_increases(ctx, legs, "halted_daily_loss", f"halted, no new risk: {halt_reason or ''}")
        if entries_paused:
            legs = _block_increases(ctx, legs, "entries_paused", f"entries paused: {entries_paused}")
        legs = _cap_gross_exposure(ctx, legs, book_equity)
        legs = _cap_turnover(ctx, legs, book_equity)
        sells = _finalise(ctx, [leg for leg in legs if leg.side == "sell"], book_equity)
        buys = _cap_cash(ctx, [leg for leg in legs if leg.side == "buy"], cash, sells)
        orders = [order for _, order in sells] + [order for _, order in _finalise(ctx, buys, book_equity)]
    orders.sort(key=lambda o: (o.side != "sell", o.symbol))
    return RiskPlan(orders, ctx.log.rejections, ctx.log.adjustments, is_halted, halt_reason, book_equity)


@dataclass
class _Leg:
    """A symbol's order while it is being sized: a reducing part and an increasing part (quantities)."""

    symbol: str
    side: Side
    mark: Decimal
    rules: MarketRules
    purpose: str
    client_order_id: str
    current: Decimal
    reduce: Decimal
    increase: Decimal
    requested: Decimal
    target: Decimal | None = None  # fraction of equity; None for a stop-loss
    reason: str = ""
    contributions: Mapping[str, float] = field(default_factory=dict)

    @property
    def quantity(self) -> Decimal:
        return self.reduce + self.increase


@dataclass
class _Log:
    rejections: list[Rejection] = field(default_factory=list)
    adjustments: list[Adjustment] = field(default_factory=list)

    def reject(self, leg: _Leg, kind: str, reason: str) -> None:
        self.rejections.append(Rejection(leg.symbol, leg.side, leg.requested, reason, kind, leg.client_order_id))

    def resize(self, leg: _Leg, reduce: Decimal, increase: Decimal, kind: str, reason: str) -> bool:
        """Shrink ``leg`` to the given parts; record it. Returns False when nothing is left."""
        before = leg.quantity
        leg.reduce, leg.increase = reduce, increase
        if leg.quantity == 0:
            self.reject(leg, kind, reason)
            return False
        if leg.quantity != before:
            self.adjustments.append(
                Adjustment(leg.symbol, leg.side, before, leg.quantity, reason, kind, leg.client_order_id)
            )
        return True


@dataclass(frozen=True)
class _Cycle:
    """What every step of one planning pass needs to see."""

    book: str
    bar_open_ms: int
    positions: Mapping[str, Position]
    marks: Mapping[str, Decimal]
    rules: Mapping[str, MarketRules]
    limits: RiskLimits
    log: _Log

    def held(self, symbol: str) -> Decimal:
        position = self.positions.get(symbol)
        return position.quantity if position is not None else _ZERO

    def mark(self, symbol: str) -> Decimal | None:
        return _usable_mark(self.marks, symbol)

    def value_price(self, symbol: str) -> Decimal:
        """The mark, or the average price when there is none (step 0)."""
        return _usable_mark(self.marks, symbol) or self.positions[symbol].average_price


def _usable_mark(marks: Mapping[str, Decimal], symbol: str) -> Decimal | None:
    mark = marks.get(symbol)
    return mark if mark is not None and mark.is_finite() and mark > 0 else None


def _book_equity(cash: Decimal, positions: Mapping[str, Position], marks: Mapping[str, Decimal]) -> Decimal:
    """Equity with a missing mark replaced by the average price (see step 0)."""
    priced = {s: _usable_mark(marks, s) or p.average_price for s, p in positions.items()}
    return equity(cash, positions, priced)


def _daily_loss_halt(
    book_equity: Decimal, day_start_equity: Decimal, limits: RiskLimits, already_halted: bool
) -> tuple[bool, str | None]:
    if book_equity <= 0:
        return True, f"equity {_money(book_equity)} <= 0: no new risk"
    limit = limits.daily_loss_limit_fraction
    if limit > 0 and day_start_equity > 0:
        floor = day_start_equity * (_ONE - limit)
        if book_equity <= floor:
            loss = _ONE - book_equity / day_start_equity
            return True, (
                f"daily loss limit: equity {_money(book_equity)} <= {_money(floor)} "
                f"({_pct(limit)} below the day's start {_money(day_start_equity)}; down {_pct(loss)})"
            )
    if already_halted:
        return True, "halted earlier this UTC day by the daily loss limit"
    return False, None


def _stop_trigger(position: Position, mark: Decimal, fraction: Decimal) -> str | None:
    """The stop-loss reason if ``mark`` breached the position's stop, else None."""
    avg = position.average_price
    if position.quantity > 0:
        stop = avg * (_ONE - fraction)
        hit, relation = mark <= stop, "<="
    else:
        stop = avg * (_ONE + fraction)
        hit, relation = mark >= stop, ">="
    if not hit:
        return None
    return f"stop-loss: mark {_num(mark)} {relation} stop {_num(stop)} ({_pct(fraction)} from average entry {_num(avg)})"


def _stop_loss_legs(ctx: _Cycle) -> list[_Leg]:
    """Full closes of every position whose stop was hit (step 2)."""
    if ctx.limits.stop_loss_fraction == 0:
        return []
    legs = []
    for symbol in sorted(ctx.positions):
        position, mark = ctx.positions[symbol], ctx.mark(symbol)
        if position.quantity == 0 or mark is None:
            continue
        reason = _stop_trigger(position, mark, ctx.limits.stop_loss_fraction)
        if reason is None or is_dust(position.quantity, mark, ctx.rules.get(symbol)):
            continue
        leg = _leg(ctx, symbol, mark, position.quantity, _ZERO, "stop_loss")
        leg.reason = reason
        if symbol not in ctx.rules:
            ctx.log.reject(leg, "no_market_rules", f"no market rules for {symbol}: cannot size the stop-loss")
            continue
        legs.append(leg)
    return legs


def _leg(ctx: _Cycle, symbol: str, mark: Decimal, current: Decimal, target_qty: Decimal, purpose: str) -> _Leg:
    """The order that takes ``current`` to ``target_qty``, split into reducing and increasing parts."""
    delta = target_qty - current
    if current == 0 or (_sign(target_qty) == _sign(current) and abs(target_qty) >= abs(current)):
        reduce, increase = _ZERO, abs(delta)
    elif _sign(target_qty) == _sign(current):
        reduce, increase = abs(delta), _ZERO
    else:  # to zero, or through it
        reduce, increase = abs(current), abs(target_qty)
    return _Leg(
        symbol=symbol,
        side="buy" if delta > 0 else "sell",
        mark=mark,
        rules=ctx.rules.get(symbol) or MarketRules(symbol),  # placeholder; a leg without rules is rejected
        purpose=purpose,
        client_order_id=client_order_id(ctx.book, ctx.bar_open_ms, symbol, purpose),
        current=current,
        reduce=reduce,
        increase=increase,
        requested=reduce + increase,
    )


def _rebalance_legs(
    ctx: _Cycle,
    targets: Mapping[str, float | Decimal],
    decisions: Mapping[str, EnsembleDecision],
    book_equity: Decimal,
    stopped: set[str],
    cooldown: set[str],
) -> list[_Leg]:
    """One sized leg per target that asks for a change (step 3), or its rejection."""
    legs = []
    for symbol in sorted(targets):
        leg = _target_leg(ctx, symbol, targets[symbol], book_equity, stopped)
        if leg is None:
            continue
        decision = decisions.get(symbol)
        leg.contributions = dict(decision.contributions) if decision is not None else {}
        if symbol not in ctx.rules:
            ctx.log.reject(leg, "no_market_rules", f"no market rules for {symbol}: cannot round the order")
            continue
        if not _clip_target(ctx, leg, book_equity):
            continue
        if symbol in cooldown and leg.increase > 0:
            reason = f"{symbol} is in stop-loss cooldown: it may shrink but not grow"
            if not ctx.log.resize(leg, leg.reduce, _ZERO, "stop_loss_cooldown", reason):
                continue
        legs.append(leg)
    return legs


def _target_leg(
    ctx: _Cycle, symbol: str, raw_target: float | Decimal, book_equity: Decimal, stopped: set[str]
) -> _Leg | None:
    """The unclipped leg a target asks for; None if no order is needed or it cannot be sized."""
    coid = client_order_id(ctx.book, ctx.bar_open_ms, symbol)
    target, mark = _to_decimal(raw_target), ctx.mark(symbol)
    if target is None:
        ctx.log.rejections.append(Rejection(symbol, None, _ZERO, f"invalid target {raw_target!r}", "invalid_target", coid))
        return None
    if mark is None:
        reason = f"no usable mark for {symbol} (got {ctx.marks.get(symbol)!r}): cannot size the order"
        ctx.log.rejections.append(Rejection(symbol, None, _ZERO, reason, "no_price", coid))
        return None
    if book_equity <= 0:
        reason = f"equity {_money(book_equity)} <= 0: targets cannot be sized"
        ctx.log.rejections.append(Rejection(symbol, None, _ZERO, reason, "non_positive_equity", coid))
        return None
    if symbol in stopped:
        if target != 0:  # the stop-loss closes it; re-entering in the same cycle would undo it
            leg = _leg(ctx, symbol, mark, _ZERO, target * book_equity / mark, "rebalance")
            ctx.log.reject(leg, "stop_loss_cooldown", f"stop-loss closed {symbol} this cycle; target {_pct(target)} not re-entered")
        return None
    leg = _leg(ctx, symbol, mark, ctx.held(symbol), target * book_equity / mark, "rebalance")
    leg.target = target
    return leg if leg.quantity > 0 else None


def _clip_target(ctx: _Cycle, leg: _Leg, book_equity: Decimal) -> bool:
    """Long-only and max-position clips of the leg's target; False when nothing is left to do."""
    assert leg.target is not None
    target, limits = leg.target, ctx.limits
    if target < 0 and not limits.allow_short:
        clipped, kind = _ZERO, "long_only"
        reason = f"short target {_pct(target)} but allow_short is off: sell at most the {_num(leg.current)} held"
    elif abs(target) > limits.max_position_fraction:
        clipped, kind = limits.max_position_fraction * _sign(target), "max_position"
        reason = f"target {_pct(target)} clipped to max position {_pct(limits.max_position_fraction)} of equity"
    else:
        return True
    clipped_leg = _leg(ctx, leg.symbol, leg.mark, leg.current, clipped * book_equity / leg.mark, "rebalance")
    if clipped_leg.quantity == 0:
        ctx.log.reject(leg, kind, reason)
        return False
    if clipped_leg.side != leg.side:
        reason += f" (the {leg.side} became a {clipped_leg.side}: the position is above the clipped target)"
    before, old_side = leg.quantity, leg.side
    leg.side, leg.target = clipped_leg.side, clipped
    leg.reduce, leg.increase = clipped_leg.reduce, clipped_leg.increase
    if leg.quantity != before or leg.side != old_side:
        ctx.log.adjustments.append(Adjustment(leg.symbol, leg.side, before, leg.quantity, reason, kind, leg.client_order_id))
    return True


def _block_increases(ctx: _Cycle, legs: list[_Leg], kind: str, reason: str) -> list[_Leg]:
    """Step 4: a halted (or paused) book only shrinks exposure."""
    return [leg for leg in legs if leg.increase == 0 or ctx.log.resize(leg, leg.reduce, _ZERO, kind, reason)]


def _scale_increases(ctx: _Cycle, legs: list[_Leg], room: Decimal, kind: str, why: Callable[[], str]) -> list[_Leg]:
    """Scale every leg's increasing part by one factor so their notional fits in ``room``. ``why`` words
    the cap; it is called only when a leg is resized (most cycles fit, and the words cost more than the check)."""
    wanted = sum((leg.increase * leg.mark for leg in legs), _ZERO)
    room = max(room, _ZERO)
    if wanted <= room:
        return legs
    reason = f"{why()}: room {_money(room)} for {_money(wanted)} of new exposure, increases scaled to {_pct(room / wanted)}"
    return [leg for leg in legs if leg.increase == 0 or ctx.log.resize(leg, leg.reduce, leg.increase * room / wanted, kind, reason)]


def _scale_reductions(ctx: _Cycle, legs: list[_Leg], room: Decimal, kind: str, why: Callable[[], str]) -> list[_Leg]:
    """Scale reducing parts to fit ``room`` (< their notional); increases get nothing (they come after)."""
    wanted = sum((leg.reduce * leg.mark for leg in legs), _ZERO)
    reason = f"{why()}: room {_money(room)} for {_money(wanted)} of reductions, reductions scaled to {_pct(room / wanted)}, no increases"
    return [leg for leg in legs if ctx.log.resize(leg, leg.reduce * room / wanted, _ZERO, kind, reason)]


def _cap_gross_exposure(ctx: _Cycle, legs: list[_Leg], book_equity: Decimal) -> list[_Leg]:
    """Step 5: exposure after reductions plus increases within ``max_gross_exposure x equity``."""
    exposure = sum((abs(p.quantity) * ctx.value_price(s) for s, p in ctx.positions.items()), _ZERO)
    after_reductions = exposure - sum((leg.reduce * leg.mark for leg in legs), _ZERO)
    cap = ctx.limits.max_gross_exposure * book_equity
    def why() -> str:
        return f"gross exposure cap {_pct(ctx.limits.max_gross_exposure)} of equity ({_money(cap)}, {_money(after_reductions)} held after reductions)"

    return _scale_increases(ctx, legs, cap - after_reductions, "gross_exposure", why)


def _cap_turnover(ctx: _Cycle, legs: list[_Leg], book_equity: Decimal) -> list[_Leg]:
    """Step 6: traded notional within ``max_turnover_fraction x equity``; stop-losses first and exempt."""
    stops = [leg for leg in legs if leg.purpose == "stop_loss"]
    rebalances = [leg for leg in legs if leg.purpose != "stop_loss"]
    budget = ctx.limits.max_turnover_fraction * book_equity
    room = max(budget - sum((leg.quantity * leg.mark for leg in stops), _ZERO), _ZERO)
    reductions = sum((leg.reduce * leg.mark for leg in rebalances), _ZERO)
    def why() -> str:
        return f"turnover cap {_pct(ctx.limits.max_turnover_fraction)} of equity ({_money(budget)} per cycle)"

    if reductions > room:
        return stops + _scale_reductions(ctx, rebalances, room, "turnover_cap", why)
    return stops + _scale_increases(ctx, rebalances, room - reductions, "turnover_cap", why)


def _cap_cash(ctx: _Cycle, buys: list[_Leg], cash: Decimal, sells: list[tuple[_Leg, OrderIntent]]) -> list[_Leg]:
    """Step 8: buys spend at most the cash plus the proceeds of reducing sells, less the buffer."""
    proceeds = sum((min(order.quantity, leg.reduce) * order.reference_price for leg, order in sells), _ZERO)
    buffer = ctx.limits.cash_buffer_fraction
    spendable = max((cash + proceeds) * (_ONE - buffer), _ZERO)
    def why() -> str:
        return (
            f"not enough cash: {_money(spendable)} spendable (cash {_money(cash)} + sale proceeds "
            f"{_money(proceeds)}, less a {_pct(buffer)} buffer for fees)"
        )

    covers = sum((leg.reduce * leg.mark for leg in buys), _ZERO)
    if covers > spendable:
        return _scale_reductions(ctx, buys, spendable, "insufficient_cash", why)
    return _scale_increases(ctx, buys, spendable - covers, "insufficient_cash", why)


def _finalise(ctx: _Cycle, legs: Iterable[_Leg], book_equity: Decimal) -> list[tuple[_Leg, OrderIntent]]:
    """Steps 9-10: round down to the amount step, enforce the exchange minimums, build the intents."""
    approved = []
    for leg in legs:
        quantity = quantize_to_step(leg.quantity, leg.rules.amount_step)
        problem = _below_minimum(leg, quantity)
        if problem is not None:
            ctx.log.reject(leg, *problem)
            continue
        approved.append((leg, _intent(ctx, leg, quantity, book_equity)))
    return approved


def _below_minimum(leg: _Leg, quantity: Decimal) -> tuple[str, str] | None:
    return _minimum_problem(leg.symbol, quantity, leg.quantity, leg.mark, leg.rules)


def _minimum_problem(symbol: str, quantity: Decimal, unrounded: Decimal, mark: Decimal, rules: MarketRules) -> tuple[str, str] | None:
    """(kind, reason) when an order of ``quantity`` (already on the amount step) breaks an exchange minimum."""
    if quantity == 0:
        return "below_amount_step", f"order {_num(unrounded)} rounds down to 0 at the amount step {_num(rules.amount_step)}"
    if quantity < rules.min_amount:
        return "min_amount", f"below exchange minimum amount {_num(rules.min_amount)} {_base(symbol)} (order {_num(quantity)})"
    cost = quantity * mark
    if cost < rules.min_cost:
        return "min_cost", f"below exchange minimum cost {_num(rules.min_cost)} {_quote(symbol)} (order {_money(cost)})"
    return None


def _intent(ctx: _Cycle, leg: _Leg, quantity: Decimal, book_equity: Decimal) -> OrderIntent:
    if leg.purpose == "stop_loss":
        reason = leg.reason
    else:
        after = leg.current + (quantity if leg.side == "buy" else -quantity)
        reason = (
            f"rebalance {leg.symbol} from {_pct(leg.current * leg.mark / book_equity)} "
            f"to {_pct(after * leg.mark / book_equity)} of equity (target {_pct(leg.target or _ZERO)})"
        )
    return OrderIntent(
        symbol=leg.symbol,
        side=leg.side,
        quantity=quantity,
        reference_price=leg.mark,
        client_order_id=leg.client_order_id,
        reason=reason,
        requested_quantity=leg.requested,
        contributions=dict(leg.contributions),
        purpose=leg.purpose,
        bar_open_ms=ctx.bar_open_ms,
    )


# --------------------------------------------------------------------------- small helpers


def _to_decimal(value: object) -> Decimal | None:
    """A finite Decimal from a Decimal, int, float or numeric string; None if it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None  # repr: 0.1 -> "0.1"
    try:
        result = Decimal(value) if isinstance(value, (Decimal, int, str)) else None
    except ArithmeticError:
        return None
    return result if result is not None and result.is_finite() else None


def _sign(value: Decimal) -> int:
    return (value > 0) - (value < 0)


def _num(value: Decimal) -> str:
    """A quantity or price for a message: plain notation, no trailing zeros."""
    text = format(value.quantize(Decimal("1e-10"), rounding=ROUND_HALF_EVEN), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _money(value: Decimal) -> str:
    return money(value, grouping=False)


def _pct(fraction: Decimal) -> str:
    return percent(fraction, 1)


def _base(symbol: str) -> str:
    return symbol.split("/")[0]


def _quote(symbol: str) -> str:
    """Quote currency of a ccxt symbol: "BTC/USDT" and "BTC/USDT:USDT" give "USDT"."""
    return symbol.split("/")[1].split(":")[0] if "/" in symbol else ""
