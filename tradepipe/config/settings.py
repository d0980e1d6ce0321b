"""One typed settings object, read from the environment (prefix ``TRADEPIPE_``) and ``.env``.

Every variable, its default and an example are in docs/configuration.md.
A bad value stops start-up with one message naming the variable and what it accepts.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping, cast

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from tradepipe.config.ledger_settings import (
    BOOK_PATTERN, DEFAULT_BOOK, DEFAULT_HOME, ENV_PREFIX, MAX_CONNECT_TIMEOUT_S, MAX_STATEMENT_TIMEOUT_S, DatabaseTimeouts, LedgerSettings,
    database_url_problem, default_database_url,
)
from tradepipe.core.timeframes import timeframe_ms

DEFAULT_AGENTS = ("momentum", "trend", "mean_reversion", "breakout", "sentiment")
_SYMBOL = re.compile(r"^[A-Z0-9]{2,15}/[A-Z0-9]{2,10}$")
WEIGHT_SUM_TOLERANCE = 1e-6  # static weights must sum to 1 within this


class SettingsError(ValueError):
    """A configuration value is missing or malformed; the message names the variable."""


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", extra="ignore", frozen=True,
        # nan and inf are refused for every number: a nan bound or cash passes every comparison it meets
        allow_inf_nan=False,
    )

    home: Path = DEFAULT_HOME
    database_url: str | None = None
    redis_url: str | None = None

    market_source: Literal["synthetic", "replay", "ccxt"] = "synthetic"
    replay_dir: Path | None = None
    exchange: str = "binance"
    symbols: Annotated[list[str], NoDecode] = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    timeframe: str | None = None
    seed: int = Field(default=7, ge=0, le=2**32 - 1)  # numpy's seeds
    history_bars: int = Field(default=200, ge=50, le=5000)

    broker: Literal["paper", "ccxt"] = "paper"
    live: bool = False
    book: str = Field(default=DEFAULT_BOOK, pattern=BOOK_PATTERN)
    exchange_api_key: SecretStr | None = None
    exchange_secret: SecretStr | None = None

    # at most 10^15: equity is also analysed as a float, exact to the cent only below about 10^13
    starting_cash: Decimal = Field(default=Decimal("10000"), gt=0, le=Decimal("1e15"))
    quote_currency: str = Field(default="USDT", pattern=r"^[A-Z0-9]{2,10}$")
    fee_bps: Decimal = Field(default=Decimal("10"), ge=0, le=1000)
    slippage_bps: Decimal = Field(default=Decimal("5"), ge=0, le=1000)

    max_position_fraction: float = Field(default=0.25, gt=0, le=1)
    max_gross_exposure: float = Field(default=1.0, gt=0, le=1)
    max_turnover_fraction: float = Field(default=0.5, gt=0, le=2)
    stop_loss_fraction: float = Field(default=0.05, gt=0, lt=1)
    daily_loss_limit_fraction: float = Field(default=0.03, gt=0, lt=1)
    # 0.05 on real prices by walk-forward evidence (docs/research.md); 0.02 on the synthetic demo market (_default_band)
    rebalance_band: float | None = Field(default=None, ge=0, lt=1)  # unset: resolved_rebalance_band
    allow_short: bool | None = None

    agents: Annotated[list[str], NoDecode] = list(DEFAULT_AGENTS)
    agent_weights: Annotated[dict[str, float], NoDecode] = {}
    news_feed: str | None = None

    performance_window_days: int = Field(default=30, ge=1, le=365)
    partitions_start: date = date(2025, 1, 1)
    optimizer_method: Literal["max_sharpe", "risk_parity", "equal_weight", "hedge"] = "hedge"  # by walk-forward evidence (docs/research.md)
    min_weight: float = Field(default=0.05, ge=0, lt=1)
    max_weight: float = Field(default=0.40, gt=0, le=1)
    min_signals: int = Field(default=10, ge=0)
    min_sharpe: float = 0.3
    risk_free_rate: float = Field(default=0.0, ge=0, lt=1)

    # turnover controls and the noisy-estimate weighting, defaults from walk-forward evidence.
    entry_hysteresis: float = Field(default=0.0, ge=0, lt=1)
    min_hold_bars: int = Field(default=0, ge=0, le=10_000)
    hedge_learning_rate: float = Field(default=0.25, ge=0, le=10)
    min_metric_returns: int = Field(default=20, ge=2, le=100_000)
    # Bars shorter than a day: risk-adjusted figures on daily returns, null until this many days (core.metrics);
    # 0 turns the daily rule off (per-bar figures annualised, as before it existed).
    min_metric_days: int = Field(default=14, ge=0, le=3650)

    sensor_interval_seconds: int = Field(default=30, ge=1, le=3600)

    # --- bounded waits on everything outside the process, and the one-writer-per-book lock
    database_connect_timeout_seconds: float = Field(default=DatabaseTimeouts.connect_s, gt=0, le=MAX_CONNECT_TIMEOUT_S)
    database_statement_timeout_seconds: float = Field(default=DatabaseTimeouts.statement_s, gt=0, le=MAX_STATEMENT_TIMEOUT_S)
    book_lock_timeout_seconds: float = Field(default=30, gt=0, le=3600)
    redis_timeout_seconds: float = Field(default=0.5, gt=0, le=60)
    exchange_timeout_seconds: float = Field(default=10, gt=0, le=300)
    news_feed_timeout_seconds: float = Field(default=10, gt=0, le=300)

    # --- scheduled deployment. How often today's performance is refreshed (UTC cron); the
    # deployment test sets "* * * * *" to see the schedule launch a partitioned run within a minute.
    performance_intraday_cron: str = "0 */6 * * *"

    # the walk_forward_sweep asset's experiments (one static partition per combination)
    walkforward_data_root: Path | None = None
    walkforward_datasets: Annotated[list[str], NoDecode] = ["binance_cdd_2017_2021"]
    walkforward_sweep_methods: Annotated[list[str], NoDecode] = ["max_sharpe", "risk_parity", "equal_weight", "hedge"]
    walkforward_sweep_windows: Annotated[list[int], NoDecode] = [14, 30, 60]

    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    report_recipients: Annotated[list[str], NoDecode] = []
    # sender address, implicit TLS override (default: by port, 465),
    # a CA bundle for a relay with its own certificate authority, and the SMTP timeout.
    smtp_sender: str | None = None
    smtp_implicit_tls: bool | None = None
    smtp_ca_file: Path | None = None
    smtp_timeout_seconds: float = Field(default=20.0, gt=0, le=300)

    # alerts to a generic JSON webhook (the URL is a secret), and when a weight set is stale
    webhook_url: SecretStr | None = None
    stale_weights_hours: float = Field(default=36.0, gt=0, le=24 * 30)
    # `tradepipe control serve`: the HTTP control endpoint is off unless this bearer token is set
    control_token: SecretStr | None = None

    @field_validator("min_metric_days")
    @classmethod
    def _check_min_metric_days(cls, value: int) -> int:
        if value == 1:
            raise ValueError("must be 0 (daily rule off) or at least 2 (a standard deviation needs two days)")
        return value

    @field_validator("performance_intraday_cron")
    @classmethod
    def _check_cron(cls, value: str) -> str:
        if value == cls.model_fields["performance_intraday_cron"].default:
            return value  # the default is valid: every command would otherwise import Dagster (seconds) to check it
        from dagster._utils.schedules import is_valid_cron_string

        if not is_valid_cron_string(value):
            raise ValueError(f"could not parse {value!r}: expected a five-field cron string, e.g. 0 */6 * * *")
        return value

    @field_validator("symbols", "agents", "report_recipients", "walkforward_datasets", "walkforward_sweep_methods", "walkforward_sweep_windows", mode="before")
    @classmethod
    def _parse_list(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("symbols")
    @classmethod
    def _check_symbols(cls, symbols: list[str]) -> list[str]:
        bad = [s for s in symbols if not _SYMBOL.match(s)]
        if bad or not symbols:
            raise ValueError(
                f"could not parse {bad or 'an empty list'}: expected a comma-separated list of "
                "BASE/QUOTE pairs in capitals, e.g. BTC/USDT,ETH/USDT"
            )
        return symbols

    @field_validator("agents")
    @classmethod
    def _check_agents(cls, agents: list[str]) -> list[str]:
        if not agents:
            raise ValueError("could not use an empty list: name at least one agent, e.g. momentum,trend (unset: all five)")
        return agents

    @field_validator("agent_weights", mode="before")
    @classmethod
    def _parse_weights(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        weights: dict[str, float] = {}
        for item in cast(list[str], _split_csv(value)):
            name, sep, number = item.partition("=")
            if not sep:
                raise ValueError(f"could not parse {item!r}: expected agent=weight pairs, e.g. momentum=0.3,trend=0.7")
            try:
                weights[name.strip()] = float(number)
            except ValueError:
                raise ValueError(f"could not parse {item!r}: expected agent=weight pairs, e.g. momentum=0.3,trend=0.7") from None
        return weights

    # strict safety settings. TRADEPIPE_LIVE is exactly 0 or 1 ("yes", "true", "on" are
    # refused: a typo must never switch real money on); static weights must sum to 1 (refused, not
    # normalised: "momentum=2" would otherwise silently give every other agent weight 0).
    @field_validator("live", mode="before")
    @classmethod
    def _check_live(cls, value: object) -> object:
        if isinstance(value, bool):
            return value
        if value in (0, 1) or (isinstance(value, str) and value.strip() in ("0", "1")):
            return str(value).strip() == "1"
        raise ValueError("expected exactly 0 (paper or exchange testnet) or 1 (real money)")

    @field_validator("timeframe")
    @classmethod
    def _check_timeframe(cls, value: str | None) -> str | None:
        if value is not None:
            timeframe_ms(value)
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        problem = database_url_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not re.match(r"^rediss?://[^/\s]+(/\d+)?$", value):
            raise ValueError("malformed Redis URL: expected redis://host:6379/0 (or rediss:// for TLS)")
        return value

    @model_validator(mode="after")
    def _check_consistency(self) -> "Settings":
        if self.market_source == "replay" and self.replay_dir is None:
            raise ValueError("TRADEPIPE_REPLAY_DIR must be set when TRADEPIPE_MARKET_SOURCE=replay")
        if self.min_weight > self.max_weight:
            raise ValueError("TRADEPIPE_MIN_WEIGHT must not exceed TRADEPIPE_MAX_WEIGHT")
        agents = len(set(self.agents))
        if agents * self.min_weight > 1 + WEIGHT_SUM_TOLERANCE:
            raise ValueError(
                f"TRADEPIPE_MIN_WEIGHT={self.min_weight:g} x {agents} agents (TRADEPIPE_AGENTS) = {agents * self.min_weight:g} > 1: "
                f"no weight set can give every agent its minimum; lower it to at most {1 / agents:.4g} or enable fewer agents"
            )
        foreign = [symbol for symbol in self.symbols if symbol.split("/")[1] != self.quote_currency]
        if foreign:
            raise ValueError(
                f"TRADEPIPE_SYMBOLS {', '.join(foreign)} not quoted in TRADEPIPE_QUOTE_CURRENCY={self.quote_currency}: the book's cash "
                f"is {self.quote_currency}, so every symbol must be BASE/{self.quote_currency} (or change TRADEPIPE_QUOTE_CURRENCY)"
            )
        unknown = sorted(set(self.agent_weights) - set(self.agents))
        if unknown:
            raise ValueError(f"TRADEPIPE_AGENT_WEIGHTS names agents that are not enabled: {unknown}")
        if self.agent_weights and not (all(0 <= w < float("inf") for w in self.agent_weights.values()) and sum(self.agent_weights.values()) > 0):
            raise ValueError("TRADEPIPE_AGENT_WEIGHTS must be finite, non-negative numbers with a positive sum, e.g. momentum=0.3,trend=0.7")
        if self.agent_weights and abs(sum(self.agent_weights.values()) - 1.0) > WEIGHT_SUM_TOLERANCE:
            raise ValueError(
                f"TRADEPIPE_AGENT_WEIGHTS sum to {sum(self.agent_weights.values()):g}, not 1: give every weight explicitly, "
                "e.g. momentum=0.3,trend=0.7 (agents left out get 0)"
            )
        if self.live and self.broker == "paper":
            raise ValueError("TRADEPIPE_LIVE=1 needs TRADEPIPE_BROKER=ccxt: the paper broker never trades real money, so LIVE=1 is refused rather than ignored")
        if self.broker == "ccxt" and self.allow_short:
            raise ValueError("TRADEPIPE_ALLOW_SHORT=1 is for paper trading only: the ccxt broker trades spot, long-only")
        if self.broker == "ccxt" and self.market_source == "synthetic":
            raise ValueError("TRADEPIPE_BROKER=ccxt needs real prices: set TRADEPIPE_MARKET_SOURCE=ccxt")
        if self.live and self.market_source != "ccxt":
            raise ValueError(
                f"TRADEPIPE_LIVE=1 with TRADEPIPE_MARKET_SOURCE={self.market_source}: real-money orders must be decided on the "
                "exchange's own current prices, never on recorded candles; set TRADEPIPE_MARKET_SOURCE=ccxt or TRADEPIPE_LIVE=0"
            )
        return self

    @cached_property
    def resolved_database_url(self) -> str:
        return self.database_url or default_database_url(self.home)

    @property
    def database_timeouts(self) -> DatabaseTimeouts:
        """The ledger's connect and statement bounds, as the database adapter takes them."""
        return DatabaseTimeouts(self.database_connect_timeout_seconds, self.database_statement_timeout_seconds)

    @property
    def ledger(self) -> LedgerSettings:
        """Where the ledger is, as the light reader of ``ledger_settings`` gives it."""
        return LedgerSettings(self.home, self.database_url, self.book, self.database_timeouts)

    @property
    def resolved_timeframe(self) -> str:
        """1 minute on the synthetic market, so a new user sees trades within minutes; 1h elsewhere."""
        if self.timeframe:
            return self.timeframe
        return "1m" if self.market_source == "synthetic" else "1h"

    @property
    def default_weights(self) -> dict[str, float]:
        """Static weights used until the optimiser publishes: the configured ones, else equal."""
        if self.agent_weights:
            total = sum(self.agent_weights.get(a, 0.0) for a in self.agents)
            return {a: self.agent_weights.get(a, 0.0) / total for a in self.agents}
        return {a: 1.0 / len(self.agents) for a in self.agents}

    @property
    def resolved_rebalance_band(self) -> float:
        """a 0.05 band halves the fees on real candles (docs/research.md, walk-forward evidence), but on the
        synthetic demo market an equal-weight book then rarely trades in its first hour; there it is 0.02.
        Resolved from the market source, so a settings copy for a replay (walk-forward) gets 0.05."""
        if self.rebalance_band is not None:
            return self.rebalance_band
        return 0.02 if self.market_source == "synthetic" else 0.05

    @property
    def shorts_allowed(self) -> bool:
        """Paper on the synthetic market may go short (it has no spot constraints, and a long-only demo
        sits flat through every synthetic downtrend); anything that mirrors a spot account is long-only."""
        if self.allow_short is not None:
            return self.allow_short
        return self.market_source == "synthetic" and self.broker == "paper"

    @property
    def real_money(self) -> bool:
        """True only when orders can reach a real-money account: ccxt broker and TRADEPIPE_LIVE=1."""
        return self.broker == "ccxt" and self.live


