"""Exact trade attribution: split realised P&L among the agents that opened the trade.

Each agent's part is proportional to its contribution to the ensemble score that opened the
position (``EnsembleDecision.contributions``; mixed signs allowed). Money stays exact: the
P&L is counted in integer minor units of ``quantum`` (default 1e-8), each agent gets a whole
number of units, and the parts sum *exactly* to the P&L.

Rounding rule (largest remainder), shared by :func:`split_pnl` and :func:`attribute_fills`:

1. ``share_a = contribution_a / sum(contributions)`` and ``ideal_a = pnl_units * share_a``
   (float64);
2. every agent gets ``floor(ideal_a)`` units;
3. the units still missing, ``deficit = pnl_units - sum(floors)``, go one each to the agents
   with the largest ``ideal_a - floor(ideal_a)``; ties go to the earlier agent (column order in
   :func:`attribute_fills`, name order in :func:`split_pnl`). Should float rounding make the
   deficit negative or larger than the number of agents, it is spread as
   ``deficit // n_agents`` to everyone plus the rule above for ``deficit % n_agents``, so the
   sum is exact in every case.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Any

import numpy as np
from numpy.typing import NDArray

DEFAULT_QUANTUM = Decimal("0.00000001")
UNATTRIBUTED = "unattributed"
"""Key that receives the whole P&L when there is nothing to split by (no contributions, or
contributions summing to zero). An agent should not be named like this."""

_INT64_MAX = np.iinfo(np.int64).max
# Largest |ideal| we floor into int64; parts beyond it would mean contributions that nearly
# cancel (sum ~ 0), i.e. a position that should not have been opened.
_PART_LIMIT = float(2**62)


def split_pnl(
    pnl: Decimal,
    contributions: Mapping[str, float],
    quantum: Decimal = DEFAULT_QUANTUM,
) -> dict[str, Decimal]:
    """Split one trade's realised ``pnl`` among agents in proportion to their contributions.

    Returns ``{agent: part}`` with every agent of ``contributions`` (sorted by name), each part
    a whole multiple of ``quantum``, and ``sum(parts) == pnl`` exactly. Empty contributions or
    contributions summing to zero give ``{UNATTRIBUTED: pnl}``. ``pnl`` must be a multiple of
    ``quantum`` (quantise it first, or pass a finer quantum), else ``ValueError``.

    >>> split_pnl(Decimal("10.00"), {"b": 1.0, "a": 1.0, "c": 1.0}, quantum=Decimal("0.01"))
    {'a': Decimal('3.34'), 'b': Decimal('3.33'), 'c': Decimal('3.33')}
    >>> split_pnl(Decimal("1.00"), {"trend": 0.3, "contrarian": -0.1}, quantum=Decimal("0.01"))
    {'contrarian': Decimal('-0.50'), 'trend': Decimal('1.50')}
    """
    units = to_minor_units(pnl, quantum)
    agents = sorted(contributions)
    raw = np.array([[float(contributions[a]) for a in agents]], dtype=np.float64).reshape(1, len(agents))
    _raise_on_non_finite(raw, lambda _row, col: f"contribution of agent {agents[col]!r}")
    if not agents or raw.sum(axis=1)[0] == 0.0:
        return {UNATTRIBUTED: from_minor_units(units, quantum)}
    if abs(units) > _INT64_MAX:
        raise ValueError(f"pnl {pnl} is {units} units of {quantum}: beyond int64, use a coarser quantum")
    parts = attribute_fills(np.array([units], dtype=np.int64), raw)[0]
    return {agent: from_minor_units(int(part), quantum) for agent, part in zip(agents, parts)}


def attribute_fills(pnl_minor: Any, shares: Any) -> NDArray[np.int64]:
    """Vectorised :func:`split_pnl` for many fills: integer parts whose rows sum to ``pnl_minor``.

    ``pnl_minor``: int64 array (n_fills,) of realised P&L in minor units.
    ``shares``: float array (n_fills, n_agents) of raw contributions (any sign, any scale);
    each row is normalised inside by its own sum, so already-normalised shares work too.
    Returns int64 (n_fills, n_agents) with ``result.sum(axis=1) == pnl_minor`` exactly.
    A row whose contributions sum to zero, or any NaN/inf, raises ``ValueError`` naming the row
    (:func:`split_pnl` sends such trades to ``UNATTRIBUTED`` instead).
    """
    pnl = _as_int64_vector(pnl_minor)
    raw = np.asarray(shares, dtype=np.float64)
    if raw.ndim != 2 or raw.shape[0] != pnl.shape[0] or raw.shape[1] == 0:
        raise ValueError(f"shares must have shape (n_fills={pnl.shape[0]}, n_agents>=1), got {raw.shape}")
    _raise_on_non_finite(raw, lambda row, col: f"shares[{row}, {col}]")
    totals = raw.sum(axis=1)
    if np.any(totals == 0.0):
        raise ValueError(f"contributions of fill {int(np.argmax(totals == 0.0))} sum to zero: nothing to split by")
    ideal = pnl.astype(np.float64)[:, None] * (raw / totals[:, None])
    if np.any(np.abs(ideal) >= _PART_LIMIT):
        row = int(np.argmax(np.any(np.abs(ideal) >= _PART_LIMIT, axis=1)))
        raise ValueError(f"fill {row}: contributions nearly cancel, a part would exceed int64")
    return _largest_remainder(pnl, ideal)


def to_minor_units(amount: Decimal | int, quantum: Decimal = DEFAULT_QUANTUM) -> int:
    """``amount / quantum`` as an exact int; ``ValueError`` if ``amount`` is not a multiple."""
    if not isinstance(amount, (Decimal, int)) or isinstance(amount, bool):
        raise TypeError(f"amount must be Decimal or int (floats are inexact), got {type(amount).__name__}")
    _check_quantum(quantum)
    if isinstance(amount, Decimal) and not amount.is_finite():
        raise ValueError(f"amount must be finite, got {amount}")
    units = Fraction(amount) / Fraction(quantum)
    if units.denominator != 1:
        raise ValueError(f"{amount} is not a whole multiple of quantum {quantum}: quantise it or use a finer quantum")
    return int(units)


def from_minor_units(units: int, quantum: Decimal = DEFAULT_QUANTUM) -> Decimal:
    """``units * quantum`` as an exact Decimal (the context is widened so nothing rounds)."""
    _check_quantum(quantum)
    digits = len(str(abs(int(units)))) + len(quantum.as_tuple().digits) + 2
    with localcontext() as context:
        context.prec = max(context.prec, digits)
        return Decimal(int(units)) * quantum


# --------------------------------------------------------------------------------------------


def _largest_remainder(pnl: NDArray[np.int64], ideal: NDArray[np.float64]) -> NDArray[np.int64]:
    floors = np.floor(ideal)
    remainders = ideal - floors
    parts = floors.astype(np.int64)
    # int64 wrap-around in this sum is harmless: the true deficit is small, and arithmetic
    # modulo 2**64 gives it back exactly.
    deficit = pnl - parts.sum(axis=1)
    per_agent, leftover = np.divmod(deficit, ideal.shape[1])
    # Rank agents within each row, largest remainder first; the stable sort keeps ties in
    # column order, which is the deterministic tie-break.
    order = np.argsort(-remainders, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(ideal.shape[1]), order.shape), axis=1)
    parts += per_agent[:, None] + (rank < leftover[:, None])
    return parts


def _as_int64_vector(values: Any) -> NDArray[np.int64]:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"pnl_minor must be 1-D, got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"pnl_minor must hold integers (minor units), got dtype {array.dtype}")
    return array.astype(np.int64, copy=False)


def _raise_on_non_finite(values: NDArray[np.float64], label: Any) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.argmax(bad.any(axis=1)))
        col = int(np.argmax(bad[row]))
        raise ValueError(f"{label(row, col)} is {values[row, col]}: contributions must be finite")


def _check_quantum(quantum: Decimal) -> None:
    if not isinstance(quantum, Decimal) or not quantum.is_finite() or quantum <= 0:
        raise ValueError(f"quantum must be a positive finite Decimal, got {quantum!r}")

