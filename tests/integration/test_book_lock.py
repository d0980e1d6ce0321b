"""One writer per book, on SQLite and PostgreSQL: two cycles of one book never interleave.

The probe that found the bug launched the cycles of two consecutive bars at the same moment; without
a lock both loaded the book before either wrote, and the stored cash and positions no longer matched
a replay of the fills (or the earlier bar traded on the later bar's state). Here two real processes,
released together by a barrier, each call the cycle entry point (``TradingRunner.run_cycle``) on the
same book, ten trials per database; after each: the cycles were serialised (ids in bar order), the
book's snapshots chain (each one's cash is the previous one's plus its own fills), equity is cash
plus quantity x mark on every snapshot, and the stored positions equal the fills replayed.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
from typing import Any, Iterator

import pytest
from sqlalchemy import select

from tests.integration.ledger_checks import assert_book_is_a_replay_of_its_fills
from tradepipe.adapters.db.book_lock import BookBusyError, hold_book_lock
from tradepipe.adapters.db.engine import session_factory
from tradepipe.adapters.db.ledger import ms_to_datetime
from tradepipe.adapters.db.models import OrderRow, TradingCycleRow
from tradepipe.trading.runner import OutOfOrderBarError, TradingRunner
from tradepipe.config.settings import load_settings

M = 60_000
BAR0 = 1_700_000_040_000  # a 1m bar on the synthetic market
TRIALS = 10


def _worker(overrides: dict[str, Any], barrier: Any, tasks: Any, results: Any) -> None:
    """A separate process: for each (book, bar) task, wait for the other worker, then run the cycle."""
    settings = load_settings(**overrides)
    while True:
        task = tasks.get()
        if task is None:
            return
        book, bar = task
        runner = TradingRunner(settings, book=book)
        runner.rules()  # everything but the cycle itself is ready before the release
        barrier.wait()
        try:
            outcome = runner.run_cycle(bar)
            results.put((book, bar, outcome.status, time.monotonic()))
        except OutOfOrderBarError as error:
            results.put((book, bar, f"out_of_order: {error}", time.monotonic()))
        except Exception as error:  # reported to the test, which fails on anything unexpected
            results.put((book, bar, f"error: {type(error).__name__}: {error}", time.monotonic()))


class Workers:
    def __init__(self, overrides: dict[str, Any]) -> None:
        context = multiprocessing.get_context("spawn")  # no engine or pooled connection inherited
        self.barrier = context.Barrier(2)
        self.tasks = [context.Queue(), context.Queue()]
        self.results = context.Queue()
        self.processes = [
            context.Process(target=_worker, args=(overrides, self.barrier, tasks, self.results), daemon=True)
            for tasks in self.tasks
        ]
        for process in self.processes:
            process.start()

    def run_together(self, first: tuple[str, int], second: tuple[str, int]) -> dict[int, str]:
        self.tasks[0].put(first)
        self.tasks[1].put(second)
        outcomes: dict[int, str] = {}
        for _ in range(2):
            try:
                _book, bar, status, _when = self.results.get(timeout=120)
            except queue.Empty:
                pytest.fail("a cycle did not finish within 120 s")
            outcomes[bar] = status
        return outcomes

    def stop(self) -> None:
        for tasks in self.tasks:
            tasks.put(None)
        for process in self.processes:
            process.join(timeout=20)
            if process.is_alive():
                process.kill()


@pytest.fixture
def workers(migrated_url: str) -> Iterator[tuple[str, Workers]]:
    overrides = {"database_url": migrated_url, "max_position_fraction": 0.5}
    pool = Workers(overrides)
    try:
        yield migrated_url, pool
    finally:
        pool.stop()


def test_two_cycles_of_one_book_launched_at_once_never_interleave(workers: tuple[str, Workers]) -> None:
    url, pool = workers
    seen: dict[str, int] = {}
    for trial in range(TRIALS):  # consecutive bars
        book = f"race-{trial}"
        bar = BAR0 + trial * 10 * M
        # The bar before: orders pending, so the earlier of the racing bars has fills to make.
        assert TradingRunner(load_settings(database_url=url, max_position_fraction=0.5), book=book).run_cycle(bar - M).status == "traded"
        outcomes = pool.run_together((book, bar), (book, bar + M))
        later = outcomes[bar + M]
        earlier = outcomes[bar]
        assert later == "traded", outcomes
        # Either the earlier bar went first (both trade) or it came second and was refused: never both in the wrong order.
        assert earlier == "traded" or earlier.startswith("out_of_order: "), outcomes
        seen[earlier.split(":")[0]] = seen.get(earlier.split(":")[0], 0) + 1
        assert_book_is_a_replay_of_its_fills(url, book)
        with session_factory(url)() as session:
            traded = set(session.scalars(select(TradingCycleRow.bar_ts).where(TradingCycleRow.book == book)))
        assert traded == ({ms_to_datetime(bar - M), ms_to_datetime(bar), ms_to_datetime(bar + M)} if earlier == "traded"
                          else {ms_to_datetime(bar - M), ms_to_datetime(bar + M)})
    print(f"\n{TRIALS} trials of consecutive bars at once: {seen}")

    for trial in range(3):  # the same bar twice (the probe that was already safe stays so under the lock)
        book, bar = f"twice-{trial}", BAR0 + trial * 10 * M
        statuses = _same_bar_twice(pool, book, bar)
        assert statuses == ["already_done", "traded"]
        assert_book_is_a_replay_of_its_fills(url, book)
        with session_factory(url)() as session:
            orders = list(session.scalars(select(OrderRow.client_order_id).where(OrderRow.book == book)))
        assert len(orders) == len(set(orders))


def _same_bar_twice(pool: Workers, book: str, bar: int) -> list[str]:
    pool.tasks[0].put((book, bar))
    pool.tasks[1].put((book, bar))
    return sorted(pool.results.get(timeout=120)[2] for _ in range(2))


def test_a_second_writer_waits_the_bounded_time_then_fails_clearly(migrated_url: str) -> None:
    settings = load_settings(database_url=migrated_url, book_lock_timeout_seconds=1)
    runner = TradingRunner(settings, book="held")
    with session_factory(migrated_url)() as holder:
        hold_book_lock(holder, "held", 5)  # another cycle's transaction, still open
        started = time.perf_counter()
        with pytest.raises(BookBusyError, match=r"book 'held' is being written by another .*; waited 1 s \(TRADEPIPE_BOOK_LOCK"):
            runner.run_cycle(BAR0)
        waited = time.perf_counter() - started
        holder.rollback()
    assert 0.9 < waited < 4
    with session_factory(migrated_url)() as session:
        assert session.scalars(select(TradingCycleRow).where(TradingCycleRow.book == "held")).first() is None
    assert runner.run_cycle(BAR0).status == "traded"  # once the lock is free the same cycle goes through


def test_books_do_not_wait_for_each_other_on_postgres(postgres_url: str) -> None:
    from tradepipe.adapters.db.engine import upgrade

    upgrade(postgres_url)
    settings = load_settings(database_url=postgres_url, book_lock_timeout_seconds=1)
    with session_factory(postgres_url)() as holder:
        hold_book_lock(holder, "one", 5)
        assert TradingRunner(settings, book="two").run_cycle(BAR0).status == "traded"
        holder.rollback()
