"""Runs one trading cycle end to end. This module is the wiring; the work lives in three pieces:

* the cycle's unit of work, ``tradepipe.cycle_unit.CycleUnitOfWork``: one bar in one transaction;
* the broker, ``tradepipe.brokers`` (``PaperBroker`` or ``ExchangeBroker``, one protocol), whose
  exchange side keeps the ledger's orders in step with the exchange (``tradepipe.order_sync``);
* the inputs from outside: bars (the market adapter), headlines, agent weights.

Shared by the Dagster ``portfolio_state`` asset (live loop) and ``tradepipe backtest`` (replay into a
separate book), so both trade through exactly the same code. The asset hands in what its resources
built; the CLI lets the runner build each piece from the settings.
"""

from __future__ import annotations

import time
from decimal import Decimal

from sqlalchemy.orm import Session, sessionmaker

from tradepipe.adapters.db.engine import session_factory
from tradepipe.adapters.market import MarketData, MarketDataError, build_market
from tradepipe.adapters.news import NewsFeedError, load_headlines
from tradepipe.adapters.weights_store import LoadedWeights, WeightStore
from tradepipe.brokers import PAPER_RULES, Broker, ExchangeBroker, PaperBroker
from tradepipe.core.agents import get_agents, max_history_needed
from tradepipe.core.risk import RiskLimits
from tradepipe.core.timeframes import timeframe_ms
from tradepipe.core.types import AgentContext, BarHistory, MarketRules
from tradepipe.cycle_unit import CycleOutcome, CycleRequest, CycleUnitOfWork, OutOfOrderBarError, with_seconds
from tradepipe.settings import Settings

__all__ = ["PAPER_RULES", "CycleOutcome", "OutOfOrderBarError", "TradingRunner", "broker_from_settings", "risk_limits"]

_FROM_SETTINGS = object()


def broker_from_settings(settings: Settings, sessions: sessionmaker[Session], book: str) -> Broker:
    """The broker ``TRADEPIPE_BROKER`` names, with the settings' exchange keys for ccxt."""
    if settings.broker == "paper":
        return PaperBroker()
    from tradepipe.adapters.broker import CcxtBroker

    return ExchangeBroker(CcxtBroker.from_settings(settings), sessions, book, timeframe_ms(settings.resolved_timeframe))


def risk_limits(settings: Settings) -> RiskLimits:
    def exact(fraction: float) -> Decimal:  # repr: 0.1 -> Decimal("0.1"), as RiskLimits itself converts floats
        return Decimal(repr(fraction))

    return RiskLimits(
        max_position_fraction=exact(settings.max_position_fraction),
        max_gross_exposure=exact(settings.max_gross_exposure),
        max_turnover_fraction=exact(settings.max_turnover_fraction),
        stop_loss_fraction=exact(settings.stop_loss_fraction),
        daily_loss_limit_fraction=exact(settings.daily_loss_limit_fraction),
        allow_short=settings.shorts_allowed,
    )


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
        self.market = market or build_market(
            settings.market_source,
            seed=settings.seed,
            symbols=settings.symbols,
            replay_dir=settings.replay_dir,
            exchange_id=settings.exchange,
        )
        self.sessions = sessions or session_factory(settings.resolved_database_url)
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
            headlines = load_headlines(self.settings.news_feed, now_ms)
        except NewsFeedError as exc:
            return AgentContext(now_ms=now_ms, headlines=None), {"sentiment": f"headline feed failed: {exc}"}
        return AgentContext(now_ms=now_ms, headlines=headlines), {}

    def load_weights(self) -> LoadedWeights:
        return self.weight_store.load()

    def run_cycle(self, bar_open_ms: int, run_id: str | None = None) -> CycleOutcome:
        started = time.perf_counter()
        weights = self.load_weights()
        histories, unavailable = self._histories(bar_open_ms)
        context, agent_notes = self._headlines(bar_open_ms + timeframe_ms(self.timeframe))
        rules = self.rules()
        self.broker.reconcile_pending(bar_open_ms)
        self.broker.submit_intents(bar_open_ms)  # orders a crash kept from being sent last cycle
        fills = self.broker.report_fills(bar_open_ms)
        outcome = self.unit_of_work.execute(
            CycleRequest(bar_open_ms, run_id, weights, histories, unavailable, context, agent_notes, rules, fills)
        )
        if outcome.status == "traded":
            self.broker.submit_intents(bar_open_ms)
        return with_seconds(outcome, time.perf_counter() - started)
