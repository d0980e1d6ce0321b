"""[`broker`] Where orders go: the paper simulator or a ccxt exchange (testnet unless ``live``).

The API key and secret are ``dg.EnvVar``s (TRADEPIPE_EXCHANGE_API_KEY, TRADEPIPE_EXCHANGE_SECRET): the
Resources page and the run config show the variable's name, never its value, and ``repr`` leaves them out.
"""

from __future__ import annotations

from typing import Literal

import dagster as dg
from pydantic import Field


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
