"""``tradepipe backtest``: the live trading cycle, bar by bar over recorded candles, into its own book.

The bars run on the walk-forward engine (``run_walk_forward``, proven equal order for order to the live
runner) with the weights in force at the start, and each cycle's ledger rows (the live unit of work's,
from the same builders) are written with SQLAlchemy Core, a batch of cycles per statement and per
transaction: ``trades``, ``profit`` and ``plot`` read the book as they read a live one.
``through="runner"`` keeps the live runner's bar-per-transaction replay.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Callable, Literal

import numpy as np

from tradepipe.adapters.db.engine import session_factory
from tradepipe.adapters.db.ledger_batch import CycleBatch
from tradepipe.adapters.db.ledger import (
    BACKTEST_RUN_PREFIX,
    book_has_cycles,
    count_fills,
    delete_book,
    ensure_book,
    live_cycle_count,
    ms_to_datetime,
)
from tradepipe.adapters.market import ReplayMarket
from tradepipe.config.settings import Settings
from tradepipe.core.agents import get_agents, max_history_needed
from tradepipe.core.cycle import CycleInputs, CycleResult
from tradepipe.research.data import load_market
from tradepipe.research.engine import Progress, StrategySpec, config_from_settings, run_walk_forward
from tradepipe.research.signals import SignalMode
from tradepipe.trading.runner import CycleOutcome, TradingRunner
from tradepipe.trading.unit_of_work import batch_cycle


class BookInUseError(RuntimeError):
    pass


@dataclass(frozen=True)
class BacktestSummary:
    book: str
    cycles: int
    first_bar_ms: int
    last_bar_ms: int
    starting_cash: Decimal
    final_equity: Decimal
    fills: int
    skipped_cycles: int


def reset_book(settings: Settings, book: str) -> None:
    """Remove every ledger row of ``book`` (never the live book by accident: the caller names it)."""
    with session_factory(settings.resolved_database_url).begin() as session:
        delete_book(session, book)


def _book_has_cycles(settings: Settings, book: str) -> bool:
    with session_factory(settings.resolved_database_url)() as session:
        return book_has_cycles(session, book)


def check_reset(settings: Settings, book: str, reset: bool, reset_live_book: str | None) -> None:
    """Refuse to replace ``book`` unless asked to; a book holding live cycles only when ``reset_live_book`` names it.

    A reset deletes every row of the book: the name typed after ``--book`` alone must never be enough
    to delete a live book's history (a typo, a copied command line)."""
    if reset_live_book is not None and reset_live_book != book:
        raise BookInUseError(f"--reset-live-book names {reset_live_book!r}, not the book {book!r} being replaced")
    with session_factory(settings.resolved_database_url)() as session:
        live = live_cycle_count(session, book)
    if live and reset_live_book != book:
        raise BookInUseError(
            f"book {book!r} holds {live} live (non-backtest) cycles; a backtest would delete them: "
            f"choose another --book, or pass --reset-live-book {book} to delete that book anyway"
        )
    if not (reset or reset_live_book == book):
        raise BookInUseError(f"book {book!r} already holds a backtest: pass --reset to replace it")


def run_backtest(
    settings: Settings,
    replay_dir: Path,
    book: str,
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
    drop_last_bar: bool = True,
    reset: bool = False,
    reset_live_book: str | None = None,
    progress: Callable[[CycleOutcome], None] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    progress_every_s: float = 2.0,
    through: Literal["engine", "runner"] = "engine",
    signal_mode: SignalMode = "fast",
) -> BacktestSummary:
    """Trade every closed bar of the replay files (after the agents' warm-up) into ``book``.

    The newest bar of an exchange dump is usually unfinished, so it is dropped by default. An existing
    ``book`` is replaced only with ``reset``, and one holding live cycles only if ``reset_live_book`` names it.
    ``through="engine"`` (default): the walk-forward engine trades the book with the weights in force
    at the start (fixed), and every cycle's rows (those the live unit of work writes) are written
    ``_COMMIT_EVERY`` cycles per statement per table and per transaction. ``through="runner"``: the
    live runner, one transaction per bar (the reference the engine is proven equal to; ``progress``
    sees each cycle's outcome).
    ``signal_mode="per_bar"`` calls each agent on each bar, so the signal rows carry the agents' own
    reasons; the fast path's votes are equal, its reasons say it was the fast path.
    """
    if book == settings.book:
        raise BookInUseError(f"book {book!r} is the live book (TRADEPIPE_BOOK): choose another name for a backtest")
    if _book_has_cycles(settings, book):
        check_reset(settings, book, reset, reset_live_book)
        reset_book(settings, book)
    market = ReplayMarket(replay_dir, mode="stepped", drop_last_bar=drop_last_bar)
    timeframe = settings.resolved_timeframe
    runner = TradingRunner(settings, market=market, book=book)
    timeline = _common_timeline(market, settings.symbols, timeframe)
    warmup = max_history_needed(get_agents(settings.agents))
    bars = timeline[warmup:]
    if start_ms is not None:
        bars = bars[bars >= start_ms]
    if end_ms is not None:
        bars = bars[bars <= end_ms]
    if bars.size == 0:
        first, last_bar = _iso(int(timeline[0])), _iso(int(timeline[-1]))
        raise ValueError(f"no bars to trade in the chosen range after the agents' {warmup}-bar warm-up (the files cover {first} .. {last_bar})")
    if through == "engine":
        return _run_on_engine(settings, runner, replay_dir, book, bars, drop_last_bar, signal_mode, on_progress, progress_every_s)
    skipped = 0
    last: CycleOutcome | None = None
    started = reported = time.perf_counter()
    for done, bar in enumerate(bars.tolist(), start=1):
        last = runner.run_cycle(int(bar), run_id=f"{BACKTEST_RUN_PREFIX}{book}")
        skipped += bool(last.skipped)
        if progress:
            progress(last)
        now = time.perf_counter()
        if on_progress and (now - reported >= progress_every_s or done == bars.size):
            on_progress(Progress(done, int(bars.size), now - started))
            reported = now
    assert last is not None
    with session_factory(settings.resolved_database_url)() as session:
        fills = count_fills(session, book)
    return BacktestSummary(book, int(bars.size), int(bars[0]), int(bars[-1]), settings.starting_cash, last.equity, fills, skipped)


