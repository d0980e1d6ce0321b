"""``tradepipe warmup``: a warm history for a first start on the synthetic market.

A fresh book has no votes, no trades and no performance, so the self-improving loop would have
nothing to decide on until the next day. On the SYNTHETIC market only (its past bars are as
available as its present ones) and only into an empty live book, the warm-up trades the last days
of bars through the very same trading cycle the sensor runs, bar by bar, into the live book. Its
cycles carry ``run_id = "warmup:<start time>"`` in ``trading_cycles``, so they stay recognisable;
the sensor then trades the next closed bar as usual.

A live start (replay or ccxt market) has no warm-up: the book starts empty and the performance and
weights assets have data after the first day of trading.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Callable

from sqlalchemy import func, select

from tradepipe.adapters.db.engine import session_factory
from tradepipe.adapters.db.models import TradingCycleRow
from tradepipe.core.timeframes import last_closed_bar_open, timeframe_ms
from tradepipe.trading.runner import CycleOutcome, TradingRunner
from tradepipe.config.settings import Settings


WARMUP_RUN_PREFIX = "warmup:"
"""The warm-up's cycles carry run ids with this prefix; the warm-up analytics sensor finds them by it."""


class WarmupSkipped(RuntimeError):
    """Nothing to warm up (not the synthetic market, or the live book already traded): not an error."""


@dataclass(frozen=True)
class WarmupSummary:
    book: str
    cycles: int
    first_bar_ms: int
    last_bar_ms: int
    equity: Decimal
    run_id: str


def warmup_run_id(now_ms: int) -> str:
    return WARMUP_RUN_PREFIX + datetime.fromtimestamp(now_ms / 1000, tz=timezone.utc).isoformat(timespec="seconds")


def warmup_bars(now_ms: int, timeframe: str, days: float) -> list[int]:
    """Open times of the closed bars of the last ``days`` before ``now_ms``, oldest first."""
    step = timeframe_ms(timeframe)
    newest = last_closed_bar_open(now_ms, timeframe)
    count = max(1, int(days * 86_400_000 // step))
    return [newest - i * step for i in range(count - 1, -1, -1)]


def run_warmup(
    settings: Settings, now_ms: int, *, days: float = 1.0, progress: Callable[[int, int], None] | None = None
) -> WarmupSummary:
    """Trade the last ``days`` of synthetic bars into the empty live book; ``progress(done, total)`` after each bar."""
    if settings.market_source != "synthetic":
        raise WarmupSkipped(f"warm-up only runs on the synthetic market (this is {settings.market_source}): a live start begins empty")
    if settings.broker != "paper":
        raise WarmupSkipped("warm-up only runs with the paper broker")
    if not 0 < days <= 30:
        raise ValueError(f"--days must be in (0, 30], got {days}")
    with session_factory(settings.resolved_database_url)() as session:
        cycles = session.scalar(select(func.count()).select_from(TradingCycleRow).where(TradingCycleRow.book == settings.book)) or 0
    if cycles:
        raise WarmupSkipped(f"book {settings.book!r} already has {cycles} trading cycles: warm-up only fills an empty live book")
    runner = TradingRunner(settings)
    run_id = warmup_run_id(now_ms)
    bars = warmup_bars(now_ms, settings.resolved_timeframe, days)
    outcome: CycleOutcome | None = None
    for index, bar in enumerate(bars):
        outcome = runner.run_cycle(bar, run_id=run_id)
        if progress:
            progress(index + 1, len(bars))
    assert outcome is not None
    return WarmupSummary(settings.book, len(bars), bars[0], bars[-1], outcome.equity, run_id)
