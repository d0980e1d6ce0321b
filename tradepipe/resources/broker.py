"""[`broker`] Where orders go: the paper simulator or a ccxt exchange (testnet unless ``live``).

The API key and secret are ``dg.EnvVar``s (TRADEPIPE_EXCHANGE_API_KEY, TRADEPIPE_EXCHANGE_SECRET): the
Resources page and the run config show the variable's name, never its value, and ``repr`` leaves them out.
"""

from __future__ import annotations

from typing import Literal

import dagster as dg
from pydantic import Field
from sqlalchemy.orm import Session, sessionmaker

from tradepipe.adapters.market import DEFAULT_EXCHANGE_TIMEOUT_S
from tradepipe.trading.brokers import Broker, ExchangeBroker, PaperBroker
from tradepipe.core.timeframes import timeframe_ms


class BrokerResource(dg.ConfigurableResource):
    kind: Literal["paper", "ccxt"] = "paper"
    exchange: str = "binance"
    """ccxt broker: the exchange id."""
    live: bool = False
    """ccxt broker: real-money orders (TRADEPIPE_LIVE=1); otherwise the exchange's testnet or a refusal."""
    api_key: str | None = Field(default=None, repr=False)
    secret: str | None = Field(default=None, repr=False)
    max_retries: int = 3
    """ccxt broker: resends of an ambiguously failed order (each after a look-up by client order id)."""
    backoff_s: float = 1.0
    timeout_seconds: float = DEFAULT_EXCHANGE_TIMEOUT_S
    """ccxt broker: longest wait for one HTTP request (TRADEPIPE_EXCHANGE_TIMEOUT_SECONDS)."""

    def build(self, sessions: sessionmaker[Session], book: str, timeframe: str) -> Broker:
        """The broker the trading cycle of ``book`` sends its orders through."""
        if self.kind == "paper":
            return PaperBroker()
        from tradepipe.adapters.ccxt_broker import CcxtBroker

        exchange = CcxtBroker.connect(
            self.exchange, self.api_key, self.secret, live=self.live, max_retries=self.max_retries, backoff_s=self.backoff_s,
            timeout_s=self.timeout_seconds,
        )
        return ExchangeBroker(exchange, sessions, book, timeframe_ms(timeframe))
