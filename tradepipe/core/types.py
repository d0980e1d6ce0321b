"""Plain data shared by the pure core: no Dagster, no I/O.

Prices in bars and signals are floats (analytics); money and quantities that reach the
ledger are ``Decimal`` (exact).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Context, Decimal, localcontext
from typing import Literal, Mapping

import numpy as np

Side = Literal["buy", "sell"]

# A fill's notional is checked in a context wide enough to be exact for any money this project holds.
_EXACT_NOTIONAL = Context(prec=60, rounding=ROUND_DOWN)


@dataclass(frozen=True)
class BarHistory:
    """Closed bars of one symbol, oldest first. Arrays share one length.

    ``timestamps`` are bar-open times in integer milliseconds since the epoch (UTC).
    """

    symbol: str
    timeframe: str
    timestamps: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return int(self.timestamps.shape[0])

    @property
    def last_timestamp(self) -> int:
        return int(self.timestamps[-1])

    @property
    def last_close(self) -> float:
        return float(self.close[-1])


@dataclass(frozen=True)
class Headline:
    """One news headline for the sentiment agent; ``published_ms`` is UTC ms."""

    title: str
    published_ms: int
    source: str = ""


@dataclass(frozen=True)
class AgentContext:
    """What an agent may look at besides the symbol's bars."""

    now_ms: int
    headlines: tuple[Headline, ...] | None = None


@dataclass(frozen=True)
class Signal:
    """An agent's vote for one symbol: ``value`` in [-1, 1] (short to long), ``confidence`` in [0, 1].

    An agent that abstains sets ``abstained=True`` (value and confidence 0) and says why in ``reason``;
    the ensemble renormalises over the agents that voted.
    """

    agent: str
    symbol: str
    value: float
    confidence: float
    reason: str
    abstained: bool = False


@dataclass(frozen=True)
class EnsembleDecision:
    """The weighted vote for one symbol.

    ``contributions[agent] = weight * value * confidence / sum(weights of agents that voted)``; ``score`` is their
    sum, in [-1, 1]. Attribution later splits P&L in proportion to these contributions.
    """

    symbol: str
    score: float
    contributions: Mapping[str, float]
    voters: tuple[str, ...]
    abstainers: tuple[str, ...]


@dataclass(frozen=True)
class MarketRules:
    """Exchange limits and precision for one market (as ccxt's ``market`` dict gives them)."""

    symbol: str
    amount_step: Decimal = Decimal("0.00000001")
    price_tick: Decimal = Decimal("0.00000001")
    min_amount: Decimal = Decimal("0")
    min_cost: Decimal = Decimal("0")


@dataclass(frozen=True)
class Position:
    symbol: str
    quantity: Decimal
    average_price: Decimal
    opening_contributions: Mapping[str, float] = field(default_factory=dict)
    opened_ms: int = 0


@dataclass(frozen=True)
class OrderIntent:
    """An order the risk manager approved, sized and rounded, ready for a broker.

    ``quantity`` is on the market's amount step; ``requested_quantity`` is what the target asked
    for before any cap (unrounded). ``contributions`` are copied from the ensemble decision that
    motivated the order (empty for a stop-loss); the ledger keeps those of the decision that opens
    a position, for attribution. ``bar_open_ms`` is the bar whose close the decision saw: the order
    may only fill after it (see ``paper.fill_order``).
    """

    symbol: str
    side: Side
    quantity: Decimal
    reference_price: Decimal
    client_order_id: str
    reason: str
    requested_quantity: Decimal
    contributions: Mapping[str, float] = field(default_factory=dict)
    purpose: str = "rebalance"
    bar_open_ms: int = 0

    @property
    def notional(self) -> Decimal:
        return self.quantity * self.reference_price


@dataclass(frozen=True)
class Rejection:
    """An order that will not be sent, with a human ``reason`` (numbers included) and a machine ``kind``.

    Kinds: ``invalid_target``, ``no_price``, ``no_market_rules``, ``non_positive_equity``,
    ``long_only``, ``max_position``, ``stop_loss_cooldown``, ``halted_daily_loss``,
    ``gross_exposure``, ``turnover_cap``, ``insufficient_cash``, ``below_amount_step``,
    ``min_amount``, ``min_cost``. ``side`` is None and ``requested_quantity`` 0 when the order
    could not even be sized (no price, invalid target).
    """

    symbol: str
    side: Side | None
    requested_quantity: Decimal
    reason: str
    kind: str
    client_order_id: str = ""


@dataclass(frozen=True)
class Fill:
    """An executed order (from any broker). ``notional = quantity x price`` exactly; ``fee`` in quote currency.

    ``requested_quantity`` is the order's quantity; ``note`` explains a difference (a gap-up cut).
    """

    client_order_id: str
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    fee: Decimal
    notional: Decimal
    fill_ms: int
    requested_quantity: Decimal | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if self.side not in ("buy", "sell"):
            raise ValueError(f"fill side must be 'buy' or 'sell', got {self.side!r}")
        if not (self.quantity > 0 and self.price > 0 and self.fee >= 0):
            raise ValueError(f"fill needs quantity > 0, price > 0, fee >= 0: {self.quantity}, {self.price}, {self.fee}")
        with localcontext(_EXACT_NOTIONAL):
            if self.notional != self.quantity * self.price:
                raise ValueError(f"fill notional {self.notional} != quantity {self.quantity} x price {self.price}")