def _describe(error: Mapping[str, Any]) -> str:
    location = error.get("loc") or ()
    field = str(location[0]) if location else ""
    variable = ENV_PREFIX + field.upper() if field else "configuration"
    message = error.get("msg", "invalid value").removeprefix("Value error, ")
    given = error.get("input")
    # URLs may carry credentials and secrets must never reach a log, so their values are not echoed.
    hidden = field.endswith(("password", "secret", "api_key", "_url"))
    shown = "" if hidden or isinstance(given, dict) else f"={given!r}"
    if not field:
        return message
    return f"{variable}{shown}: {message}"


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment; raise SettingsError with one readable line per problem."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = [_describe(err) for err in exc.errors()]
        if len(lines) == 1:  # one problem, one line
            raise SettingsError(f"invalid tradepipe configuration: {lines[0]}") from None
        raise SettingsError("invalid tradepipe configuration:\n  " + "\n  ".join(lines)) from None


# --- the Dagster layer receives the settings through resources --------------------------
# Secrets never travel in a resource's configuration: the broker and mail resources take them as
# dg.EnvVar, so the settings a resource carries leave these out.
SECRET_FIELDS = frozenset({"exchange_api_key", "exchange_secret", "smtp_password", "webhook_url", "control_token"})


class _ValuesOnlySettings(Settings):
    """Settings validated from given values alone: no environment, no .env (the values were read once already)."""

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings):  # type: ignore[no-untyped-def, override]
        return (init_settings,)


def settings_from_values(**values: object) -> Settings:
    """A ``Settings`` from explicit values, validated like ``load_settings`` but reading no environment."""
    try:
        return _ValuesOnlySettings(**values)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = [_describe(err) for err in exc.errors()]
        raise SettingsError("invalid tradepipe configuration:\n  " + "\n  ".join(lines)) from None
