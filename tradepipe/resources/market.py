"""[`market`] Where bars come from: the synthetic market, a replay folder, or a ccxt exchange's public OHLCV."""

from __future__ import annotations

from typing import Literal

import dagster as dg
from pydantic import PrivateAttr

from tradepipe.adapters.market import DEFAULT_EXCHANGE_TIMEOUT_S, MarketData, build_market


class MarketDataResource(dg.ConfigurableResource):
    """One market adapter per run, built on first use (a ccxt exchange object is not free to make).

    Its fields are ``build_market``'s arguments (``tradepipe.config.rules.market_arguments`` makes them from the settings)."""

    source: Literal["synthetic", "replay", "ccxt"] = "synthetic"
    seed: int = 7
    """Synthetic market: the seed of its deterministic prices."""
    symbols: list[str] = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    replay_dir: str | None = None
    """Replay market: a folder of BASE_QUOTE-TIMEFRAME.csv|.parquet files."""
    exchange_id: str = "binance"
    """ccxt market: the exchange id (public data, no key)."""
    replay_mode: Literal["wallclock", "stepped"] = "wallclock"
    replay_drop_last_bar: bool = False

    exchange_timeout_s: float = DEFAULT_EXCHANGE_TIMEOUT_S
    """ccxt market: longest wait for one HTTP request (TRADEPIPE_EXCHANGE_TIMEOUT_SECONDS)."""

    _market: MarketData | None = PrivateAttr(default=None)

    def build(self) -> MarketData:
        if self._market is None:
            self._market = build_market(
                self.source,
                seed=self.seed,
                symbols=self.symbols,
                replay_dir=self.replay_dir,
                exchange_id=self.exchange_id,
                replay_mode=self.replay_mode,
                replay_drop_last_bar=self.replay_drop_last_bar,
                exchange_timeout_s=self.exchange_timeout_s,
            )
        return self._market
