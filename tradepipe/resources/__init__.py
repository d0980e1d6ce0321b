"""Every system outside the process that the Dagster layer talks to, as a resource, built in one place.

``build_resources(settings)`` is what ``tradepipe.definitions`` hands to ``dg.Definitions``; the keys
are ``ledger``, ``market``, ``broker``, ``weights_cache``, ``trading``, ``clock`` and ``mail``. The settings object stays
the single typed reading of ``TRADEPIPE_*``; the resources are how assets, checks, sensors and ops
receive it. As in Dagster's showcase project (hooli-data-eng-pipelines: one resource set per
environment, picked when the code location loads), there is one set per environment:

* ``local`` (``make run``, SQLite under TRADEPIPE_HOME): values shown on the Resources page as they
  are, except a URL carrying a password, which is shown as its variable (``dg.EnvVar``);
* ``deployment`` (PostgreSQL): the database and Redis URLs are ``dg.EnvVar``s whenever they come from
  the environment, so the UI shows where the deployment reads them, never a credential;
* ``test``: plain values only (no environment variable needed), for ``dg.materialize(..., resources=...)``.

Secrets (exchange API key and secret) are ``dg.EnvVar``s in ``local`` and ``deployment``. Nothing here
connects to anything: resources open connections when an asset first uses them.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Literal
from urllib.parse import urlsplit

import dagster as dg

from tradepipe.resources.alerts import AlertsResource
from tradepipe.resources.broker import BrokerResource
from tradepipe.resources.clock import FixedClock, WallClock
from tradepipe.resources.ledger import LedgerDatabase
from tradepipe.resources.mail import MailResource
from tradepipe.resources.market import MarketDataResource
from tradepipe.resources.trading import TradingConfigResource
from tradepipe.resources.weights_replica import WeightsReplicaResource
from tradepipe.config.rules import market_arguments
from tradepipe.config.settings import ENV_PREFIX, Settings

__all__ = [
    "AlertsResource",
    "BrokerResource",
    "Environment",
    "FixedClock",
    "LedgerDatabase",
    "MailResource",
    "MarketDataResource",
    "RESOURCE_KEYS",
    "TradingConfigResource",
    "WallClock",
    "WeightsReplicaResource",
    "build_resources",
    "environment_of",
]

Environment = Literal["local", "deployment", "test"]
RESOURCE_KEYS = ("ledger", "market", "broker", "weights_cache", "trading", "clock", "mail", "alerts")


def environment_of(settings: Settings) -> Environment:
    """The PostgreSQL deployment when the ledger is on PostgreSQL, else the laptop default."""
    url = settings.database_url or ""
    return "deployment" if url.startswith(("postgresql", "postgres")) else "local"


def _url(field: str, value: str | None, *, as_variable: bool) -> Any:
    """``dg.EnvVar`` for the field's TRADEPIPE_* variable when the process has it and the URL carries a
    password (or ``as_variable``), else the URL itself."""
    variable = ENV_PREFIX + field.upper()
    if variable not in os.environ:
        return value
    return dg.EnvVar(variable) if as_variable or (value and urlsplit(value).password) else value


def _address(field: str, value: Any) -> Any:
    """A URL setting as the UI may show it: its ``dg.EnvVar`` when the URL carries credentials."""
    from tradepipe.core.redaction import secrets_in

    variable = ENV_PREFIX + field.upper()
    if isinstance(value, str) and secrets_in(value) and variable in os.environ:
        return dg.EnvVar(variable)
    return value


def _secret(field: str) -> Any:
    """A secret is only ever an ``dg.EnvVar``; missing, it stays empty and the broker says which variable to set."""
    variable = ENV_PREFIX + field.upper()
    return dg.EnvVar(variable) if variable in os.environ else None


def _plain_secret(settings: Settings, field: str) -> str | None:
    value = getattr(settings, field)
    return value.get_secret_value() if value is not None else None


def _market(settings: Settings) -> MarketDataResource:
    return MarketDataResource(**market_arguments(settings))


def _ledger(settings: Settings, url: Any) -> LedgerDatabase:
    return LedgerDatabase(
        url=url,
        connect_timeout_seconds=settings.database_connect_timeout_seconds,
        statement_timeout_seconds=settings.database_statement_timeout_seconds,
    )


def _broker(settings: Settings, api_key: Any, secret: Any) -> BrokerResource:
    return BrokerResource(
        kind=settings.broker,
        exchange=settings.exchange,
        live=settings.live,
        api_key=api_key if settings.broker == "ccxt" else None,
        secret=secret if settings.broker == "ccxt" else None,
        timeout_seconds=settings.exchange_timeout_seconds,
    )


def _mail(settings: Settings, password: Any) -> MailResource:
    """SMTP settings from TRADEPIPE_SMTP_*; what is left unset falls back to the stored email_config row."""
    explicit = settings.model_fields_set
    return MailResource(
        host=settings.smtp_host,
        port=settings.smtp_port if "smtp_port" in explicit else None,
        user=settings.smtp_user,
        password=password,
        sender=settings.smtp_sender,
        starttls=settings.smtp_starttls if "smtp_starttls" in explicit else None,
        implicit_tls=settings.smtp_implicit_tls,
        timeout_s=settings.smtp_timeout_seconds,
        ca_file=str(settings.smtp_ca_file) if settings.smtp_ca_file else None,
        recipients=list(settings.report_recipients),
    )


def _local(settings: Settings) -> dict[str, Any]:
    return _configured(settings, urls_as_variables=False)


def _deployment(settings: Settings) -> dict[str, Any]:
    return _configured(settings, urls_as_variables=True)


def _configured(settings: Settings, *, urls_as_variables: bool) -> dict[str, Any]:
    database_url = _url("database_url", settings.resolved_database_url, as_variable=urls_as_variables)
    redis_url = _url("redis_url", settings.redis_url, as_variable=urls_as_variables)
    return {
        "ledger": _ledger(settings, database_url),
        "market": _market(settings),
        "broker": _broker(settings, _secret("exchange_api_key"), _secret("exchange_secret")),
        "weights_cache": WeightsReplicaResource(redis_url=redis_url),
        "trading": TradingConfigResource.from_settings(
            settings, database_url=database_url, redis_url=redis_url, news_feed=_address("news_feed", settings.news_feed)
        ),
        "clock": WallClock(),
        "mail": _mail(settings, _secret("smtp_password")),
        "alerts": AlertsResource(webhook_url=_secret("webhook_url")),
    }


def _test(settings: Settings) -> dict[str, Any]:
    return {
        "ledger": _ledger(settings, settings.resolved_database_url),
        "market": _market(settings),
        "broker": _broker(settings, _plain_secret(settings, "exchange_api_key"), _plain_secret(settings, "exchange_secret")),
        "weights_cache": WeightsReplicaResource(redis_url=settings.redis_url),
        "trading": TradingConfigResource.from_settings(settings),
        "clock": WallClock(),
        "mail": _mail(settings, _plain_secret(settings, "smtp_password")),
        "alerts": AlertsResource(webhook_url=_plain_secret(settings, "webhook_url")),
    }


_RESOURCES_BY_ENVIRONMENT: dict[Environment, Callable[[Settings], dict[str, Any]]] = {
    "local": _local,
    "deployment": _deployment,
    "test": _test,
}


def build_resources(settings: Settings, environment: Environment | None = None) -> dict[str, Any]:
    """The resources for ``settings`` in ``environment`` (default: the one the settings describe)."""
    return _RESOURCES_BY_ENVIRONMENT[environment or environment_of(settings)](settings)
