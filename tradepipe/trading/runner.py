"""Runs one trading cycle end to end. This module is the wiring; the work lives in three pieces:

* the cycle's unit of work, ``tradepipe.trading.unit_of_work.CycleUnitOfWork``: one bar in one transaction;
* the broker, ``tradepipe.trading.brokers`` (``PaperBroker`` or ``ExchangeBroker``, one protocol), whose
  exchange side keeps the ledger's orders in step with the exchange (``tradepipe.trading.order_sync``);
* the inputs from outside: bars (the market adapter), headlines, agent weights.

Shared by the Dagster ``portfolio_state`` asset (live loop) and ``tradepipe backtest`` (replay into a
separate book), so both trade through exactly the same code. The asset hands in what its resources
built; the CLI lets the runner build each piece from the settings.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from contextlib import AbstractContextManager, nullcontext
from functools import partial

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from tradepipe.adapters.db.book_lock import BookBusyError, hold_order_lock
from tradepipe.adapters.db.engine import cut_database_waits_on_signal, session_factory
from tradepipe.adapters.db.ledger import ms_to_datetime
from tradepipe.adapters.db.system_metrics import record_metrics
from tradepipe.adapters.db.health import LedgerUnavailable, ping_ledger
from tradepipe.adapters.market import MarketData, MarketDataError, build_market
from tradepipe.adapters.news import NewsFeedError, fetch_url, load_headlines
from tradepipe.adapters.weights_store import LoadedWeights, WeightStore
from tradepipe.trading.brokers import Broker, ExchangeBroker, PaperBroker
from tradepipe.core.agents import get_agents, max_history_needed
from tradepipe.core.health import cycle_metrics
from tradepipe.core.timeframes import timeframe_ms
from tradepipe.core.types import AgentContext, BarHistory, MarketRules
from tradepipe.trading.unit_of_work import CycleOutcome, CycleRequest, CycleUnitOfWork, OutOfOrderBarError, with_seconds
from tradepipe.config.rules import market_arguments, risk_limits
from tradepipe.config.settings import Settings

__all__ = [
    "BookBusyError",
    "CycleOutcome",
    "LedgerUnavailable",
    "OutOfOrderBarError",
    "TradingRunner",
    "broker_from_settings",
]

_FROM_SETTINGS = object()
log = logging.getLogger(__name__)


def broker_from_settings(settings: Settings, sessions: sessionmaker[Session], book: str) -> Broker:
    """The broker ``TRADEPIPE_BROKER`` names, with the settings' exchange keys for ccxt."""
    if settings.broker == "paper":
        return PaperBroker()
    from tradepipe.adapters.ccxt_broker import CcxtBroker

    return ExchangeBroker(CcxtBroker.from_settings(settings), sessions, book, timeframe_ms(settings.resolved_timeframe))