# Cycles per batch of ledger writes, each batch committed: bounds what an interrupted backtest leaves
# (rerun it with --reset) and the rows held in memory (fewer live objects for Python's garbage collector
# to walk), while the per-statement and per-commit costs stay negligible.
_COMMIT_EVERY = 500


def _run_on_engine(
    settings: Settings,
    runner: TradingRunner,
    replay_dir: Path,
    book: str,
    bars: np.ndarray,
    drop_last_bar: bool,
    signal_mode: SignalMode,
    on_progress: Callable[[Progress], None] | None,
    progress_every_s: float,
) -> BacktestSummary:
    """The backtest's bars through ``run_walk_forward`` (one fixed-weight book), each cycle's rows (those
    the live unit of work writes) gathered by ``unit_of_work.batch_cycle`` and written a batch at a time."""
    weights = runner.load_weights()
    config = replace(config_from_settings(settings), book=book)
    market = load_market(replay_dir, config.symbols, config.timeframe, drop_last_bar=drop_last_bar)
    run_id = f"{BACKTEST_RUN_PREFIX}{book}"
    version = weights.version
    cycle_values = {
        "book": book, "timeframe": config.timeframe, "market_source": runner.market.name, "run_id": run_id,
        "weights": weights.weights, "weights_source": weights.source,
        "weight_history_id": version.weight_history_id if version else None,
        "weights_published_at": datetime.fromisoformat(version.published_at) if version and version.published_at else None,
    }
    sessions = session_factory(settings.resolved_database_url)
    session = sessions()
    written = {"cycles": 0, "skipped": 0}
    equity = [settings.starting_cash]
    try:
        book_row = ensure_book(session, book, settings.starting_cash, settings.quote_currency)
        session.commit()
        batch = CycleBatch(session, book, broker=runner.broker.name)

        def write(key: str, inputs: CycleInputs, result: CycleResult) -> None:
            if not len(batch):
                # What is alive when a batch starts (the engine's data and caches, the book's records so
                # far) lives to the end. Each batch's rows trigger full garbage collections that would walk
                # all of it again (a third of a 4-year backtest's CPU): set it aside until the end, so a
                # collection walks only the batch being gathered.
                gc.freeze()
            batch_cycle(
                batch, book_row, {**cycle_values, "bar_ts": ms_to_datetime(inputs.bar_open_ms)}, result,
                bar_open_ms=inputs.bar_open_ms, histories=inputs.histories, day_start_equity=inputs.day_start_equity,
                was_halted=inputs.halted, market_name=runner.market.name, weight_notes=weights.notes,
                as_of_ms=inputs.bar_open_ms + inputs.timeframe_ms,
            )
            written["cycles"] += 1
            written["skipped"] += bool(result.skipped)
            equity[0] = result.valuation.equity
            if len(batch) >= _COMMIT_EVERY:
                batch.write()
                session.commit()

        run_walk_forward(
            market, config, [StrategySpec(book, weights.weights)], start_ms=int(bars[0]), end_ms=int(bars[-1]),
            signal_mode=signal_mode, on_cycle=write, progress=on_progress, progress_every_s=progress_every_s,
        )
        batch.write()
        session.commit()
        fills = count_fills(session, book)
    finally:
        gc.unfreeze()
        session.close()
    return BacktestSummary(book, written["cycles"], int(bars[0]), int(bars[-1]), settings.starting_cash, equity[0], fills, written["skipped"])


def _common_timeline(market: ReplayMarket, symbols: list[str], timeframe: str) -> np.ndarray:
    """Bars present for at least one symbol; a symbol missing a bar is skipped for that cycle."""
    timelines = [market.timeline(symbol, timeframe) for symbol in symbols]
    return np.unique(np.concatenate(timelines))


def _iso(ms: int) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%MZ")
