"""Plain data shared by the pure core: no Dagster, no I/O.

Prices in bars and signals are floats (analytics); money and quantities that reach the
ledger are ``Decimal`` (exact).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Mapping

import numpy as np


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