class TradingRunner:
    """``TradingRunner(settings, ...).run_cycle(bar_open_ms, run_id=...)``: each piece not handed in is
    built from ``settings`` (market, ledger sessions, broker, weights cache URL)."""

    def __init__(
        self,
        settings: Settings,
        *,
        market: MarketData | None = None,
        book: str | None = None,
        sessions: sessionmaker[Session] | None = None,
        broker: Broker | None = None,
        redis_url: str | None | object = _FROM_SETTINGS,
    ) -> None:
        self.settings = settings
        self.book = book or settings.book
        self.timeframe = settings.resolved_timeframe
        arguments = market_arguments(settings)
        self.market = market or build_market(arguments.pop("source"), **arguments)
        self.sessions = sessions or session_factory(settings.resolved_database_url, settings.database_timeouts)
        self.broker = broker or broker_from_settings(settings, self.sessions, self.book)
        self.agents = get_agents(settings.agents)
        self.history_bars = max(settings.history_bars, max_history_needed(self.agents) + 5)
        self.weight_store = WeightStore(
            self.sessions,
            settings.redis_url if redis_url is _FROM_SETTINGS else redis_url,  # type: ignore[arg-type]
            self.book,
            frozenset(a.name for a in self.agents),
            settings.default_weights,
            settings.home / "last_weights.json" if self.book == settings.book else None,
            redis_timeout_s=settings.redis_timeout_seconds,
            bounds=(settings.min_weight, settings.max_weight),  # a cached copy obeys the rule every publication does
        )
        self.unit_of_work = CycleUnitOfWork(
            settings,
            self.sessions,
            book=self.book,
            agents=self.agents,
            limits=risk_limits(settings),
            market_name=self.market.name,
            broker_name=self.broker.name,
        )
        self._rules: dict[str, MarketRules] = {}

    def rules(self) -> dict[str, MarketRules]:
        if not self._rules:
            self._rules = self.broker.market_rules(self.settings.symbols)
        return self._rules

    def _histories(self, bar_open_ms: int) -> tuple[dict[str, BarHistory], dict[str, str]]:
        histories: dict[str, BarHistory] = {}
        unavailable: dict[str, str] = {}
        end_ms = bar_open_ms + timeframe_ms(self.timeframe)
        for symbol in self.settings.symbols:
            try:
                histories[symbol] = self.market.closed_bars(symbol, self.timeframe, end_ms, self.history_bars)
            except MarketDataError as exc:
                unavailable[symbol] = f"market data: {exc.reason}"
        return histories, unavailable

    def _headlines(self, now_ms: int) -> tuple[AgentContext, dict[str, str]]:
        try:
            fetch = partial(fetch_url, timeout_s=self.settings.news_feed_timeout_seconds)
            headlines = load_headlines(self.settings.news_feed, now_ms, fetch=fetch)
        except NewsFeedError as exc:
            return AgentContext(now_ms=now_ms, headlines=None), {"sentiment": f"headline feed failed: {exc}"}
        return AgentContext(now_ms=now_ms, headlines=headlines), {}

    def load_weights(self) -> LoadedWeights:
        return self.weight_store.load()

    def run_cycle(self, bar_open_ms: int, run_id: str | None = None, now_ms: int | None = None) -> CycleOutcome:
        """Trade ``bar_open_ms``; ``now_ms`` is the wall clock (default: the system's): a bar after it is never traded.

        A SIGTERM or SIGINT during the cycle cuts any database wait short, so the signal's handler
        (a run being stopped) takes effect within moments even on a frozen connection."""
        with cut_database_waits_on_signal():
            return self._run_cycle(bar_open_ms, run_id, now_ms)

    def _run_cycle(self, bar_open_ms: int, run_id: str | None, now_ms: int | None) -> CycleOutcome:
        started = time.perf_counter()
        ping_ledger(self.sessions, self.settings.database_timeouts)  # a ledger down or hung: one bounded wait, one line
        weights = self.load_weights()
        retries_before = Counter(getattr(self.market, "retries", {}))
        market_started = time.perf_counter()
        histories, unavailable = self._histories(bar_open_ms)
        market_seconds = time.perf_counter() - market_started
        retries = Counter(getattr(self.market, "retries", {})) - retries_before
        context, agent_notes = self._headlines(bar_open_ms + timeframe_ms(self.timeframe))
        rules = self.rules()
        with self._order_lock():  # from the first look at the venue to the last order sent: one cycle of the book
            self.broker.reconcile_pending(bar_open_ms)
            self.broker.submit_intents(bar_open_ms)  # orders a crash kept from being sent last cycle
            fills = self.broker.report_fills(bar_open_ms)
            outcome = self.unit_of_work.execute(
                CycleRequest(
                    bar_open_ms, run_id, weights, histories, unavailable, context, agent_notes, rules, fills,
                    wall_clock_ms=int(time.time() * 1000) if now_ms is None else now_ms,
                )
            )
            if outcome.status == "traded":
                self.broker.submit_intents(bar_open_ms)
        outcome = with_seconds(outcome, time.perf_counter() - started)
        if outcome.status == "traded" and self.book == self.settings.book:  # the live book's health, not a backtest's
            self._record_health(outcome, market_seconds, unavailable, retries)
        return outcome

    def _order_lock(self) -> AbstractContextManager[None]:
        """The book's order lock when orders leave the process (a paper book's transaction lock is enough)."""
        if not self.broker.sends_orders:
            return nullcontext()
        return hold_order_lock(self.sessions, self.book, self.settings.book_lock_timeout_seconds)

    def _record_health(self, outcome: CycleOutcome, market_seconds: float, unavailable: dict[str, str], retries: Counter[str]) -> None:
        """system_metrics for the traded bar, after its commit: health data never holds up or undoes a trade."""
        metrics = cycle_metrics(
            book=self.book,
            bar=ms_to_datetime(outcome.bar_open_ms).isoformat(),
            stage_seconds={**outcome.stage_seconds, "market_data": market_seconds, "total": outcome.seconds},
            data_errors=unavailable,
            retries=retries,
            skipped=outcome.skipped,
            rejected_kinds=[r["kind"] for r in outcome.orders_rejected],
            weights_source=outcome.weights_source,
        )
        try:
            with self.sessions.begin() as session:
                record_metrics(session, ms_to_datetime(outcome.bar_open_ms), metrics)
        except SQLAlchemyError as exc:
            log.warning("system_metrics for bar %s not recorded: %s", outcome.bar_open_ms, exc)
