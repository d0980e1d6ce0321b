"""The one place where settings become what the rest of the code takes: the risk manager's limits, the
terms of the traded streams, and the market adapter's construction arguments.

The core reads no settings: it receives these objects. Each conversion is exact (fractions become
``Decimal`` through their shortest repr: 0.1 -> Decimal("0.1")).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tradepipe.config.settings import Settings
from tradepipe.core.performance import BookRules
from tradepipe.core.risk import RiskLimits


def _exact(fraction: float) -> Decimal:
    return Decimal(repr(fraction))


def risk_limits(settings: Settings, *, allow_short: bool | None = None) -> RiskLimits:
    """The risk manager's limits; ``allow_short`` overrides the settings' resolved short-selling rule."""
    return RiskLimits(
        max_position_fraction=_exact(settings.max_position_fraction),
        max_gross_exposure=_exact(settings.max_gross_exposure),
        max_turnover_fraction=_exact(settings.max_turnover_fraction),
        stop_loss_fraction=_exact(settings.stop_loss_fraction),
        daily_loss_limit_fraction=_exact(settings.daily_loss_limit_fraction),
        allow_short=settings.shorts_allowed if allow_short is None else allow_short,
    )


def book_rules(settings: Settings) -> BookRules:
    """The terms on which a book trades a signal (the per-agent traded streams and the live book alike)."""
    return BookRules(
        max_position_fraction=float(settings.max_position_fraction),
        allow_short=bool(settings.shorts_allowed),
        rebalance_band=float(settings.resolved_rebalance_band),
        fee_bps=float(settings.fee_bps),
        slippage_bps=float(settings.slippage_bps),
        stop_loss_fraction=float(settings.stop_loss_fraction),
        entry_hysteresis=float(settings.entry_hysteresis),
        min_hold_bars=int(settings.min_hold_bars),
    )


def market_arguments(settings: Settings) -> dict[str, Any]:
    """The keyword arguments of ``adapters.market.build_market``, which the ``market`` resource also takes."""
    return {
        "source": settings.market_source,
        "seed": settings.seed,
        "symbols": list(settings.symbols),
        "replay_dir": str(settings.replay_dir) if settings.replay_dir is not None else None,
        "exchange_id": settings.exchange,
        "exchange_timeout_s": settings.exchange_timeout_seconds,
    }
